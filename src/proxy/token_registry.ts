/**
 * The proxy's side of the tokens (tokens.ts): which sandbox a presented token belongs to.
 *
 * The tokens directory is scanned into a table keyed by the SHA-256 of each token, and
 * rescanned when a lookup misses and the directory changed since (its mtime and inode, and
 * always while the last change is less than {@link RACY_MS} old, since timestamps are coarse).
 * A hit is confirmed against the sandbox's file as it is now, compared in constant time, so a
 * revoked (removed) or replaced token is refused at once, without restarting the proxy.
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { registerSecret } from "../lib/redact.ts";
import {
  constantTimeEqual,
  isTokenShape,
  sandboxOfFileName,
  tokenFileName,
  tokensDir,
} from "./tokens.ts";

/** A change younger than this may hide a second change with the same timestamp. */
export const RACY_MS = 2_000;

async function digest(text: string): Promise<string> {
  const bytes = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function readTrimmed(path: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return null;
  }
}

/** Maps presented tokens to sandbox names. */
export class TokenRegistry {
  readonly #dir: string;
  readonly #clock: Clock;
  /** SHA-256 of a token → its sandbox. */
  #byDigest = new Map<string, string>();
  #stamp: string | null = null;
  #changedAt = -Infinity;
  #scanning: Promise<void> | null = null;

  constructor(stateDir: string, options: { clock?: Clock } = {}) {
    this.#dir = tokensDir(stateDir);
    this.#clock = options.clock ?? systemClock;
  }

  async #currentStamp(): Promise<{ stamp: string | null; mtime: number }> {
    try {
      const info = await Deno.stat(this.#dir);
      const mtime = info.mtime?.getTime() ?? 0;
      return { stamp: `${info.ino ?? 0}:${mtime}`, mtime };
    } catch {
      return { stamp: null, mtime: -Infinity };
    }
  }

  async #scan(): Promise<void> {
    this.#scanning ??= (async () => {
      const { stamp, mtime } = await this.#currentStamp();
      const table = new Map<string, string>();
      if (stamp !== null) {
        try {
          for await (const entry of Deno.readDir(this.#dir)) {
            if (!entry.isFile || entry.name.startsWith(".")) continue;
            const sandbox = sandboxOfFileName(entry.name);
            if (sandbox === null) continue;
            const token = await readTrimmed(`${this.#dir}/${entry.name}`);
            if (token === null || !isTokenShape(token)) continue;
            registerSecret(token);
            table.set(await digest(token), sandbox);
          }
        } catch {
          // the directory vanished meanwhile: no tokens
        }
      }
      this.#byDigest = table;
      this.#stamp = stamp;
      this.#changedAt = mtime;
    })().finally(() => this.#scanning = null);
    await this.#scanning;
  }

  /** True when the directory may hold tokens the table does not know. */
  async #stale(): Promise<boolean> {
    if (this.#clock.now() - this.#changedAt < RACY_MS) return true;
    return (await this.#currentStamp()).stamp !== this.#stamp;
  }

  /** The sandbox whose token `presented` is, or null (malformed, unknown or revoked). */
  async lookup(presented: string): Promise<string | null> {
    if (!isTokenShape(presented)) return null;
    const key = await digest(presented);
    let sandbox = this.#byDigest.get(key);
    if (sandbox === undefined && (this.#stamp === null || await this.#stale())) {
      await this.#scan();
      sandbox = this.#byDigest.get(key);
    }
    if (sandbox === undefined) return null;
    // Confirm against the file as it is now: revoked or replaced tokens stop at once.
    const current = await readTrimmed(`${this.#dir}/${tokenFileName(sandbox)}`);
    if (current === null || !constantTimeEqual(current, presented)) {
      this.#byDigest.delete(key);
      return null;
    }
    return sandbox;
  }
}
