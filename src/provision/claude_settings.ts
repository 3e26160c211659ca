/**
 * Claude Code's JSON files, transformed on the host (no python or jq needed in the guest):
 * the guest copy of `~/.claude/settings.json`, the MCP servers of `~/.claude.json`, the
 * onboarding patch of `~/.claude.json`, and the MCP servers' environment variables for the
 * profile. Host secrets in them stay out unless `guest_secrets` lets them in
 * (`guest_secrets.ts`).
 *
 * @module
 */
import { registerSecret } from "../lib/redact.ts";
import { isEnvName } from "../lib/shell.ts";
import { ANTHROPIC_KEYS } from "./credentials.ts";
import {
  type GuestSecretAllowList,
  type LeftOut,
  secretLooking,
  type SecretSlot,
  urlWithoutCredentials,
} from "./guest_secrets.ts";

/** A JSON object. */
export type JsonObject = Record<string, unknown>;

/** True for a plain JSON object. */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Keys in settings.json `env` that carry credentials or reroute the API (dropped in proxy mode). */
const CREDENTIAL_ENV = [...ANTHROPIC_KEYS, "ANTHROPIC_AUTH_TOKEN"];
/** Settings that run host programs to fetch credentials (meaningless or harmful in the guest). */
const CREDENTIAL_HELPERS = ["apiKeyHelper", "awsAuthRefresh", "awsCredentialExport"];

/** What the guest may get: the user's opt-ins and the credential mode. */
export interface SecretOptions {
  /** `guest_secrets`. */
  allow: GuestSecretAllowList;
  /** credential_proxy: Anthropic credentials never enter the guest, whatever `allow` says. */
  proxy: boolean;
}

/** Options of {@link guestSettings}. */
export interface GuestSettingsOptions extends SecretOptions {
  syncMcpServers: boolean;
  /** The host file, for the left-out report (default `~/.claude/settings.json`). */
  file?: string;
}

/** A JSON file for the guest and what was left out of it. */
export interface Filtered<T> {
  value: T;
  leftOut: LeftOut[];
}

/**
 * MCP servers for the guest: every `env` and `headers` value and the credentials in `url` left
 * out unless `guest_secrets` lets them in (Anthropic credential variables always, in proxy
 * mode). A server stays listed without them (it may then fail to start or to authenticate).
 */
export function guestMcpServers(
  servers: JsonObject,
  options: SecretOptions & { file: string },
): Filtered<JsonObject> {
  const out: JsonObject = structuredClone(servers);
  const leftOut: LeftOut[] = [];
  const drop = (slot: SecretSlot) => leftOut.push({ slot, file: options.file });
  for (const [server, entry] of Object.entries(out)) {
    if (!isJsonObject(entry)) continue;
    if (isJsonObject(entry.env)) {
      for (const [name, value] of Object.entries(entry.env)) {
        const slot: SecretSlot = { kind: "mcp_env", server, name };
        if (options.proxy && ANTHROPIC_KEYS.includes(name)) delete entry.env[name];
        else if (options.allow.allows(slot)) registerValue(value);
        else {
          delete entry.env[name];
          drop(slot);
        }
      }
    }
    if (isJsonObject(entry.headers)) {
      for (const [name, value] of Object.entries(entry.headers)) {
        const slot: SecretSlot = { kind: "mcp_header", server, name };
        if (options.allow.allows(slot)) registerValue(value);
        else {
          delete entry.headers[name];
          drop(slot);
        }
      }
    }
    if (typeof entry.url === "string") {
      const clean = urlWithoutCredentials(entry.url);
      const slot: SecretSlot = { kind: "mcp_url", server };
      if (clean !== null && !options.allow.allows(slot)) {
        entry.url = clean;
        drop(slot);
      }
    }
  }
  return { value: out, leftOut };
}

function registerValue(value: unknown): void {
  if (typeof value === "string") registerSecret(value);
}

/**
 * The guest's settings.json from the host's: `hooks` and `statusLine` (host scripts) removed,
 * `permissions.deny` rules about macOS's `~/Library/` removed, `mcpServers` removed when
 * `sync_mcp_servers = false` and otherwise cleaned by {@link guestMcpServers}, secret-looking
 * `env` values left out unless `guest_secrets` lets them in; with the proxy on, credential
 * variables and helpers removed too.
 */
