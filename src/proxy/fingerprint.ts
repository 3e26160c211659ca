/**
 * What a running proxy serves, so spawn can tell whether the proxy it finds is the one its
 * configuration needs: the configuration directory (its tokens and state), the address, the
 * tachikoma version, `credential_proxy_upstream`, the credential settings
 * (`credential_command`, `api_key_command`, `credential_proxy_ttl_secs`) and the environment
 * the credential waterfall reads (`ANTHROPIC_API_KEY`, `CLAUDE_CODE_OAUTH_TOKEN`, `HOME`…).
 * Egress is not part of it: the proxy applies each sandbox's own policy, kept in its state
 * record and re-read when the state changes (clients.ts); older records without one fall back to
 * their repository's configuration (repo_policy.ts).
 *
 * Each field is hashed on its own (SHA-256, salted with the field name), so `proxy.json` (0600)
 * can say which fields differ without holding a command line or a key; the fingerprint is the
 * hash of those hashes. Nothing of this is served on `/health`.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { VERSION } from "../lib/version.ts";
import { formatHostPort } from "./address.ts";
import { realPathOr } from "../lib/paths.ts";

/** Environment variables the credential waterfall reads (their values count, never shown). */
export const CREDENTIAL_ENV: readonly string[] = [
  "ANTHROPIC_API_KEY",
  "CLAUDE_CODE_OAUTH_TOKEN",
  "CLAUDE_CONFIG_DIR",
  "CLAUDE_CODE_USE_BEDROCK",
  "CLAUDE_CODE_USE_VERTEX",
  "HOME",
];

/** The inputs of what a proxy serves. */
export interface ProxyServes {
  config_dir: string;
  address: string;
  version: string;
  upstream: string;
  credential_command: string | null;
  api_key_command: string | null;
  credential_ttl_secs: number;
  credential_env: Record<string, string | null>;
}

/** A fingerprint and its per-field hashes. */
export interface ServesFingerprint {
  fingerprint: string;
  fields: Record<string, string>;
}

/** The configuration directory as a real path (so two spellings of one directory agree). */
export function canonicalDir(dir: string): string {
  return realPathOr(dir);
}

/** What a proxy for `config`, at `bind:port`, started from `configDir` with `env`, serves. */
export function proxyServes(
  config: Pick<
    Config,
    | "credential_proxy_upstream"
    | "credential_command"
    | "api_key_command"
    | "credential_proxy_ttl_secs"
  >,
  where: {
    configDir: string;
    bind: string;
    port: number;
    env: (name: string) => string | undefined;
  },
): ProxyServes {
  const credentialEnv: Record<string, string | null> = {};
  for (const name of CREDENTIAL_ENV) credentialEnv[name] = where.env(name) ?? null;
  return {
    config_dir: canonicalDir(where.configDir),
    address: formatHostPort(where.bind, where.port),
    version: VERSION,
    upstream: config.credential_proxy_upstream,
    credential_command: config.credential_command ?? null,
    api_key_command: config.api_key_command ?? null,
    credential_ttl_secs: config.credential_proxy_ttl_secs,
    credential_env: credentialEnv,
  };
}

async function sha256(text: string): Promise<string> {
  const bytes = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return [...bytes.subarray(0, 16)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function stable(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const obj = value as Record<string, unknown>;
  return `{${
    Object.keys(obj).sort().map((k) => `${JSON.stringify(k)}:${stable(obj[k])}`).join(",")
  }}`;
}

/** The fingerprint of `serves`. */
export async function fingerprintServes(serves: ProxyServes): Promise<ServesFingerprint> {
  const fields: Record<string, string> = {};
  for (const key of Object.keys(serves).sort()) {
    const value = (serves as unknown as Record<string, unknown>)[key];
    fields[key] = await sha256(`tachikoma proxy\0${key}\0${stable(value)}`);
  }
  return { fingerprint: await sha256(stable(fields)), fields };
}

/** The fields that differ between a recorded fingerprint and a wanted one. */
export function changedFields(
  recorded: Record<string, string> | undefined,
  wanted: Record<string, string>,
): string[] {
  if (!recorded) return ["unknown: started by an older tachikoma"];
  const keys = new Set([...Object.keys(recorded), ...Object.keys(wanted)]);
  return [...keys].filter((k) => recorded[k] !== wanted[k]).sort();
}
