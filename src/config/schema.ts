/**
 * The configuration schema (zod). Keys and defaults are compatible with tachikoma's
 * `config.toml`; see docs/configuration.md. Import this module lazily: it loads zod, which only
 * commands that actually read a config file or a `TACHIKOMA_*` variable need.
 *
 * @module
 */
import { z } from "zod";
import {
  type BackendName,
  BACKENDS,
  defaultBackend,
  INCUS_DEFAULTS,
  SHARE_DIR_RE,
  TART_DEFAULTS,
  TOP_DEFAULTS as D,
  TRUENAS_DEFAULTS,
} from "./defaults.ts";

export { type BackendName, BACKENDS, SHARE_DIR_RE };

const nonEmpty = z.string().min(1);
const port = z.number().int().min(1).max(65535);
const seconds = z.number().int().min(0);

/** The `[tart]` section. */
export const TartSectionSchema = z.object({
  /** The tart executable (default: `tart` on PATH). */
  binary: nonEmpty.optional(),
  /** `tart ip --resolver` value. */
  resolver: z.enum(["dhcp", "arp", "agent"]).default(TART_DEFAULTS.resolver),
  /** Seconds `tart stop --timeout` waits before killing. */
  stop_timeout_secs: seconds.default(TART_DEFAULTS.stop_timeout_secs),
  /** Disk size in GB applied with `tart set --disk-size` (unset: keep the image's). */
  disk_size_gb: z.number().int().min(1).optional(),
}).strict();

/** The `[incus]` section. */
export const IncusSectionSchema = z.object({
  socket: nonEmpty.default(INCUS_DEFAULTS.socket),
  remote: z.string().url().optional(),
  client_cert: nonEmpty.optional(),
  client_key: nonEmpty.optional(),
  server_cert: nonEmpty.optional(),
  project: nonEmpty.optional(),
  storage_pool: nonEmpty.optional(),
  network: nonEmpty.optional(),
  /** Image alias or fingerprint; overrides `base_image` for this backend. */
  image: nonEmpty.optional(),
}).strict();

/** The `[truenas]` section. */
export const TruenasSectionSchema = z.object({
  host: nonEmpty.optional(),
  port: port.default(TRUENAS_DEFAULTS.port),
  username: nonEmpty.default(TRUENAS_DEFAULTS.username),
  api_key: nonEmpty.optional(),
  insecure_skip_verify: z.boolean().default(TRUENAS_DEFAULTS.insecure_skip_verify),
}).strict();

/** The whole configuration. */
export const ConfigSchema = z.object({
  /** Default: tart on macOS, incus elsewhere. */
  backend: z.enum(BACKENDS).default(() => defaultBackend()),
  base_image: nonEmpty.default(D.base_image),
  vm_cpus: z.number().int().min(1).default(D.vm_cpus),
  vm_memory: z.number().int().min(256).default(D.vm_memory),
  vm_display: z.string().default(D.vm_display),
  ssh_user: nonEmpty.default(D.ssh_user),
  ssh_port: port.default(D.ssh_port),
  /** `builtin` (ssh2) or `system` (the OpenSSH client) for interactive shells. */
  ssh_command: z.enum(["builtin", "system"]).default(D.ssh_command),
  worktree_dir: nonEmpty.optional(),
  provision_scripts: z.array(nonEmpty).default(() => [...D.provision_scripts]),
  claude_flags: z.array(z.string()).default(() => [...D.claude_flags]),
  /** How Claude Code is installed in the guest. */
  claude_install: z.enum(["script", "npm", "skip"]).default(D.claude_install),
  boot_timeout_secs: z.number().int().min(1).default(D.boot_timeout_secs),
  prune_after_days: z.number().int().min(0).default(D.prune_after_days),
  credential_command: nonEmpty.optional(),
  api_key_command: nonEmpty.optional(),
  sync_gh_auth: z.boolean().default(D.sync_gh_auth),
  share_claude_dirs: z.array(
    z.string().regex(
      SHARE_DIR_RE,
      "must contain only alphanumeric characters, hyphens, or underscores",
    ),
  ).default(() => [...D.share_claude_dirs]),
  sync_mcp_servers: z.boolean().default(D.sync_mcp_servers),
  credential_proxy: z.boolean().default(D.credential_proxy),
  credential_proxy_port: port.default(D.credential_proxy_port),
  /** Unset: the host side of the backend's guest network. */
  credential_proxy_bind: z.union([z.ipv4(), z.ipv6()]).refine(
    (v) => v !== "0.0.0.0" && v !== "::",
    "must not be 0.0.0.0 or :: — the proxy would expose credentials to the network",
  ).optional(),
  credential_proxy_ttl_secs: seconds.default(D.credential_proxy_ttl_secs),
  credential_proxy_upstream: z.string().url().default(D.credential_proxy_upstream),
  /** Guest egress policy: `unrestricted`, `agent` (preset + egress_allow) or `allowlist`. */
  egress: z.enum(["unrestricted", "agent", "allowlist"]).default(D.egress),
  /** Extra hosts the guest may reach through the forward proxy. */
  egress_allow: z.array(nonEmpty).default(() => [...D.egress_allow]),
  tart: TartSectionSchema.default(() => TartSectionSchema.parse({})),
  incus: IncusSectionSchema.default(() => IncusSectionSchema.parse({})),
  truenas: TruenasSectionSchema.default(() => TruenasSectionSchema.parse({})),
}).strict();

/** The validated, merged configuration. */
export type Config = z.infer<typeof ConfigSchema>;
/** A partial layer as read from one file or the environment (before merging). */
export type ConfigLayer = Record<string, unknown>;