export function guestSettings(
  host: JsonObject,
  options: GuestSettingsOptions,
): Filtered<JsonObject> {
  const file = options.file ?? "~/.claude/settings.json";
  const out: JsonObject = structuredClone(host);
  const leftOut: LeftOut[] = [];
  delete out.hooks;
  delete out.statusLine;
  if (!options.syncMcpServers) delete out.mcpServers;
  else if (isJsonObject(out.mcpServers)) {
    const servers = guestMcpServers(out.mcpServers, { ...options, file });
    out.mcpServers = servers.value;
    leftOut.push(...servers.leftOut);
  }
  const permissions = out.permissions;
  if (isJsonObject(permissions) && Array.isArray(permissions.deny)) {
    permissions.deny = permissions.deny.filter((rule) =>
      !(typeof rule === "string" && rule.includes("~/Library/"))
    );
  }
  if (options.proxy) { for (const k of CREDENTIAL_HELPERS) delete out[k]; }
  if (isJsonObject(out.env)) {
    for (const [name, value] of Object.entries(out.env)) {
      if (CREDENTIAL_ENV.includes(name)) {
        // Proxy mode: never in the guest. Direct mode: the credential the user chose to copy.
        if (options.proxy) delete out.env[name];
        continue;
      }
      if (typeof value !== "string" || !secretLooking(name, value)) continue;
      const slot: SecretSlot = { kind: "env", name };
      if (options.allow.allows(slot)) registerSecret(value);
      else {
        delete out.env[name];
        leftOut.push({ slot, file });
      }
    }
  }
  return { value: out, leftOut };
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isJsonObject(value)) return value;
  const out: JsonObject = {};
  for (const k of Object.keys(value).sort()) out[k] = sortKeys(value[k]);
  return out;
}

/** JSON with keys sorted at every level, 2-space indented, newline-terminated (deterministic). */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + "\n";
}

/** MCP environment for the profile. */
export interface McpEnv {
  /** Sorted by name; on duplicates the last source / alphabetically-last server wins. */
  vars: [string, string][];
  /** Names skipped as invalid environment variable names. */
  invalid: string[];
  /** Anthropic credential names skipped because the proxy is on. */
  skippedForProxy: string[];
  /** Values not exported because `guest_secrets` does not let them in. */
  leftOut: LeftOut[];
}

/** A source of MCP servers: a parsed settings.json or ~/.claude.json, and its path. */
export interface McpSource {
  json: JsonObject | null;
  file: string;
}

/**
 * The `env` values of every MCP server in `sources` (their top-level `mcpServers`, plus
 * `projects[projectPath].mcpServers` when given) that `guest_secrets` lets in, for the profile.
 * Non-string values are skipped; with `proxy`, Anthropic credential names are skipped.
 */
export function mcpEnv(
  sources: McpSource[],
  options: SecretOptions & { projectPath?: string | null },
): McpEnv {
  const found = new Map<string, string>();
  const invalid = new Set<string>();
  const skipped = new Set<string>();
  const leftOut: LeftOut[] = [];
  const take = (servers: unknown, file: string) => {
    if (!isJsonObject(servers)) return;
    for (const server of Object.keys(servers).sort()) {
      const entry = servers[server];
      if (!isJsonObject(entry) || !isJsonObject(entry.env)) continue;
      for (const [k, v] of Object.entries(entry.env)) {
        if (typeof v !== "string") continue;
        const slot: SecretSlot = { kind: "mcp_env", server, name: k };
        if (options.proxy && ANTHROPIC_KEYS.includes(k)) skipped.add(k);
        else if (!options.allow.allows(slot)) leftOut.push({ slot, file });
        else if (!isEnvName(k)) invalid.add(k);
        else found.set(k, v);
      }
    }
  };
  for (const { json, file } of sources) {
    if (!json) continue;
    take(json.mcpServers, file);
    const projects = json.projects;
    if (options.projectPath && isJsonObject(projects)) {
      const project = projects[options.projectPath];
      if (isJsonObject(project)) take(project.mcpServers, file);
    }
  }
  return {
    vars: [...found.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
    invalid: [...invalid].sort(),
    skippedForProxy: [...skipped].sort(),
    leftOut,
  };
}

/** Options of {@link patchClaudeJson}. */
export interface ClaudeJsonPatch {
  /** The host's user-scoped MCP servers to make available in the guest (merged, host wins). */
  mcpServers?: JsonObject | null;
  /** A placeholder API key (proxy mode) to pre-approve, so Claude does not ask about it. */
  approveApiKey?: string | null;
}

/**
 * The guest's `~/.claude.json` with onboarding marked done (`hasCompletedOnboarding`, at least
 * one startup). Idempotent: patching a patched object changes nothing.
 */
export function patchClaudeJson(current: JsonObject, patch: ClaudeJsonPatch): JsonObject {
  const out: JsonObject = structuredClone(current);
  out.hasCompletedOnboarding = true;
  if (typeof out.numStartups !== "number" || out.numStartups < 1) out.numStartups = 1;
  if (patch.mcpServers && Object.keys(patch.mcpServers).length > 0) {
    const existing = isJsonObject(out.mcpServers) ? out.mcpServers : {};
    out.mcpServers = { ...existing, ...structuredClone(patch.mcpServers) };
  }
  if (patch.approveApiKey) {
    const tail = patch.approveApiKey.slice(-20);
    const responses = isJsonObject(out.customApiKeyResponses) ? out.customApiKeyResponses : {};
    const approved = Array.isArray(responses.approved) ? responses.approved : [];
    if (!approved.includes(tail)) approved.push(tail);
    responses.approved = approved;
    if (!Array.isArray(responses.rejected)) responses.rejected = [];
    out.customApiKeyResponses = responses;
  }
  return out;
}
