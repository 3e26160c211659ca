/**
 * The state store: `state.json` in the tachikoma config dir, shared by every tachikoma process.
 *
 * - Every write happens under an exclusive `flock` on `state.lock` for the whole
 *   read → change → write ({@link StateStore.update}), so concurrent commands never lose each
 *   other's changes. Reads take a shared lock.
 * - Writes are atomic: a uniquely named temp file in the same directory (mode 0600) is written,
 *   fsynced and renamed over `state.json`, then the directory is fsynced. A crash at any point
 *   leaves either the old or the new file; leftover temp files are removed by the next writer.
 * - tachikoma's version 1 files are read as they are and rewritten as version
 *   {@link STATE_VERSION}; unknown fields survive rewrites.
 * - A file that is not valid JSON or not the expected shape is never silently emptied: it is
 *   moved aside to `state.json.corrupt-<timestamp>` with a warning naming both paths.
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { errorMessage, RuntimeError } from "../lib/errors.ts";
import { log, type Logger } from "../lib/log.ts";
import { withFileLock } from "./lock.ts";
import {
  type SandboxRecord,
  STATE_VERSION,
  type StateFile,
  StateShapeError,
  validateRecord,
  validateStateFile,
} from "./schema.ts";

/** Options of {@link StateStore}. */
export interface StateStoreOptions {
  /** Time source (the corrupt-file timestamp). */
  clock?: Clock;
  /** Where the corrupt-file warning goes (default: the process logger). */
  logger?: Logger;
}

type LoadResult = { ok: true; state: StateFile } | { ok: false; reason: string };

const TEMP_PREFIX = "state.json.tmp";
const encoder = new TextEncoder();

/** A fresh empty state. */
function emptyState(): StateFile {
  return { version: STATE_VERSION, vms: [] };
}

/** `20260412T191946.123Z` — sortable, no `:` (safe in any file name). */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "");
}

/** The typed error for an I/O failure on a state path. */
function ioError(action: string, path: string, error: unknown): RuntimeError {
  return new RuntimeError("state_io", `cannot ${action} ${path}: ${errorMessage(error)}`, {
    cause: error,
    hint: "check the permissions of the tachikoma config directory (TACHIKOMA_CONFIG_DIR)",
  });
}

/** Reads and writes `<dir>/state.json` with locking and atomic replacement. */
export class StateStore {
  /** The config directory. */
  readonly dir: string;
  /** `<dir>/state.json`. */
  readonly path: string;
  /** `<dir>/state.lock`. */
  readonly lockPath: string;
  readonly #clock: Clock;
  readonly #logger: Logger;

  /** `dir` is the tachikoma config dir (`paths().dir`); it is created (0700) by the first write. */
  constructor(dir: string, options: StateStoreOptions = {}) {
    this.dir = dir.length > 1 ? dir.replace(/\/+$/, "") : dir;
    this.path = `${this.dir}/state.json`;
    this.lockPath = `${this.dir}/state.lock`;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? log;
  }

