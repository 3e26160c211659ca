/**
 * The trust store, `<config dir>/trust.json` (0600): which repo config files the user has
 * trusted, keyed by the file's real path, each with the SHA-256 of the exact bytes that were
 * trusted and when. Any change to a file's bytes makes it untrusted again (direnv/mise style).
 *
 * ```json
 * { "version": 1, "files": { "/src/app/.tachikoma.toml": { "sha256": "…", "trusted_at": "…" } } }
 * ```
 *
 * Reads need no lock (the file is replaced atomically); changes are read–modify–write under
 * `<config dir>/locks/trust.lock`.
 *
 * @module
 */
import { ConfigError } from "../lib/errors.ts";
import { withFileLock } from "../lib/file_lock.ts";
import { writeTextAtomic } from "./atomic_write.ts";

/** One trusted file. */
export interface TrustEntry {
  /** Hex SHA-256 of the trusted bytes. */
  sha256: string;
  /** RFC 3339 UTC. */
  trusted_at: string;
}

/** The whole store. */
export interface TrustStore {
  version: 1;
  /** Real path → entry. */
  files: Record<string, TrustEntry>;
}

/** The trust store's path in a config directory. */
export function trustStorePath(dir: string): string {
  return `${dir}/trust.json`;
}

/** The lock serialising changes to the trust store. */
export function trustLockPath(dir: string): string {
  return `${dir}/locks/trust.lock`;
}

/** An empty store. */
export function emptyTrustStore(): TrustStore {
  return { version: 1, files: {} };
}

/** The trust store could not be read or does not have the expected shape. */
export class TrustStoreError extends ConfigError {}

function parseStore(text: string, path: string): TrustStore {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new TrustStoreError(
      `${path}: not valid JSON (${error instanceof Error ? error.message : error})`,
      { hint: `fix it, or remove it (every repo config file then needs trusting again)` },
    );
  }
  const files = (doc as { files?: unknown })?.files;
  const bad = (what: string) =>
    new TrustStoreError(`${path}: ${what}`, {
      hint: "fix it, or remove it (every repo config file then needs trusting again)",
    });
  if ((doc as { version?: unknown })?.version !== 1) throw bad("expected version 1");
  if (typeof files !== "object" || files === null || Array.isArray(files)) {
    throw bad("expected an object `files`");
  }
  const out = emptyTrustStore();
  for (const [file, entry] of Object.entries(files)) {
    const e = entry as Partial<TrustEntry> | null;
    if (
      typeof e?.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(e.sha256) ||
      typeof e.trusted_at !== "string"
    ) {
      throw bad(`files[${JSON.stringify(file)}]: expected { sha256, trusted_at }`);
    }
    out.files[file] = { sha256: e.sha256, trusted_at: e.trusted_at };
  }
  return out;
}

/** The store in `dir`; empty when there is none. Throws {@link TrustStoreError} when broken. */
export function readTrustStore(dir: string): TrustStore {
  const path = trustStorePath(dir);
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return emptyTrustStore();
    throw new TrustStoreError(
      `${path}: cannot read: ${error instanceof Error ? error.message : error}`,
    );
  }
  return parseStore(text, path);
}

/**
 * Changes the store under its lock: reads it, lets `change` edit it in place, and writes it
 * back atomically (a new file 0600, its directory 0700) when its content changed. Returns
 * `change`'s result.
 */
export async function updateTrustStore<T>(
  dir: string,
  change: (store: TrustStore) => T,
): Promise<T> {
  return await withFileLock(trustLockPath(dir), () => {
    const store = readTrustStore(dir);
    const before = JSON.stringify(store);
    const result = change(store);
    const after = JSON.stringify(store, null, 2) + "\n";
    if (JSON.stringify(store) !== before) {
      writeTextAtomic(trustStorePath(dir), after, { mode: 0o600, dirMode: 0o700 });
    }
    return Promise.resolve(result);
  });
}

/** Hex SHA-256 of `bytes`. */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>),
  );
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The key of a file in the store: its real path (symlinks resolved), else the path itself. */
export function trustKey(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path;
  }
}

/** True when the store trusts exactly these bytes at this path (`key` from {@link trustKey}). */
export function isTrusted(store: TrustStore, key: string, sha256: string): boolean {
  return store.files[key]?.sha256 === sha256;
}
