/**
 * The macOS Keychain (macOS only): service `Claude Code` holds an API key; service
 * `Claude Code-credentials` holds Claude's OAuth JSON (`claudeAiOauth.accessToken`,
 * `expiresAt`). Both are read on the host with `security find-generic-password -w` under a
 * timeout (a locked Keychain may wait for a GUI prompt). Unlike tachikoma (Rust), the OAuth
 * entry is used by the host proxy and never copied into a guest.
 *
 * @module
 */
import { registerSecret } from "../../lib/redact.ts";
import type { CredentialWorld, SourceOutcome } from "../types.ts";
import { kindFromPrefix } from "../types.ts";
import { runSecretCommand } from "./command.ts";
import { parseClaudeCredentials } from "./file.ts";

/** Keychain service holding an API key. */
export const KEYCHAIN_API_KEY_SERVICE = "Claude Code";
/** Keychain service holding Claude's OAuth credentials JSON. */
export const KEYCHAIN_OAUTH_SERVICE = "Claude Code-credentials";

/** The Keychain as a source. */
export async function keychainSource(
  world: CredentialWorld,
  timeoutMs: number,
): Promise<SourceOutcome> {
  if (world.os !== "darwin") return { outcome: "skipped", reason: "not macOS" };
  const reasons: string[] = [];
  const key = await runSecretCommand(
    world,
    ["security", "find-generic-password", "-s", KEYCHAIN_API_KEY_SERVICE, "-w"],
    timeoutMs,
  );
  if (key.ok) {
    registerSecret(key.value);
    const kind = kindFromPrefix(key.value) ?? "api_key";
    return { outcome: "hit", credential: { kind, source: "keychain", value: key.value } };
  }
  reasons.push(`'${KEYCHAIN_API_KEY_SERVICE}': ${key.reason}`);
  const oauth = await runSecretCommand(
    world,
    ["security", "find-generic-password", "-s", KEYCHAIN_OAUTH_SERVICE, "-w"],
    timeoutMs,
  );
  if (oauth.ok) {
    const parsed = parseClaudeCredentials(oauth.value, "keychain", world.clock.now());
    if ("credential" in parsed) return { outcome: "hit", credential: parsed.credential };
    reasons.push(`'${KEYCHAIN_OAUTH_SERVICE}': ${parsed.reason}`);
  } else {
    reasons.push(`'${KEYCHAIN_OAUTH_SERVICE}': ${oauth.reason}`);
  }
  return { outcome: "miss", reason: reasons.join("; ") };
}
