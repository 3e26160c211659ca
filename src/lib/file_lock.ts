/**
 * Advisory file locks (`Deno.FsFile.lock`, i.e. `flock(2)` on Unix) that serialise tachikoma
 * processes around a shared file (the state file, a config file, the trust store, known_hosts…).
 *
 * Locks belong to the open file, so they also exclude other holders in the same process, and
 * the kernel drops them when the process dies (a SIGKILLed holder never leaves a stale lock).
 * Lock files are never deleted: unlinking a lock file while another process waits on it would
 * let two holders in at once.
 *
 * Waiting: without a signal the wait is a blocking `lock()` (the kernel queues waiters, no
 * polling). With a signal the lock is polled with `tryLock` (backoff 5 ms → ×2 → 100 ms, through
 * the injectable {@link Clock}) so that the wait can be abandoned.
 *
 * @module
 */
import { type Clock, systemClock } from "./clock.ts";
import { log } from "./log.ts";

/** Options of {@link withFileLock}. */
export interface FileLockOptions {
  /** Abandons the wait (the promise rejects with the signal's reason); fn is then never run. */
  signal?: AbortSignal;
  /** Take a shared (read) lock instead of an exclusive one. */
  shared?: boolean;
  /** Time source for polling when a signal is given (tests pass a fake). */
  clock?: Clock;
  /** Create the lock file's directory (mode 0700) when it is missing. Default true. */
  createDir?: boolean;
  /** Logged once at info level when the lock is busy and we start waiting. */
  waitMessage?: string;
}

const POLL_START_MS = 5;
const POLL_MAX_MS = 100;

/**
 * Opens (creating, mode 0600) a lock file, creating its directory when allowed. Synchronous:
 * these calls never block for long, and skipping the thread-pool hop keeps `tachikoma list`
 * fast.
 */
function openLockFile(path: string, createDir: boolean): Deno.FsFile {
  const open = () => Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
  try {
    return open();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound) || !createDir) throw error;
    const slash = path.lastIndexOf("/");
    if (slash <= 0) throw error;
    Deno.mkdirSync(path.slice(0, slash), { recursive: true, mode: 0o700 });
    return open();
  }
}

/** Waits for the lock, blocking in the kernel or polling when abortable. */
async function acquire(
  file: Deno.FsFile,
  path: string,
  options: FileLockOptions,
): Promise<void> {
  const { signal } = options;
  const exclusive = !options.shared;
  signal?.throwIfAborted();
  if (file.tryLockSync(exclusive)) return;
  if (options.waitMessage) log.info(options.waitMessage);
  else log.debug(`waiting for lock ${path}`);
  if (!signal) {
    await file.lock(exclusive);
    return;
  }
  const clock = options.clock ?? systemClock;
  let delay = POLL_START_MS;
  for (;;) {
    await clock.sleep(delay, signal);
    signal.throwIfAborted();
    if (file.tryLockSync(exclusive)) return;
    delay = Math.min(delay * 2, POLL_MAX_MS);
  }
}

/**
 * Runs `fn` while holding a lock on the file at `path` (created 0600 if missing, its directory
 * 0700). Waits for other holders — in this or any other process. With `signal`, the wait can be
 * aborted: the promise then rejects with the signal's reason and `fn` never runs. The lock is
 * released when `fn` settles, whether it returned or threw.
 */
export async function withFileLock<T>(
  path: string,
  fn: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  options.signal?.throwIfAborted();
  const file = openLockFile(path, options.createDir ?? true);
  try {
    await acquire(file, path, options);
    try {
      return await fn();
    } finally {
      try {
        file.unlockSync();
      } catch {
        // closing the file below releases the lock anyway
      }
    }
  } finally {
    file.close();
  }
}

/**
 * Runs `fn` under the exclusive lock of `path` only when the lock is free right now; otherwise
 * returns `{ locked: false }` at once without running it (for background work that must never
 * wait for, or get in the way of, a command).
 */
export async function tryWithFileLock<T>(
  path: string,
  fn: () => Promise<T>,
): Promise<{ locked: true; value: T } | { locked: false }> {
  const file = openLockFile(path, true);
  try {
    if (!file.tryLockSync(true)) return { locked: false };
    try {
      return { locked: true, value: await fn() };
    } finally {
      try {
        file.unlockSync();
      } catch {
        // closing the file below releases the lock anyway
      }
    }
  } finally {
    file.close();
  }
}
