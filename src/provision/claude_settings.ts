/**
 * Claude Code's JSON files, transformed on the host (no python or jq needed in the guest):
 * the guest copy of `~/.claude/settings.json`, the onboarding patch of `~/.claude.json`, and
 * the MCP servers' environment variables for the profile.
 *
 * @module
 */
import { isEnvName } from "../lib/shell.ts";
import { ANTHROPIC_KEYS } from "./credentials.ts";

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

/** Options of {@link guestSettings}. */
export interface GuestSettingsOptions {
  syncMcpServers: boolean;
  /** credential_proxy: strip credential settings so no credential enters the guest. */
  proxy: boolean;
}

/**
 * The guest's settings.json from the host's: `hooks` and `statusLine` (host scripts) removed,
 * `permissions.deny` rules about macOS's `~/Library/` removed, `mcpServers` removed when
 * `sync_mcp_servers = false`; with the proxy on, credential variables and helpers removed too.
 */
export function guestSettings(host: JsonObject, options: GuestSettingsOptions): JsonObject {
  const out: JsonObject = structuredClone(host);
  delete out.hooks;
  delete out.statusLine;
  if (!options.syncMcpServers) delete out.mcpServers;
  const permissions = out.permissions;
  if (isJsonObject(permissions) && Array.isArray(permissions.deny)) {
    permissions.deny = permissions.deny.filter((rule) =>
      !(typeof rule === "string" && rule.includes("~/Library/"))
    );
  }
  if (options.proxy) {
    for (const k of CREDENTIAL_HELPERS) delete out[k];
    if (isJsonObject(out.env)) { for (const k of CREDENTIAL_ENV) delete out.env[k]; }
    if (isJsonObject(out.mcpServers)) {
      for (const server of Object.values(out.mcpServers)) {
        if (isJsonObject(server) && isJsonObject(server.env)) {
          for (const k of ANTHROPIC_KEYS) delete server.env[k];
        }
      }
    }
  }
  return out;
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
}

/**
 * String `env` values of every MCP server in `sources` (each a parsed settings.json or
 * ~/.claude.json; their top-level `mcpServers`, plus `projects[projectPath].mcpServers` when
 * given). Non-string values are skipped; with `proxy`, Anthropic credential names are skipped.
 */
export function mcpEnv(
  sources: (JsonObject | null)[],
  options: { proxy: boolean; projectPath?: string | null },
): McpEnv {
  const found = new Map<string, string>();
  const invalid = new Set<string>();
  const skipped = new Set<string>();
  const take = (servers: unknown) => {
    if (!isJsonObject(servers)) return;
    for (const name of Object.keys(servers).sort()) {
      const server = servers[name];
      if (!isJsonObject(server) || !isJsonObject(server.env)) continue;
      for (const [k, v] of Object.entries(server.env)) {
        if (typeof v !== "string") continue;
        if (!isEnvName(k)) invalid.add(k);
        else if (options.proxy && ANTHROPIC_KEYS.includes(k)) skipped.add(k);
        else found.set(k, v);
      }
    }
  };
  for (const source of sources) {
    if (!source) continue;
    take(source.mcpServers);
    const projects = source.projects;
    if (options.projectPath && isJsonObject(projects)) {
      const project = projects[options.projectPath];
      if (isJsonObject(project)) take(project.mcpServers);
    }
  }
  return {
    vars: [...found.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0),
    invalid: [...invalid].sort(),
    skippedForProxy: [...skipped].sort(),
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
