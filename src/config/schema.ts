/**
 * The configuration schema, in zod's `zod/mini` API (its schemas cost a fraction of the classic
 * API's to build, on every command that reads a config file). Keys and defaults are compatible
 * with tachikoma's `config.toml`; see docs/configuration.md. Import this module lazily: it loads
 * zod, which only commands that actually read a config file or a `TACHIKOMA_*` variable need.
 *
 * @module
 */
import { z } from "zod/mini";
import {
  type BackendName,
  BACKENDS,
  BASE_NAME_RE,
  defaultBackend,
  GUEST_SECRET_RE,
  IMAGE_SERVER_NAME_RE,
  INCUS_DEFAULTS,
  MCP_DEFAULTS,
  SHARE_DIR_RE,
  TART_DEFAULTS,
  TOP_DEFAULTS as D,
  TRUENAS_DEFAULTS,
} from "./defaults.ts";
import { parseDuration } from "../lib/duration.ts";
import { ENV_NAME_RE } from "../lib/shell.ts";

export { type BackendName, BACKENDS, SHARE_DIR_RE };

const nonEmpty = z.string().check(z.minLength(1));
const int = (min: number, max?: number) =>
  z.int().check(...(max === undefined ? [z.minimum(min)] : [z.minimum(min), z.maximum(max)]));
const port = int(1, 65535);
const seconds = int(0);
const list = <T extends z.ZodMiniType>(item: T, fallback: readonly z.output<T>[]) =>
  z._default(z.array(item), () => [...fallback]);

/** The `[tart]` section. */
export const TartSectionSchema = z.strictObject({
  /** The tart executable (default: `tart` on PATH). */
  binary: z.optional(nonEmpty),
  /** `tart ip --resolver` value. */
  resolver: z._default(z.enum(["dhcp", "arp", "agent"]), TART_DEFAULTS.resolver),
  /** Seconds `tart stop --timeout` waits before killing. */
  stop_timeout_secs: z._default(seconds, TART_DEFAULTS.stop_timeout_secs),
  /** Disk size in GB applied with `tart set --disk-size` (unset: keep the image's). */
  disk_size_gb: z.optional(int(1)),
});

/** One `[incus.image_servers.NAME]` entry. */
export const ImageServerSchema = z.strictObject({
  url: z.url({ protocol: /^https$/, error: "must be an https:// URL" }),
  protocol: z._default(z.enum(["simplestreams", "incus"]), "simplestreams"),
  certificate: z.optional(nonEmpty),
});

/** The `[incus]` section. */
export const IncusSectionSchema = z.strictObject({
  socket: z._default(nonEmpty, INCUS_DEFAULTS.socket),
  remote: z.optional(z.url()),
  client_cert: z.optional(nonEmpty),
  client_key: z.optional(nonEmpty),
  server_cert: z.optional(nonEmpty),
  project: z.optional(nonEmpty),
  storage_pool: z.optional(nonEmpty),
  network: z.optional(nonEmpty),
  /** Image reference (`server:alias`, local alias or fingerprint); overrides `base_image`. */
  image: z.optional(nonEmpty),
  /** Image servers by name, for `NAME:alias` references. */
  image_servers: z._default(
    z.record(
      z.string().check(
        z.regex(IMAGE_SERVER_NAME_RE, "server names are lower-case letters, digits, - and _"),
      ),
      ImageServerSchema,
    ),
    () => structuredClone(INCUS_DEFAULTS.image_servers),
  ),
});

/**
 * One `[bases.NAME]` entry: a prepared system new sandboxes can start from. Exactly one of
 * `image` (a stock image reference) and `from` (another base); at most one of `setup` (an inline
 * script) and `setup_script` (a host file); both run as root in the guest. The cross-entry rules
 * (`from` names a base, no cycle, image xor from) are checked by `bases.ts` at load time.
 */
export const BaseSchema = z.strictObject({
  image: z.optional(nonEmpty),
  from: z.optional(nonEmpty),
  setup: z.optional(z.string()),
  setup_script: z.optional(nonEmpty),
  description: z.optional(z.string()),
});

/** The `[truenas]` section. */
export const TruenasSectionSchema = z.strictObject({
  host: z.optional(nonEmpty),
  port: z._default(port, TRUENAS_DEFAULTS.port),
  username: z._default(nonEmpty, TRUENAS_DEFAULTS.username),
  api_key: z.optional(nonEmpty),
  server_cert: z.optional(nonEmpty),
  insecure_skip_verify: z._default(z.boolean(), TRUENAS_DEFAULTS.insecure_skip_verify),
});

const duration = z.string().check(
  z.refine(
    (v) => parseDuration(v) !== null,
    "expected a duration like 30m, 1h, 1h30m or 24h (0: never)",
  ),
);

/** The `[mcp]` section: the HTTP daemon's address and its reaper. */
export const McpSectionSchema = z.strictObject({
  /** `host:port` of `tachikoma mcp --http` (a non-loopback host needs --allow-remote + TLS). */
  listen: z._default(nonEmpty, MCP_DEFAULTS.listen),
  /** Stop a running sandbox made over MCP after this long unused (0: never). */
  idle_stop_after: z._default(duration, MCP_DEFAULTS.idle_stop_after),
  /** Delete a sandbox made over MCP this long after its creation (0: never). */
  hard_destroy_after: z._default(duration, MCP_DEFAULTS.hard_destroy_after),
  /** How often the reaper looks. */
  reap_interval: z._default(duration, MCP_DEFAULTS.reap_interval),
});

