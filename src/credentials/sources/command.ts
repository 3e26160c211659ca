/**
 * Credential and API-key commands: `sh -c <command>` on the host, killed after a timeout, output
 * trimmed. Whatever a command prints is registered as a secret before anything is logged, so a
 * failing command that echoes its token on stderr never leaks it.
 *
 * @module
 */
import { errorMessage } from "../../lib/errors.ts";
import { redact, registerSecret } from "../../lib/redact.ts";
import type { CredentialWorld, SourceOutcome } from "../types.ts";
import { kindFromPrefix } from "../types.ts";

/** Default time a credential command may take. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

/** The outcome of running a program that prints a secret. */
export type SecretOutput = { ok: true; value: string } | { ok: false; reason: string };

/** Which command {@link commandSource} runs, and for how long at most. */
export interface CommandSourceRequest {
  /** The source the command stands for. */
  source: "credential_command" | "api_key_command";
  /** The configured shell command; absent or blank when not configured. */
  command: string | undefined;
  /** Time the command may take. */
  timeoutMs: number;
}

/** The last non-empty line of `text`, shortened, for a log line. */
function lastLine(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l.length > 0);
  const line = lines.at(-1) ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Runs `argv` (program first) and returns its trimmed stdout when it exits 0 with output. Never throws: a
 * missing program, a timeout, a non-zero exit or empty output become a reason.
 */
export async function runSecretCommand(
  world: CredentialWorld,
  argv: [string, ...string[]],
  timeoutMs: number,
): Promise<SecretOutput> {
  const [cmd, ...args] = argv;
  let result;
  try {
    result = await world.runner.run(cmd, args, { timeoutMs });
  } catch (error) {
    return { ok: false, reason: redact(errorMessage(error)) };
  }
  const value = result.stdout.trim();
  // Register first: stderr below may repeat it.
  registerSecret(value);
  for (const line of value.split("\n")) registerSecret(line.trim());
  if (result.timedOut) {
    return { ok: false, reason: `timed out after ${Math.round(timeoutMs / 1000)} s` };
  }
  if (result.code !== 0) {
    const detail = lastLine(result.stderr);
    return {
      ok: false,
      reason: redact(`exited with code ${result.code}${detail ? `: ${detail}` : ""}`),
    };
  }
  if (value.length === 0) return { ok: false, reason: "printed nothing" };
  return { ok: true, value };
}

/**
 * A configured command as a source. `credential_command` prints an OAuth token and
 * `api_key_command` an API key, unless the printed value's prefix says otherwise
 * (`sk-ant-api…` is always an API key, `sk-ant-oat…` always an OAuth token).
 */
export async function commandSource(
  world: CredentialWorld,
  request: CommandSourceRequest,
): Promise<SourceOutcome> {
  const { source, command, timeoutMs } = request;
  if (!command || command.trim().length === 0) {
    return { outcome: "skipped", reason: "not configured" };
  }
  const out = await runSecretCommand(world, ["sh", "-c", command], timeoutMs);
  if (!out.ok) return { outcome: "error", reason: out.reason };
  const byDefault = source === "credential_command" ? "oauth" : "api_key";
  const kind = kindFromPrefix(out.value) ?? byDefault;
  return { outcome: "hit", credential: { kind, source, value: out.value } };
}