  /**
   * Reads state.json under a shared lock. A missing file (or config dir) gives
   * `{ version: STATE_VERSION, vms: [] }`. A corrupt file is moved aside (with a warning) and
   * the empty state returned. A file from a newer tachikoma throws `state_version`.
   */
  async read(): Promise<StateFile> {
    try {
      Deno.lstatSync(this.dir);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return emptyState();
      throw ioError("access", this.dir, error);
    }
    let first: LoadResult;
    try {
      first = await withFileLock(this.lockPath, () => Promise.resolve(this.#loadSync()), {
        shared: true,
        createDir: false,
      });
    } catch (error) {
      // The config dir vanished between the lstat and the open.
      if (error instanceof Deno.errors.NotFound) return emptyState();
      if (!(error instanceof Deno.errors.PermissionDenied)) throw error;
      // A read-only config dir: renames are atomic, so a lockless read is still consistent.
      first = this.#loadSync();
      if (first.ok) return first.state;
      throw new RuntimeError(
        "state_corrupt",
        `state file ${this.path} is corrupt: ${first.reason}`,
        {
          hint:
            `the directory is not writable, so it cannot be moved aside; fix or move it by hand`,
        },
      );
    }
    if (first.ok) return first.state;
    // Corrupt: take the lock exclusively, look again (another process may have handled it)
    // and move it aside.
    return await withFileLock(this.lockPath, () => this.#loadOrRecover());
  }

  /**
   * Holds the exclusive lock on state.lock for the whole read → `fn` → write. `fn` may mutate
   * the state it gets (or replace `state.vms`); when it returns without throwing, the state is
   * validated and written atomically as version {@link STATE_VERSION}. When it throws, nothing
   * is written and the error propagates. Returns `fn`'s result. Keep `fn` short (no backend or
   * network calls): every other tachikoma process waits for it. Long operations on one sandbox
   * hold `withSandboxLock` instead and call `update` for each state change.
   */
  update<T>(fn: (state: StateFile) => T | Promise<T>): Promise<T> {
    return withFileLock(this.lockPath, async () => {
      await this.#removeTemps();
      const state = await this.#loadOrRecover();
      const result = await fn(state);
      state.version = STATE_VERSION;
      try {
        validateStateFile(state);
      } catch (error) {
        throw new RuntimeError(
          "state_invalid",
          `refusing to write an invalid state to ${this.path}: ${errorMessage(error)}`,
          { cause: error },
        );
      }
      await this.#write(state);
      return result;
    });
  }

  /** The first record named exactly `name`, if any. */
  async get(name: string): Promise<SandboxRecord | undefined> {
    return (await this.read()).vms.find((r) => r.name === name);
  }

  /**
   * Inserts `record`, or replaces the record with the same name in place (dropping any
   * duplicates of that name tachikoma may have appended). Validates it first.
   */
  async put(record: SandboxRecord): Promise<void> {
    try {
      validateRecord(record, `record '${record.name}'`);
    } catch (error) {
      throw new RuntimeError("state_invalid", `invalid sandbox record: ${errorMessage(error)}`, {
        cause: error,
      });
    }
    await this.update((state) => {
      const index = state.vms.findIndex((r) => r.name === record.name);
      if (index < 0) {
        state.vms.push(record);
        return;
      }
      state.vms[index] = record;
      state.vms = state.vms.filter((r, i) => i <= index || r.name !== record.name);
    });
  }

  /** Removes every record named `name`; returns whether there was one. */
  remove(name: string): Promise<boolean> {
    return this.update((state) => {
      const before = state.vms.length;
      state.vms = state.vms.filter((r) => r.name !== name);
      return state.vms.length !== before;
    });
  }

  /**
   * Reads and validates state.json (caller holds the lock). One synchronous read (no thread-pool
   * hop: this is on the path of `tachikoma list`), one JSON.parse, one validation pass.
   */
  #loadSync(): LoadResult {
    let text: string;
    try {
      text = Deno.readTextFileSync(this.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return { ok: true, state: emptyState() };
      throw ioError("read", this.path, error);
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (error) {
      return { ok: false, reason: `not valid JSON: ${errorMessage(error)}` };
    }
    let state: StateFile;
    try {
      state = validateStateFile(data);
    } catch (error) {
      if (error instanceof StateShapeError) return { ok: false, reason: error.message };
      throw error;
    }
    if (state.version > STATE_VERSION) {
      throw new RuntimeError(
        "state_version",
        `${this.path} has version ${state.version}, written by a newer tachikoma ` +
          `(this one understands up to ${STATE_VERSION})`,
        { hint: "upgrade tachikoma; the file was left untouched" },
      );
    }
    return { ok: true, state };
  }

  /** {@link #loadSync}, moving a corrupt file aside (caller holds the exclusive lock). */
  async #loadOrRecover(): Promise<StateFile> {
    const loaded = this.#loadSync();
    if (loaded.ok) return loaded.state;
    await this.#moveAside(loaded.reason);
    return emptyState();
  }

  async #moveAside(reason: string): Promise<void> {
    const base = `${this.path}.corrupt-${stamp(this.#clock.now())}`;
    let target = base;
    for (let n = 1;; n++) {
      try {
        await Deno.lstat(target);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) break;
        throw ioError("access", target, error);
      }
      target = `${base}-${n}`;
    }
    try {
      await Deno.rename(this.path, target);
    } catch (error) {
      throw ioError("move aside the corrupt state file", this.path, error);
    }
    this.#logger.warn(
      `state file ${this.path} is corrupt (${reason}); moved it to ${target} and started ` +
        `with an empty state (sandboxes themselves are untouched)`,
    );
  }

  /** Removes temp files left by a writer that died mid-write (caller holds the lock). */
  async #removeTemps(): Promise<void> {
    try {
      for await (const entry of Deno.readDir(this.dir)) {
        if (!entry.name.startsWith(TEMP_PREFIX)) continue;
        const path = `${this.dir}/${entry.name}`;
        try {
          await Deno.remove(path);
          this.#logger.debug(`removed leftover temp file ${path}`);
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) throw error;
        }
      }
    } catch (error) {
      throw ioError("clean up temp files in", this.dir, error);
    }
  }

  /** Atomic replace: unique temp file, write, fsync, rename, fsync the directory. */
  async #write(state: StateFile): Promise<void> {
    const bytes = encoder.encode(JSON.stringify(state, null, 2) + "\n");
    const nonce = crypto.getRandomValues(new Uint32Array(1))[0].toString(16).padStart(8, "0");
    const temp = `${this.dir}/${TEMP_PREFIX}-${Deno.pid}-${nonce}`;
    try {
      const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      try {
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.rename(temp, this.path);
    } catch (error) {
      await Deno.remove(temp).catch(() => {});
      throw ioError("write", this.path, error);
    }
    // Make the rename itself durable (power loss); not needed for crash consistency.
    try {
      const dir = await Deno.open(this.dir, { read: true });
      try {
        await dir.sync();
      } finally {
        dir.close();
      }
    } catch {
      // Some platforms/filesystems cannot fsync a directory; the rename is still atomic.
    }
  }
}
