/**
 * Built-in defaults and the key table, as plain objects (no zod). This module is the single
 * source of default values: `schema.ts` takes its `.default(…)` values from here, and
 * `load.ts` builds the configuration from here alone (`default_config.ts`) when there is nothing to validate (no
 * config file, no `TACHIKOMA_*` variable), so light commands never load zod.
 *
 * @module
 */

/** Backends a user can select. */
export const BACKENDS = ["tart", "incus", "truenas"] as const;
/** A user-selectable backend name. */
export type BackendName = typeof BACKENDS[number];

/**
 * Names allowed in `share_claude_dirs`: one path component of `[A-Za-z0-9_-]`. (Here rather
 * than in schema.ts so code that only needs the pattern does not load zod.)
 */
export const SHARE_DIR_RE = /^[A-Za-z0-9_-]+$/;

/**
 * An entry of `guest_secrets`: `env.<NAME>` (a settings.json `env` value),
 * `mcp.<server>.env.<NAME>`, `mcp.<server>.headers.<Header>` or `mcp.<server>.url`; `*` stands
 * for any one server, name or header. (Here so provisioning can use it without zod.)
 */
export const GUEST_SECRET_RE =
  /^(?:env\.(?:\*|[A-Za-z_][A-Za-z0-9_]*)|mcp\.(?:\*|[A-Za-z0-9_-]+)\.(?:env\.(?:\*|[A-Za-z_][A-Za-z0-9_]*)|headers\.(?:\*|[!#$%&'*+.^_`|~0-9A-Za-z-]+)|url))$/;

/** Sections (TOML tables) of the configuration. */
export const SECTIONS = ["tart", "incus", "truenas", "mcp"] as const;
/** A section name. */
export type SectionName = typeof SECTIONS[number];

/** The operating system, as `Deno.build.os` names it. */
export type OsName = typeof Deno.build.os;

/** The default backend: tart on macOS, incus elsewhere. */
export function defaultBackend(os: OsName = Deno.build.os): BackendName {
  return os === "darwin" ? "tart" : "incus";
}

/** The public simplestreams server behind `images:` references (Incus' own default remote). */
export const PUBLIC_IMAGE_SERVER = "https://images.linuxcontainers.org";

/**
 * The image a backend starts sandboxes from when `base_image` is unset: tart clones its local
 * `ubuntu` VM (tachikoma's default); Incus pulls Debian 12 from the public image server
 * (docs/configuration.md says why Debian).
 */
export function defaultImage(backend: string): string {
  return backend === "tart" ? "ubuntu" : "images:debian/12";
}

/** Default values of top-level keys (optional keys without a default are absent). */
export const TOP_DEFAULTS = {
  vm_cpus: 4,
  vm_memory: 8192,
  vm_display: "none",
  ssh_user: "admin",
  ssh_port: 22,
  ssh_command: "builtin",
  provision_scripts: [] as string[],
  claude_flags: [] as string[],
  claude_install: "script",
  tmux_install: "package",
  boot_timeout_secs: 120,
  prune_after_days: 30,
  sync_gh_auth: false,
  share_claude_dirs: ["rules", "agents", "plugins", "skills"],
  sync_mcp_servers: true,
  guest_secrets: [] as string[],
  credential_proxy: true,
  credential_proxy_port: 19280,
  credential_proxy_ttl_secs: 300,
  credential_proxy_upstream: "https://api.anthropic.com",
  egress: "agent",
  egress_allow: [] as string[],
  bases: {},
} as const;

/** Name of a base in `[bases.NAME]`: lower-case letters, digits and `-`, at most 40. */
export const BASE_NAME_RE = /^[a-z][a-z0-9-]{0,39}$/;

/** Default values of the `[tart]` section. */
export const TART_DEFAULTS = { resolver: "dhcp", stop_timeout_secs: 30 } as const;
/** Name of an image server in `[incus.image_servers]` (the `NAME` of `NAME:alias`). */
export const IMAGE_SERVER_NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** One image server of `[incus.image_servers]`. */
export interface ImageServerSpec {
  /** `https://…` of a simplestreams tree or of an Incus server. */
  url: string;
  protocol: "simplestreams" | "incus";
  /** PEM file of the server's certificate, pinned (for servers no system CA vouches for). */
  certificate?: string;
}

/** Default values of the `[incus]` section. */
export const INCUS_DEFAULTS = {
  socket: "/var/lib/incus/unix.socket",
  image_servers: {
    images: { url: PUBLIC_IMAGE_SERVER, protocol: "simplestreams" },
  } as Record<string, ImageServerSpec>,
} as const;
/** Default values of the `[truenas]` section. */
export const TRUENAS_DEFAULTS = {
  port: 443,
  username: "root",
  insecure_skip_verify: false,
} as const;

/**
 * Default values of the `[mcp]` section: where `tachikoma mcp --http` listens and when its
 * reaper stops and deletes the sandboxes made over MCP (pixels' defaults; Go-style durations).
 */
export const MCP_DEFAULTS = {
  listen: "127.0.0.1:8765",
  idle_stop_after: "1h",
  hard_destroy_after: "24h",
  reap_interval: "1m",
} as const;

/**
 * The value type of a key, as users write it. `table`: a TOML table of named entries
 * (`[incus.image_servers.NAME]`); layers merge it by entry name (a later layer's entry replaces
 * an earlier one of the same name).
 */
export type KeyType = "string" | "integer" | "boolean" | "string[]" | "table";

/** What tachikoma knows about one key without loading the schema. */
export interface KeySpec {
  /** The TOML/env value type. */
  type: KeyType;
  /** Allowed values of an enum-like string key. */
  choices?: readonly string[];
  /** A secret: shown redacted, never logged. */
  secret?: boolean;
  /**
   * Gated: the key runs something on the host or decides where code, credentials and secrets go.
   * From a repo file (`.tachikoma.toml`, `.tachikoma.local.toml`) it takes effect only when
   * that exact content is trusted (`tachikoma config trust`); the value says why.
   */
  trust?: string;
  /**
   * A filesystem path (`~` is expanded; a relative value in a file is resolved against that
   * file's directory). `"command"`: only resolved when it contains a `/`.
   */
  path?: "path" | "command";
  /** `table` keys: the fields of each entry that hold a path (resolved like `path` keys). */
  pathFields?: readonly string[];
}

/**
 * Every key, top-level and `section.key`, in display order. Tests check this table against
 * the zod schema, so they cannot drift.
 */
export const KEYS: Readonly<Record<string, KeySpec>> = {
  backend: { type: "string", choices: BACKENDS },
  base_image: { type: "string" },
  vm_cpus: { type: "integer" },
  vm_memory: { type: "integer" },
  vm_display: { type: "string" },
  ssh_user: { type: "string" },
  ssh_port: { type: "integer" },
  ssh_command: { type: "string", choices: ["builtin", "system"] },
  worktree_dir: {
    type: "string",
    path: "path",
    trust: "chooses where the files the sandbox writes land on the host",
  },
  provision_scripts: {
    type: "string[]",
    path: "path",
    trust: "copies host files into the sandbox",
  },
  claude_flags: { type: "string[]" },
  claude_install: { type: "string", choices: ["script", "npm", "skip"] },
  tmux_install: { type: "string", choices: ["package", "skip"] },
  boot_timeout_secs: { type: "integer" },
  prune_after_days: { type: "integer" },
  credential_command: { type: "string", trust: "runs a command on the host" },
  api_key_command: { type: "string", trust: "runs a command on the host" },
  sync_gh_auth: { type: "boolean", trust: "copies your GitHub CLI login into the sandbox" },
  share_claude_dirs: {
    type: "string[]",
    trust: "shares directories of ~/.claude into the sandbox",
  },
  sync_mcp_servers: { type: "boolean", trust: "copies your MCP server settings into the sandbox" },
  guest_secrets: { type: "string[]", trust: "lets host secrets into the sandbox" },
  credential_proxy: {
    type: "boolean",
    trust: "false writes your Claude credential into the sandbox",
  },
  credential_proxy_port: { type: "integer", trust: "chooses where the credential proxy listens" },
  credential_proxy_bind: { type: "string", trust: "chooses where the credential proxy listens" },
  credential_proxy_ttl_secs: { type: "integer" },
  credential_proxy_upstream: { type: "string", trust: "receives your Claude credential" },
  egress: {
    type: "string",
    choices: ["unrestricted", "agent", "allowlist", "none"],
    trust: "decides what the sandbox may reach",
  },
  egress_allow: {
    type: "string[]",
    trust: "decides what the sandbox may reach (host-local services included)",
  },
  env: {
    type: "table",
    trust: "sets variables in the sandbox; forward = true copies host variables into it",
  },
  bases: {
    type: "table",
    pathFields: ["setup_script"],
    trust: "runs a script as root in the systems new sandboxes start from",
  },
  "tart.binary": { type: "string", path: "command", trust: "runs a program on the host" },
  "tart.resolver": { type: "string", choices: ["dhcp", "arp", "agent"] },
  "tart.stop_timeout_secs": { type: "integer" },
  "tart.disk_size_gb": { type: "integer" },
  "incus.socket": {
    type: "string",
    path: "path",
    trust: "chooses the Incus server that gets your code",
  },
  "incus.remote": { type: "string", trust: "chooses the Incus server that gets your code" },
  "incus.client_cert": {
    type: "string",
    path: "path",
    trust: "chooses the client certificate sent to the Incus server",
  },
  "incus.client_key": {
    type: "string",
    path: "path",
    trust: "chooses the client key used with the Incus server",
  },
  "incus.server_cert": {
    type: "string",
    path: "path",
    trust: "chooses which Incus server is trusted",
  },
  "incus.project": { type: "string", trust: "chooses where on the Incus server sandboxes run" },
  "incus.storage_pool": { type: "string" },
  "incus.network": { type: "string", trust: "chooses the network the sandbox joins" },
  "incus.image": { type: "string" },
  "incus.image_servers": {
    type: "table",
    pathFields: ["certificate"],
    trust: "chooses the servers sandbox systems are downloaded from",
  },
  "truenas.host": {
    type: "string",
    trust: "chooses the TrueNAS server that gets your code and API key",
  },
  "truenas.port": {
    type: "integer",
    trust: "chooses the TrueNAS server that gets your code and API key",
  },
  "truenas.username": { type: "string", trust: "chooses the TrueNAS account" },
  "truenas.api_key": { type: "string", secret: true, trust: "chooses the TrueNAS credential" },
  "truenas.server_cert": {
    type: "string",
    path: "path",
    trust: "chooses which TrueNAS server is trusted",
  },
  "truenas.insecure_skip_verify": {
    type: "boolean",
    trust: "turns off the check of the TrueNAS server",
  },
  "mcp.listen": { type: "string", trust: "chooses where the MCP daemon listens" },
  "mcp.idle_stop_after": { type: "string" },
  "mcp.hard_destroy_after": {
    type: "string",
    trust: "decides when the sandboxes made over MCP are deleted",
  },
  "mcp.reap_interval": { type: "string" },
};

/** All keys (`key` and `section.key`) in display order. */
export const KEY_NAMES: readonly string[] = Object.keys(KEYS);

/** True when `name` is a section name. */
export function isSection(name: string): name is SectionName {
  return (SECTIONS as readonly string[]).includes(name);
}

/** Splits `incus.socket` into `["incus", "socket"]` and `vm_cpus` into `["vm_cpus"]`. */
export function keyPath(key: string): string[] {
  const dot = key.indexOf(".");
  return dot === -1 ? [key] : [key.slice(0, dot), key.slice(dot + 1)];
}

/** Reads a key (`vm_cpus`, `incus.socket`) from a config-shaped object. */
export function getKey(config: object, key: string): unknown {
  const [a, b] = keyPath(key);
  const top = (config as Record<string, unknown>)[a];
  if (b === undefined) return top;
  if (top === null || typeof top !== "object") return undefined;
  return (top as Record<string, unknown>)[b];
}

/** Sets a key (`vm_cpus`, `incus.socket`) in a config-shaped object, creating the section. */
export function setKey(config: Record<string, unknown>, key: string, value: unknown): void {
  const [a, b] = keyPath(key);
  if (b === undefined) {
    config[a] = value;
    return;
  }
  const section = config[a];
  if (section === null || typeof section !== "object" || Array.isArray(section)) {
    config[a] = { [b]: value };
  } else {
    (section as Record<string, unknown>)[b] = value;
  }
}
