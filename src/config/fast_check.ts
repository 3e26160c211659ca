/**
 * Hand-written checks of configuration values, for the hot path: `load.ts` builds the
 * configuration with them (`fast_build.ts`) and loads zod (`validate.ts`, ~70 ms on a cold
 * start) only when one of them says no. Each check answers true only when the key's zod schema
 * in `schema.ts` accepts the value and returns it unchanged; it may say no to a value zod would
 * accept (an IPv6 `credential_proxy_bind`, a URL zod would trim): the zod path then decides, and
 * every error message comes from there. `tests/unit/config/fast_check_test.ts` holds the two to
 * each other.
 *
 * @module
 */
import { parseDuration } from "../lib/duration.ts";
import { ENV_NAME_RE } from "../lib/shell.ts";
import {
  BACKENDS,
  BASE_NAME_RE,
  GUEST_SECRET_RE,
  IMAGE_SERVER_NAME_RE,
  SHARE_DIR_RE,
} from "./defaults.ts";

type Check = (value: unknown) => boolean;

const str: Check = (v) => typeof v === "string";
const nonEmpty: Check = (v) => typeof v === "string" && v.length > 0;
const bool: Check = (v) => typeof v === "boolean";
const int = (min: number, max = Number.MAX_SAFE_INTEGER): Check => (v) =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;
const port = int(1, 65535);
const oneOf = (choices: readonly string[]): Check => (v) =>
  typeof v === "string" && choices.includes(v);
const matching = (re: RegExp): Check => (v) => typeof v === "string" && re.test(v);
const listOf = (item: Check): Check => (v) => {
  if (!Array.isArray(v)) return false;
  for (let i = 0; i < v.length; i++) if (!(i in v) || !item(v[i])) return false;
  return true;
};
/** A URL zod leaves as it is: no surrounding blanks, no tab or line break. */
const url = (protocol?: string): Check => (v) => {
  if (typeof v !== "string" || v !== v.trim() || /[\t\n\r]/.test(v)) return false;
  const parsed = URL.parse(v);
  return parsed !== null && (protocol === undefined || parsed.protocol === protocol);
};
const duration: Check = (v) => typeof v === "string" && parseDuration(v) !== null;
const IPV4 =
  /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])$/;
/** IPv4 only: an IPv6 address goes to zod. */
const bindAddress: Check = (v) => typeof v === "string" && IPV4.test(v) && v !== "0.0.0.0";

/** A plain table (what TOML tables and JSON objects parse to). */
export function isPlainTable(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) &&
    !(value instanceof Date);
}

const SERVER_FIELDS = new Set(["url", "protocol", "certificate"]);
const httpsUrl = url("https:");
const serverProtocol = oneOf(["simplestreams", "incus"]);
const imageServers: Check = (v) => {
  if (!isPlainTable(v)) return false;
  for (const name of Object.keys(v)) {
    const entry = v[name];
    if (!IMAGE_SERVER_NAME_RE.test(name) || !isPlainTable(entry)) return false;
    for (const field of Object.keys(entry)) if (!SERVER_FIELDS.has(field)) return false;
    if (!httpsUrl(entry.url)) return false;
    if (entry.protocol !== undefined && !serverProtocol(entry.protocol)) return false;
    if (entry.certificate !== undefined && !nonEmpty(entry.certificate)) return false;
  }
  return true;
};

/** `[env]`: a string, or `{ value [, session_only] }`, or `{ forward = true [, session_only] }`. */
const ENV_FIELDS = new Set(["value", "forward", "session_only"]);
const envSection: Check = (v) => {
  if (!isPlainTable(v)) return false;
  for (const [name, entry] of Object.entries(v)) {
    if (!ENV_NAME_RE.test(name)) return false;
    if (typeof entry === "string") continue;
    if (!isPlainTable(entry)) return false;
    for (const field of Object.keys(entry)) if (!ENV_FIELDS.has(field)) return false;
    if (entry.value !== undefined && typeof entry.value !== "string") return false;
    if (entry.forward !== undefined && typeof entry.forward !== "boolean") return false;
    if (entry.session_only !== undefined && typeof entry.session_only !== "boolean") return false;
    if ((entry.forward === true) === (entry.value !== undefined)) return false;
  }
  return true;
};

