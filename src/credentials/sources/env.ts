/**
 * Environment sources: `CLAUDE_CODE_OAUTH_TOKEN` (an OAuth token) and `ANTHROPIC_API_KEY` (an
 * API key). Values are trimmed: whitespace is never part of a token.
 *
 * @module
 */
import { registerSecret } from "../../lib/redact.ts";
import type { CredentialWorld, SourceOutcome } from "../types.ts";

/** `CLAUDE_CODE_OAUTH_TOKEN`. */
export function oauthEnvSource(world: CredentialWorld): SourceOutcome {
  const value = world.env("CLAUDE_CODE_OAUTH_TOKEN")?.trim();
  if (!value) return { outcome: "miss", reason: "not set" };
  registerSecret(value);
  return { outcome: "hit", credential: { kind: "oauth", source: "oauth_env", value } };
}

/** `ANTHROPIC_API_KEY`. */
export function apiKeyEnvSource(world: CredentialWorld): SourceOutcome {
  const value = world.env("ANTHROPIC_API_KEY")?.trim();
  if (!value) return { outcome: "miss", reason: "not set" };
  registerSecret(value);
  return { outcome: "hit", credential: { kind: "api_key", source: "api_key_env", value } };
}