/**
 * One `[env]` entry, in pixels' forms: `K = "v"` or `K = { value = "v" }` (written into the
 * guest's profile), `K = { forward = true }` (copied from the host's environment at run time,
 * skipped when unset there), `K = { value = "v", session_only = true }` (given to each command
 * and session, never written to the guest's disk).
 */
export const EnvEntrySchema = z.union([
  z.string(),
  z.strictObject({
    value: z.optional(z.string()),
    forward: z.optional(z.boolean()),
    session_only: z.optional(z.boolean()),
  }).check(
    z.refine(
      (e) => (e.forward === true) !== (e.value !== undefined),
      'expected a string, { value = "…" }, { forward = true } or ' +
        '{ value = "…", session_only = true }',
    ),
  ),
]);

/** The whole configuration. */
export const ConfigSchema = z.strictObject({
  /** Default: tart on macOS, incus elsewhere. */
  backend: z._default(z.enum(BACKENDS), () => defaultBackend()),
  /** Unset: the backend's default (`defaultImage`). */
  base_image: z.optional(nonEmpty),
  vm_cpus: z._default(int(1), D.vm_cpus),
  vm_memory: z._default(int(256), D.vm_memory),
  vm_display: z._default(z.string(), D.vm_display),
  ssh_user: z._default(nonEmpty, D.ssh_user),
  ssh_port: z._default(port, D.ssh_port),
  /** `builtin` (ssh2) or `system` (the OpenSSH client) for interactive shells. */
  ssh_command: z._default(z.enum(["builtin", "system"]), D.ssh_command),
  worktree_dir: z.optional(nonEmpty),
  provision_scripts: list(nonEmpty, D.provision_scripts),
  claude_flags: list(z.string(), D.claude_flags),
  /** How Claude Code is installed in the guest. */
  claude_install: z._default(z.enum(["script", "npm", "skip"]), D.claude_install),
  /** tmux for persistent sessions: from the guest's packages, or not installed. */
  tmux_install: z._default(z.enum(["package", "skip"]), D.tmux_install),
  boot_timeout_secs: z._default(int(1), D.boot_timeout_secs),
  prune_after_days: z._default(int(0), D.prune_after_days),
  credential_command: z.optional(nonEmpty),
  api_key_command: z.optional(nonEmpty),
  sync_gh_auth: z._default(z.boolean(), D.sync_gh_auth),
  share_claude_dirs: list(
    z.string().check(
      z.regex(SHARE_DIR_RE, "must contain only alphanumeric characters, hyphens, or underscores"),
    ),
    D.share_claude_dirs,
  ),
  sync_mcp_servers: z._default(z.boolean(), D.sync_mcp_servers),
  /** Host secrets allowed into guests (MCP server env values and headers, settings.json env). */
  guest_secrets: list(
    z.string().check(
      z.regex(
        GUEST_SECRET_RE,
        "must be env.<NAME>, mcp.<server>.env.<NAME>, mcp.<server>.headers.<Header> or " +
          'mcp.<server>.url ("*" matches any one part)',
      ),
    ),
    D.guest_secrets,
  ),
  credential_proxy: z._default(z.boolean(), D.credential_proxy),
  credential_proxy_port: z._default(port, D.credential_proxy_port),
  /** Unset: the host side of the backend's guest network. */
  credential_proxy_bind: z.optional(
    z.union([z.ipv4(), z.ipv6()]).check(
      z.refine(
        (v) => v !== "0.0.0.0" && v !== "::",
        "must not be 0.0.0.0 or :: — the proxy would expose credentials to the network",
      ),
    ),
  ),
  credential_proxy_ttl_secs: z._default(seconds, D.credential_proxy_ttl_secs),
  credential_proxy_upstream: z._default(z.url(), D.credential_proxy_upstream),
  /**
   * Guest egress policy: `unrestricted`, `agent` (preset + egress_allow), `allowlist`
   * (egress_allow only) or `none`.
   */
  egress: z._default(z.enum(["unrestricted", "agent", "allowlist", "none"]), D.egress),
  /** Extra hosts the guest may reach through the forward proxy. */
  egress_allow: list(nonEmpty, D.egress_allow),
  /** `[env]`: variables for the guest (see {@link EnvEntrySchema}). */
  env: z._default(
    z.record(
      z.string().check(z.regex(ENV_NAME_RE, "variable names are [A-Za-z_][A-Za-z0-9_]*")),
      EnvEntrySchema,
    ),
    () => ({}),
  ),
  bases: z._default(
    z.record(
      z.string().check(
        z.regex(BASE_NAME_RE, "base names are lower-case letters, digits and -, at most 40"),
      ),
      BaseSchema,
    ),
    () => ({}),
  ),
  tart: z._default(TartSectionSchema, () => TartSectionSchema.parse({})),
  incus: z._default(IncusSectionSchema, () => IncusSectionSchema.parse({})),
  truenas: z._default(TruenasSectionSchema, () => TruenasSectionSchema.parse({})),
  mcp: z._default(McpSectionSchema, () => McpSectionSchema.parse({})),
});

/** The validated, merged configuration. */
export type Config = z.infer<typeof ConfigSchema>;
/** A partial layer as read from one file or the environment (before merging). */
export type ConfigLayer = Record<string, unknown>;
