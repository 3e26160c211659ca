/**
 * The shapes the credential waterfall works with: which source a credential came from, what
 * kind it is (decides the header the proxy adds), and the injectable world the sources read
 * (environment, files, programs, clock), so every source is tested without touching the host.
 *
 * @module
 */
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";
import type { CommandRunner } from "../lib/process.ts";

/**
 * Where a credential came from, in waterfall order. This is the `credential_source` the proxy's
 * `/health` reports.
 */
export type CredentialSourceId =
  | "keychain"
  | "oauth_env"
  | "credential_command"
  | "credentials_file"
  | "api_key_env"
  | "api_key_command"
  | "bedrock"
  | "vertex";

/** The waterfall order. */
export const SOURCE_ORDER: readonly CredentialSourceId[] = [
  "keychain",
  "oauth_env",
  "credential_command",
  "credentials_file",
  "api_key_env",
  "api_key_command",
  "bedrock",
  "vertex",
];

/** Human labels of the sources (log lines, `doctor`). */
export const SOURCE_LABELS: Readonly<Record<CredentialSourceId, string>> = {
  keychain: "macOS Keychain",
  oauth_env: "CLAUDE_CODE_OAUTH_TOKEN env var",
  credential_command: "credential_command",
  credentials_file: "Claude credentials file",
  api_key_env: "ANTHROPIC_API_KEY env var",
  api_key_command: "api_key_command",
  bedrock: "AWS Bedrock",
  vertex: "Google Vertex",
};

/** An Anthropic API key: sent upstream as `x-api-key`. */
export interface ApiKeyCredential {
  kind: "api_key";
  source: CredentialSourceId;
  value: string;
}

/**
 * A Claude OAuth access token: sent upstream as `Authorization: Bearer` with the OAuth beta
 * flag. `expiresAt` (ms since the epoch) is known for tokens read from Claude's credential
 * store; the cache never serves a token past it.
 */
export interface OAuthCredential {
  kind: "oauth";
  source: CredentialSourceId;
  value: string;
  expiresAt?: number;
}

/**
 * The host talks to Claude through a cloud provider (Bedrock, Vertex). The proxy cannot
 * forward to Anthropic with these; direct injection may pass `vars` to the guest.
 */
export interface PassthroughCredential {
  kind: "passthrough";
  source: "bedrock" | "vertex";
  /** The provider's variables as set on the host (secret values are registered). */
  vars: Record<string, string>;
}

/** What the waterfall found. */
export type Credential = ApiKeyCredential | OAuthCredential | PassthroughCredential;

/** What one source did, for logs and `doctor` (never holds a secret). */
export interface SourceAttempt {
  source: CredentialSourceId;
  /** `hit`: used; `miss`: nothing there; `skipped`: not applicable; `error`: failed. */
  outcome: "hit" | "miss" | "skipped" | "error";
  /** Why, for miss/skipped/error. Redacted, never the secret. */
  reason?: string;
}

/** The result of one waterfall run. */
export interface WaterfallResult {
  credential: Credential | null;
  attempts: SourceAttempt[];
}

/** The world the sources read. Tests pass fakes for every member. */
export interface CredentialWorld {
  /** Environment lookup. */
  env(name: string): string | undefined;
  /** Reads a text file; throws `Deno.errors.NotFound` when it is missing. */
  readTextFile(path: string): Promise<string>;
  /** Runs programs (`security`, `sh -c <command>`). */
  runner: CommandRunner;
  /** The host OS (the Keychain is read on `darwin` only). */
  os: typeof Deno.build.os;
  /** The user's home directory, when known. */
  home: string | undefined;
  clock: Clock;
  /** Where sources log why they failed (redacted). */
  logger: Logger;
}

/** The configuration keys the waterfall uses. */
export interface CredentialSettings {
  credential_command?: string;
  api_key_command?: string;
  /** Kill `credential_command`/`api_key_command`/`security` after this long (default 10 s). */
  commandTimeoutMs?: number;
}

/** What a source returns: a credential, or why not. */
export type SourceOutcome =
  | { outcome: "hit"; credential: Credential }
  | { outcome: "miss" | "skipped" | "error"; reason: string };

/** A credential kind decided from a token's well-known prefix, or null when it has none. */
export function kindFromPrefix(token: string): "api_key" | "oauth" | null {
  if (token.startsWith("sk-ant-api")) return "api_key";
  if (token.startsWith("sk-ant-oat")) return "oauth";
  return null;
}
