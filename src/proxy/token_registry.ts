/**
 * The proxy's side of the tokens (tokens.ts): which sandbox a presented token belongs to.
 *
 * The tokens directory is scanned into a table keyed by the SHA-256 of each token, and
 * rescanned when a lookup misses and the directory changed since (its mtime and inode, and
 * always while the last change is less than {@link RACY_MS} old, since timestamps are coarse).
 * The presented value is compared with the scanned token in constant time, and a hit is
 * confirmed against the sandbox's file as it is now (inode, size, mtime: tokens.ts never
 * rewrites a file in place, a new token is a new file), so a revoked (removed) or replaced token
 * is refused at once, without restarting the proxy. The checks on the request path are
 * synchronous `stat` calls (microseconds; an async file operation costs ten times more).
 *
 * @module
 */
import { createHash } from "node:crypto";
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

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

async function readTrimmed(path: string): Promise<string | null> {
  try {
    return (await Deno.readTextFile(path)).trim();
  } catch {
    return null;
  }
}

/** Identity of a file's current version, or null when it is gone. */
function fileStamp(path: string): string | null {
  try {
    const info = Deno.statSync(path);
    return `${info.ino ?? 0}:${info.size}:${info.mtime?.getTime() ?? 0}`;
  } catch {
    return null;
  }
}

interface Entry {
  sandbox: string;
  token: string;
  /** {@link fileStamp} of its file when scanned. */
  stamp: string;
}

/** Maps presented tokens to sandbox names. */
export class TokenRegistry {
  readonly #dir: string;
  readonly #clock: Clock;
  /** SHA-256 of a token → its sandbox and file. */
  #byDigest = new Map<string, Entry>();
  #stamp: string | null = null;
  #changedAt = -Infinity;
  #scanning: Promise<void> | null = null;

  constructor(stateDir: string, options: { clock?: Clock } = {}) {
    this.#dir = tokensDir(stateDir);
    this.#clock = options.clock ?? systemClock;
  }

  #currentStamp(): { stamp: string | null; mtime: number } {
    try {
      const info = Deno.statSync(this.#dir);
      const mtime = info.mtime?.getTime() ?? 0;
      return { stamp: `${info.ino ?? 0}:${mtime}`, mtime };
    } catch {
      return { stamp: null, mtime: -Infinity };
    }
  }

  async #scan(): Promise<void> {
    this.#scanning ??= (async () => {
      const { stamp, mtime } = this.#currentStamp();
      const table = new Map<string, Entry>();
      if (stamp !== null) {
        try {
          for await (const entry of Deno.readDir(this.#dir)) {
            if (!entry.isFile || entry.name.startsWith(".")) continue;
            const sandbox = sandboxOfFileName(entry.name);
            if (sandbox === null) continue;
            const path = `${this.#dir}/${entry.name}`;
            const before = fileStamp(path);
            const token = await readTrimmed(path);
            if (token === null || !isTokenShape(token) || before === null) continue;
            registerSecret(token);
            table.set(digest(token), { sandbox, token, stamp: before });
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
  #stale(): boolean {
    if (this.#clock.now() - this.#changedAt < RACY_MS) return true;
    return this.#currentStamp().stamp !== this.#stamp;
  }

  /** The sandbox whose token `presented` is, or null (malformed, unknown or revoked). */
  async lookup(presented: string): Promise<string | null> {
    if (!isTokenShape(presented)) return null;
    const key = digest(presented);
    let entry = this.#byDigest.get(key);
    if (entry === undefined && (this.#stamp === null || this.#stale())) {
      await this.#scan();
      entry = this.#byDigest.get(key);
    }
    if (entry === undefined || !constantTimeEqual(entry.token, presented)) return null;
    // Confirm against the file as it is now: revoked or replaced tokens stop at once.
    if (fileStamp(`${this.#dir}/${tokenFileName(entry.sandbox)}`) !== entry.stamp) {
      this.#byDigest.delete(key);
      await this.#scan();
      const again = this.#byDigest.get(key);
      return again && constantTimeEqual(again.token, presented) ? again.sandbox : null;
    }
    return entry.sandbox;
  }
}
