/**
 * Provisioning errors: a failing step stops provisioning with a {@link ProvisionError} naming
 * the step and carrying the guest's stderr (trimmed, tail only, redacted); core records the
 * last completed step, so the next `spawn` resumes at the failed one.
 *
 * @module
 */
import { RuntimeError, TachikomaError } from "../lib/errors.ts";
import { redact } from "../lib/redact.ts";

const MAX_LINES = 20;
const MAX_CHARS = 2_000;

/** The last lines of a command's stderr, trimmed and redacted. */
export function stderrTail(stderr: string): string {
  const lines = stderr.replace(/\r/g, "").trim().split("\n");
  let tail = lines.slice(-MAX_LINES).join("\n");
  if (tail.length > MAX_CHARS) tail = "…" + tail.slice(-MAX_CHARS);
  else if (lines.length > MAX_LINES) tail = "…\n" + tail;
  return redact(tail);
}

/** A guest command exited non-zero. Internal to provisioning; steps turn it into a ProvisionError. */
export class GuestCommandError extends RuntimeError {
  /** The guest's stderr (raw; use {@link stderrTail} to show it). */
  readonly stderr: string;
  /** The command's exit code. */
  readonly exitCode_: number;

  constructor(what: string, code: number, stderr: string) {
    super("guest_command", `${what} failed (exit ${code})`);
    this.stderr = stderr;
    this.exitCode_ = code;
  }
}

/** Options of {@link ProvisionError}. */
export interface ProvisionErrorOptions {
  /** The guest's stderr, shown (tail) under the message. */
  stderr?: string;
  cause?: unknown;
  /** Replaces the default hint (run spawn again). */
  hint?: string;
  /** The guest is unusable as it is (no base system): core stops it and records it failed. */
  unusable?: boolean;
}

/** A provisioning step failed. */
export class ProvisionError extends RuntimeError {
  /** The step that failed (`ssh_key`, `code`, …). */
  readonly step: string;
  /** The guest's stderr tail (trimmed, redacted); empty when there was none. */
  readonly stderr: string;
  /** See {@link ProvisionErrorOptions.unusable}. */
  readonly unusable: boolean;

  constructor(step: string, detail: string, options: ProvisionErrorOptions = {}) {
    const tail = options.stderr ? stderrTail(options.stderr) : "";
    super(
      "provision_failed",
      redact(`provisioning step '${step}' failed: ${detail}`) +
        (tail ? `\n  guest stderr:\n    ${tail.split("\n").join("\n    ")}` : ""),
      {
        cause: options.cause,
        hint: options.hint ??
          "fix the cause, then run `tachikoma spawn` again: provisioning resumes at " +
            `step '${step}'`,
      },
    );
    this.step = step;
    this.stderr = tail;
    this.unusable = options.unusable ?? false;
  }
}

/** Wraps anything a step threw into a {@link ProvisionError} for `step`. */
export function toProvisionError(step: string, error: unknown): ProvisionError {
  if (error instanceof ProvisionError) return error;
  if (error instanceof GuestCommandError) {
    return new ProvisionError(step, error.message, { stderr: error.stderr, cause: error });
  }
  if (error instanceof TachikomaError) {
    return new ProvisionError(step, error.message, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new ProvisionError(step, message, { cause: error });
}
