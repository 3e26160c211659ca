/**
 * What the file operations of `sandbox_files.ts` share: the sandbox a file operation acts on,
 * how a constant guest script runs there (as the sandbox user, in the code directory, every
 * value a positional parameter), the exit codes those scripts use and the typed errors they
 * map to, guest path validation, and content checks (binary or text, sha256).
 *
 * @module
 */
import type { Backend, ExecResult } from "../backends/backend.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TachikomaError,
  UsageError,
} from "../lib/errors.ts";
import { GUEST_CODE_DIR } from "../provision/shares.ts";

/** Exit codes the scripts use for conditions the caller maps to typed errors. */
export const EXIT = { notFound: 64, isDir: 65, notDir: 66, denied: 67, changed: 68 } as const;

/** The sandbox a file operation acts on. */
export interface FileTarget {
  backend: Backend;
  /** Sandbox name (as the engine knows it). */
  sandbox: string;
  /** Aborts the guest command. */
  signal?: AbortSignal;
}

/** The SHA-256 of `data`, lowercase hex. */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * True when `data` looks binary: a NUL byte in its first 8 KiB, or not valid UTF-8 (a
 * multi-byte character cut by truncation at the end does not count).
 */
export function isBinary(data: Uint8Array, truncated = false): boolean {
  if (data.subarray(0, 8192).includes(0)) return true;
  let end = data.length;
  if (truncated) {
    // Drop an incomplete UTF-8 sequence at the cut (at most 3 bytes).
    let i = end - 1;
    while (i >= 0 && end - i <= 3 && (data[i] & 0xc0) === 0x80) i--;
    if (i >= 0 && data[i] >= 0xc0) {
      const need = data[i] >= 0xf0 ? 4 : data[i] >= 0xe0 ? 3 : 2;
      if (end - i < need) end = i;
    }
  }
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(0, end));
    return false;
  } catch {
    return true;
  }
}

/** Octal permission bits with at least four digits (`"644"` → `"0644"`). */
export function octal(bits: string | undefined): string {
  const value = (bits ?? "").trim();
  if (!/^[0-7]+$/.test(value)) return value;
  return value.padStart(4, "0");
}

/**
 * Validates a guest path; a relative one gets `./` so no value ever starts with `-` (and so
 * it resolves from the code directory, the commands' working directory).
 */
export function normalizePath(path: string): string {
  if (path === "") throw new UsageError("path is empty");
  if (path.includes("\0")) throw new UsageError("path contains a NUL byte");
  return path.startsWith("/") ? path : `./${path}`;
}

export function run(
  target: FileTarget,
  script: string,
  args: string[],
  stdin?: Uint8Array,
): Promise<ExecResult> {
  return target.backend.exec(target.sandbox, {
    argv: ["sh", "-c", script, "sh", ...args],
    cwd: GUEST_CODE_DIR,
    user: "user",
    stdin,
    signal: target.signal,
  });
}

/** Maps a script's exit status to a typed error. */
export function check(result: ExecResult, path: string, action: string): void {
  if (result.code === 0) return;
  const detail = new TextDecoder().decode(result.stderr).trim().split("\n").slice(-3).join("; ");
  const message = detail || `exit status ${result.code}`;
  switch (result.code) {
    case EXIT.notFound:
      throw new NotFoundError(message, {
        hint: "relative paths start at the code directory (/mnt/tachikoma/code)",
      });
    case EXIT.isDir:
    case EXIT.notDir:
      throw new UsageError(message);
    case EXIT.denied:
      throw new RuntimeError("permission_denied", message, {
        hint: "the tools act as the sandbox user; use exec_in_sandbox with sudo for other files",
      });
    case EXIT.changed:
      throw new ConflictError(message, { hint: "read the file again and redo the edit" });
  }
  throw new TachikomaError(
    "guest_command_failed",
    `cannot ${action} ${path} in the sandbox: ${message}`,
  );
}