/** `[bases.NAME]` entries' shape; how they relate (parents, cycles) is checked by `bases.ts`. */
const BASE_FIELDS = new Set(["image", "from", "setup", "setup_script", "description"]);
const basesSection: Check = (v) => {
  if (!isPlainTable(v)) return false;
  for (const [name, entry] of Object.entries(v)) {
    if (!BASE_NAME_RE.test(name) || !isPlainTable(entry)) return false;
    for (const field of Object.keys(entry)) if (!BASE_FIELDS.has(field)) return false;
    for (const field of ["image", "from", "setup_script"]) {
      if (entry[field] !== undefined && !nonEmpty(entry[field])) return false;
    }
    for (const field of ["setup", "description"]) {
      if (entry[field] !== undefined && typeof entry[field] !== "string") return false;
    }
  }
  return true;
};

const CHECKS: Readonly<Record<string, Check>> = {
  backend: oneOf(BACKENDS),
  base_image: nonEmpty,
  vm_cpus: int(1),
  vm_memory: int(256),
  vm_display: str,
  ssh_user: nonEmpty,
  ssh_port: port,
  ssh_command: oneOf(["builtin", "system"]),
  worktree_dir: nonEmpty,
  provision_scripts: listOf(nonEmpty),
  claude_flags: listOf(str),
  claude_install: oneOf(["script", "npm", "skip"]),
  tmux_install: oneOf(["package", "skip"]),
  env: envSection,
  bases: basesSection,
  boot_timeout_secs: int(1),
  prune_after_days: int(0),
  credential_command: nonEmpty,
  api_key_command: nonEmpty,
  sync_gh_auth: bool,
  share_claude_dirs: listOf(matching(SHARE_DIR_RE)),
  sync_mcp_servers: bool,
  guest_secrets: listOf(matching(GUEST_SECRET_RE)),
  credential_proxy: bool,
  credential_proxy_port: port,
  credential_proxy_bind: bindAddress,
  credential_proxy_ttl_secs: int(0),
  credential_proxy_upstream: url(),
  egress: oneOf(["unrestricted", "agent", "allowlist", "none"]),
  egress_allow: listOf(nonEmpty),
  "tart.binary": nonEmpty,
  "tart.resolver": oneOf(["dhcp", "arp", "agent"]),
  "tart.stop_timeout_secs": int(0),
  "tart.disk_size_gb": int(1),
  "incus.socket": nonEmpty,
  "incus.remote": url(),
  "incus.client_cert": nonEmpty,
  "incus.client_key": nonEmpty,
  "incus.server_cert": nonEmpty,
  "incus.project": nonEmpty,
  "incus.storage_pool": nonEmpty,
  "incus.network": nonEmpty,
  "incus.image": nonEmpty,
  "incus.image_servers": imageServers,
  "truenas.host": nonEmpty,
  "truenas.port": port,
  "truenas.username": nonEmpty,
  "truenas.api_key": nonEmpty,
  "truenas.server_cert": nonEmpty,
  "truenas.insecure_skip_verify": bool,
  "mcp.listen": nonEmpty,
  "mcp.idle_stop_after": duration,
  "mcp.hard_destroy_after": duration,
  "mcp.reap_interval": duration,
};

/** The keys {@link fastCheck} knows (every key of `defaults.ts`; a test keeps them equal). */
export const FAST_CHECKED_KEYS: readonly string[] = Object.keys(CHECKS);

/**
 * True when `value` is valid for `key` as zod would have it, unchanged; false for an unknown
 * key and whenever the zod path must decide (see the module doc).
 */
export function fastCheck(key: string, value: unknown): boolean {
  return Object.hasOwn(CHECKS, key) && CHECKS[key](value);
}
