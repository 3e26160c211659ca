/**
 * The credential waterfall: the first source that yields a credential wins.
 *
 * 1. macOS Keychain (`Claude Code`, then `Claude Code-credentials`; macOS only)
 * 2. `CLAUDE_CODE_OAUTH_TOKEN`
 * 3. `credential_command`
 * 4. Claude's credentials file (`claudeAiOauth.accessToken`, honouring `expiresAt`)
 * 5. `ANTHROPIC_API_KEY`
 * 6. `api_key_command`
 * 7. Bedrock / Vertex passthrough
 *
 * A source that fails logs why (redacted; never the secret) and the waterfall falls through.
 *
 * @module
 */
import { systemClock } from "../lib/clock.ts";
import { log } from "../lib/log.ts";
import { defaultRunner } from "../lib/process.ts";
import { commandSource, DEFAULT_COMMAND_TIMEOUT_MS } from "./sources/command.ts";
import { apiKeyEnvSource, oauthEnvSource } from "./sources/env.ts";
import { credentialsFileSource } from "./sources/file.ts";
import { keychainSource } from "./sources/keychain.ts";
import { bedrockSource, vertexSource } from "./sources/passthrough.ts";
import {
  type CredentialSettings,
  type CredentialSourceId,
  type CredentialWorld,
  SOURCE_LABELS,
  SOURCE_ORDER,
  type SourceAttempt,
  type SourceOutcome,
  type WaterfallResult,
} from "./types.ts";

/** The real host: process environment, real files, real programs, the system clock. */
export function hostWorld(): CredentialWorld {
  return {
    env: (name) => Deno.env.get(name),
    readTextFile: (path) => Deno.readTextFile(path),
    runner: defaultRunner,
    os: Deno.build.os,
    home: Deno.env.get("HOME"),
    clock: systemClock,
    logger: log,
  };
}

function runSource(
  id: CredentialSourceId,
  world: CredentialWorld,
  settings: CredentialSettings,
): Promise<SourceOutcome> | SourceOutcome {
  const timeoutMs = settings.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  switch (id) {
    case "keychain":
      return keychainSource(world, timeoutMs);
    case "oauth_env":
      return oauthEnvSource(world);
    case "credential_command":
      return commandSource(world, { source: id, command: settings.credential_command, timeoutMs });
    case "credentials_file":
      return credentialsFileSource(world);
    case "api_key_env":
      return apiKeyEnvSource(world);
    case "api_key_command":
      return commandSource(world, { source: id, command: settings.api_key_command, timeoutMs });
    case "bedrock":
      return bedrockSource(world);
    case "vertex":
      return vertexSource(world);
  }
}

/**
 * Runs the waterfall once. Failing sources (a command that exits non-zero or times out, an
 * unreadable file) are logged at warn level; plain misses only at debug level.
 */
export async function runWaterfall(
  settings: CredentialSettings,
  world: CredentialWorld = hostWorld(),
): Promise<WaterfallResult> {
  const attempts: SourceAttempt[] = [];
  for (const id of SOURCE_ORDER) {
    const result = await runSource(id, world, settings);
    if (result.outcome === "hit") {
      attempts.push({ source: id, outcome: "hit" });
      return { credential: result.credential, attempts };
    }
    attempts.push({ source: id, outcome: result.outcome, reason: result.reason });
    if (result.outcome === "error") {
      world.logger.warn(`credentials: ${SOURCE_LABELS[id]} failed: ${result.reason}`);
    } else if (result.outcome === "miss" && id === "credentials_file") {
      // An expired or unreadable Claude login is worth saying; an absent file is not.
      if (!/: absent$/.test(result.reason)) {
        world.logger.warn(`credentials: ${SOURCE_LABELS[id]} skipped: ${result.reason}`);
      }
    } else {
      world.logger.debug(`credentials: ${SOURCE_LABELS[id]}: ${result.reason}`);
    }
  }
  return { credential: null, attempts };
}

/** One line naming where each source stood, for a 503 log line or `doctor`. */
export function describeAttempts(attempts: SourceAttempt[]): string {
  return attempts
    .map((a) => `${a.source}: ${a.outcome}${a.reason ? ` (${a.reason})` : ""}`)
    .join("; ");
}
