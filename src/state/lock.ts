/**
 * The locks of the state layer: one lock file per sandbox (`<dir>/locks/<name>.lock`) held for
 * the whole of a command that changes that sandbox. The advisory file lock itself
 * ({@link withFileLock}, also used for `state.lock`) lives in `src/lib/file_lock.ts` and is
 * re-exported here.
 *
 * @module
 */
import type { Clock } from "../lib/clock.ts";
import { tryWithFileLock, withFileLock } from "../lib/file_lock.ts";
import { shortHash } from "../lib/naming.ts";

export { type FileLockOptions, tryWithFileLock, withFileLock } from "../lib/file_lock.ts";

const SAFE_LOCK_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/**
 * The lock file name for a sandbox: the name itself when it is a safe single path component
 * (every slug is), otherwise an encoded form (`%XX` escapes) so an explicit hostile name like
 * `../x` or `a/b` can never point outside `<dir>/locks/`.
 */
export function sandboxLockFileName(name: string): string {
  if (SAFE_LOCK_NAME.test(name)) return `${name}.lock`;
  const bytes = new TextEncoder().encode(name);
  let out = "";
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(c) ? c : `%${b.toString(16).padStart(2, "0").toUpperCase()}`;
  }
  // Keep the component well under NAME_MAX (255 bytes); a hash of the full name keeps
  // truncated names distinct.
  if (out.length > 200) out = `${out.slice(0, 180)}-${shortHash(name, 16)}`;
  return `%${out}.lock`;
}

/** The path of the lock file for sandbox `name` in config dir `dir`. */
export function sandboxLockPath(dir: string, name: string): string {
  return `${dir}/locks/${sandboxLockFileName(name)}`;
}

/** Which sandbox lock {@link withSandboxLock} takes, and how it waits. */
export interface SandboxLock {
  /** The tachikoma config dir (the lock is `<dir>/locks/<name>.lock`). */
  dir: string;
  /** The sandbox name. */
  name: string;
  /** Aborts the wait. */
  signal?: AbortSignal;
  /** Clock of the abortable wait's polling. */
  clock?: Clock;
}

/**
 * Runs `fn` while holding the exclusive lock of sandbox `name`: `<dir>/locks/<name>.lock`
 * (`dir` = the tachikoma config dir). Every command that changes a sandbox holds it for the
 * whole operation, so two `tachikoma spawn` of one branch never race. Waits for other holders
 * (logging once that it does); abortable with `signal`.
 */
export function withSandboxLock<T>(lock: SandboxLock, fn: () => Promise<T>): Promise<T> {
  const { dir, name } = lock;
  return withFileLock(sandboxLockPath(dir, name), fn, {
    signal: lock.signal,
    clock: lock.clock,
    waitMessage: `waiting for sandbox '${name}': another tachikoma command is using it`,
  });
}

/**
 * Runs `fn` under the lock of sandbox `name` only when no command holds it right now (see
 * {@link tryWithFileLock}): `{ locked: false }` means another command is using the sandbox.
 */
export function tryWithSandboxLock<T>(
  dir: string,
  name: string,
  fn: () => Promise<T>,
): Promise<{ locked: true; value: T } | { locked: false }> {
  return tryWithFileLock(sandboxLockPath(dir, name), fn);
}
