/**
 * Claude Code's credential store on disk: `$CLAUDE_CONFIG_DIR/.credentials.json`, else
 * `~/.claude/.credentials.json`. The OAuth access token is `claudeAiOauth.accessToken`
 * (top-level `accessToken` is accepted too); a token whose `expiresAt` (ms since the epoch) has
 * passed, or passes within a minute, is skipped with a hint to refresh it on the host. The file
 * is read on the host only; it is never copied anywhere.
 *
 * @module
 */
import { errorMessage } from "../../lib/errors.ts";
import { redact, registerSecret } from "../../lib/redact.ts";
import type { CredentialWorld, OAuthCredential, SourceOutcome } from "../types.ts";

/** Tokens this close to expiry are treated as expired. */
export const EXPIRY_SKEW_MS = 60_000;

/** The credentials file path for this world, or null without a home directory. */
export function credentialsFilePath(world: CredentialWorld): string | null {
  const dir = world.env("CLAUDE_CONFIG_DIR");
  if (dir) return `${dir.replace(/\/+$/, "")}/.credentials.json`;
  if (!world.home) return null;
  return `${world.home}/.claude/.credentials.json`;
}

/**
 * Extracts the OAuth token from Claude's credentials JSON (file or Keychain entry). Returns a
 * reason string when there is none or it has expired.
 */
export function parseClaudeCredentials(
  text: string,
  source: OAuthCredential["source"],
  now: number,
): { credential: OAuthCredential } | { reason: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { reason: "is not valid JSON" };
  }
  if (typeof data !== "object" || data === null) return { reason: "is not a JSON object" };
  const record = data as Record<string, unknown>;
  const oauth = record.claudeAiOauth;
  let token: unknown;
  let expires: unknown;
  if (typeof oauth === "object" && oauth !== null) {
    token = (oauth as Record<string, unknown>).accessToken;
    expires = (oauth as Record<string, unknown>).expiresAt;
  }
  if (typeof token !== "string" || token.trim() === "") {
    token = record.accessToken;
    expires = record.expiresAt;
  }
  if (typeof token !== "string" || token.trim() === "") {
    return { reason: "holds no claudeAiOauth.accessToken" };
  }
  const value = token.trim();
  registerSecret(value);
  const expiresAt = typeof expires === "number" && Number.isFinite(expires) ? expires : undefined;
  if (expiresAt !== undefined && expiresAt - EXPIRY_SKEW_MS <= now) {
    return {
      reason: `OAuth token expired at ${
        new Date(expiresAt).toISOString()
      } (run \`claude\` on the host to refresh it)`,
    };
  }
  return { credential: { kind: "oauth", source, value, expiresAt } };
}

/** The credentials file as a source. */
export async function credentialsFileSource(world: CredentialWorld): Promise<SourceOutcome> {
  const path = credentialsFilePath(world);
  if (!path) return { outcome: "skipped", reason: "no home directory" };
  let text: string;
  try {
    text = await world.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return { outcome: "miss", reason: `${path}: absent` };
    }
    return { outcome: "error", reason: redact(`${path}: ${errorMessage(error)}`) };
  }
  if (text.trim() === "") return { outcome: "miss", reason: `${path}: empty` };
  const parsed = parseClaudeCredentials(text, "credentials_file", world.clock.now());
  if ("reason" in parsed) {
    return { outcome: "miss", reason: `${path}: ${parsed.reason}` };
  }
  return { outcome: "hit", credential: parsed.credential };
}
