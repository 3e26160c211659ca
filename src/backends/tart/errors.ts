/**
 * Mapping tart's exit codes and messages to tachikoma's typed errors (tart-contract.md §1.3, §6).
 *
 * Exit 2 is tart's "VM does not exist / not running / already running" family; exit 64 is a usage
 * error (our argv or an incompatible tart); everything else is a runtime failure with a bare
 * message on stderr.
 *
 * @module
 */
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  type TachikomaError,
  UnreachableError,
} from "../../lib/errors.ts";
import type { RunResult } from "../../lib/process.ts";

/** The first `max` non-empty lines of a tool's stderr (or stdout), joined. */
export function firstLines(text: string, max = 4): string {
  return text.split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() !== "").slice(0, max)
    .join("\n");
}

/** The message tart printed: stderr, else stdout (some failures print there). */
export function tartMessage(result: RunResult): string {
  return firstLines(result.stderr) || firstLines(result.stdout) || "(no output)";
}

/** True for tart's "does not exist" errors. */
export function isDoesNotExist(result: RunResult): boolean {
  return /does not exist/.test(result.stderr);
}

/** True for tart's "is not running" errors (stop/exec on a stopped VM). */
export function isNotRunning(result: RunResult): boolean {
  return /is not running/.test(result.stderr);
}

/** True for tart's "already running" error. */
export function isAlreadyRunning(result: RunResult): boolean {
  return /is already running/.test(result.stderr);
}

/**
 * The typed error for a failed `tart <sub>` call. `vm` names the VM in the message when known.
 */
export function tartError(sub: string, result: RunResult, vm?: string): TachikomaError {
  const what = vm === undefined ? `tart ${sub}` : `tart ${sub} ${vm}`;
  const message = tartMessage(result);
  if (result.timedOut) {
    return new UnreachableError(`\`${what}\` did not finish in time`, {
      hint: "check that tart works: `tart list`",
    });
  }
  if (result.code === 2) {
    if (isAlreadyRunning(result)) return new ConflictError(`\`${what}\`: ${message}`);
    if (isNotRunning(result)) return new ConflictError(`\`${what}\`: ${message}`);
    return new NotFoundError(`\`${what}\`: ${message}`);
  }
  if (result.code === 64) {
    return new RuntimeError(
      "tart_usage",
      `tart rejected the arguments of \`${what}\` (exit 64): ${message}`,
      { hint: "check `tart --version`: tachikoma needs tart 2.0 or later" },
    );
  }
  if (result.code === 127) {
    return new UnreachableError(`tart is not installed or not on PATH (${message})`, {
      hint: "brew install cirruslabs/cli/tart (or set [tart] binary)",
    });
  }
  return new RuntimeError(
    "tart_failed",
    `\`${what}\` failed (exit ${result.code}): ${message}`,
  );
}
