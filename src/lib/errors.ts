/**
 * Typed errors. Every error tachikoma raises on purpose is a {@link TachikomaError}: it carries
 * a stable machine `code` (used in `--json` error documents), a process `exitCode` and an
 * optional `hint` telling the user what to do next.
 *
 * Exit codes: 0 ok, 1 runtime error, 2 usage or config error, 3 not found,
 * 70 not implemented, 130 interrupted.
 *
 * @module
 */

/** Process exit codes used by tachikoma. */
export const ExitCode = {
  Ok: 0,
  Runtime: 1,
  Usage: 2,
  NotFound: 3,
  NotImplemented: 70,
  Interrupted: 130,
} as const;

/** One of the {@link ExitCode} values. */
export type ExitCodeValue = typeof ExitCode[keyof typeof ExitCode];

/** Options shared by all tachikoma errors. */
export interface TachikomaErrorOptions {
  /** What the user can do about it. */
  hint?: string;
  /** The underlying error. */
  cause?: unknown;
}

/** What a {@link TachikomaError} is built from besides its code and message. */
export interface TachikomaErrorInit extends TachikomaErrorOptions {
  /** Process exit code; {@link ExitCode.Runtime} when absent. */
  exitCode?: ExitCodeValue;
}

/** Base class of every error tachikoma raises on purpose. */
export class TachikomaError extends Error {
  /** Stable machine-readable code, snake_case. */
  readonly code: string;
  /** Process exit code for this error. */
  readonly exitCode: ExitCodeValue;
  /** What the user can do about it. */
  readonly hint?: string;

  constructor(code: string, message: string, init: TachikomaErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = init.exitCode ?? ExitCode.Runtime;
    this.hint = init.hint;
  }
}

/** Bad command-line usage (exit 2). */
export class UsageError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("usage", message, { ...options, exitCode: ExitCode.Usage });
  }
}

/** Invalid configuration (exit 2). The message names the file, key and line where known. */
export class ConfigError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("config", message, { ...options, exitCode: ExitCode.Usage });
  }
}

/** Something looked up does not exist (exit 3). */
export class NotFoundError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("not_found", message, { ...options, exitCode: ExitCode.NotFound });
  }
}

/** A request that conflicts with the current state, e.g. the name is taken (exit 1). */
export class ConflictError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("conflict", message, { ...options, exitCode: ExitCode.Runtime });
  }
}

/** A system tachikoma talks to cannot be reached (exit 1). */
export class UnreachableError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("unreachable", message, { ...options, exitCode: ExitCode.Runtime });
  }
}

/** A deadline passed (exit 1). */
export class TimeoutError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("timeout", message, { ...options, exitCode: ExitCode.Runtime });
  }
}

/** The backend cannot do this (exit 1). */
export class UnsupportedError extends TachikomaError {
  constructor(message: string, options: TachikomaErrorOptions = {}) {
    super("unsupported", message, { ...options, exitCode: ExitCode.Runtime });
  }
}

/** The command exists but is not built yet (exit 70). */
export class NotImplementedError extends TachikomaError {
  constructor(command: string) {
    super("not_implemented", `'${command}' is not implemented yet`, {
      exitCode: ExitCode.NotImplemented,
    });
  }
}

/** The user interrupted the operation with Ctrl-C (exit 130). */
export class InterruptedError extends TachikomaError {
  constructor(message = "interrupted") {
    super("interrupted", message, { exitCode: ExitCode.Interrupted });
  }
}

/** A generic runtime failure with a code (exit 1). */
export class RuntimeError extends TachikomaError {
  constructor(code: string, message: string, options: TachikomaErrorOptions = {}) {
    super(code, message, { ...options, exitCode: ExitCode.Runtime });
  }
}

/** Returns a short message for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
