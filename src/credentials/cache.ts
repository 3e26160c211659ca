/**
 * A TTL cache in front of the waterfall, one per proxy process. A hit is served for
 * `credential_proxy_ttl_secs` (never past an OAuth token's `expiresAt`); a miss is retried after
 * a few seconds, so logging in on the host takes effect almost at once (tachikoma cached misses
 * for the whole TTL). Concurrent callers share one refresh. Time comes from an injectable clock.
 *
 * @module
 */
import type { Clock } from "../lib/clock.ts";
import { systemClock } from "../lib/clock.ts";
import type { Credential, CredentialSourceId, WaterfallResult } from "./types.ts";

/** Default delay before a miss is retried. */
export const DEFAULT_MISS_RETRY_MS = 5_000;

/** Options of {@link CredentialCache}. */
export interface CredentialCacheOptions {
  /** Runs the waterfall. */
  resolve: () => Promise<WaterfallResult>;
  /** How long a hit is served, in ms (0: every call runs the waterfall). */
  ttlMs: number;
  /** How long a miss is served before the waterfall runs again, in ms. */
  missRetryMs?: number;
  clock?: Clock;
}

interface Entry {
  result: WaterfallResult;
  /** Clock time after which the entry is stale. */
  staleAt: number;
}

/** What {@link CredentialCache.peek} reports. */
export interface CacheStatus {
  /** The source of the cached credential, `none` after a miss, `pending` before any run. */
  source: CredentialSourceId | "none" | "pending";
  /** Clock time of the last waterfall run, or null. */
  resolvedAt: number | null;
}

/** Caches the waterfall's result. */
export class CredentialCache {
  #resolve: () => Promise<WaterfallResult>;
  #ttlMs: number;
  #missRetryMs: number;
  #clock: Clock;
  #entry: Entry | null = null;
  #resolvedAt: number | null = null;
  #inflight: Promise<WaterfallResult> | null = null;
  /** Number of waterfall runs so far (for tests and `/health`). */
  runs = 0;

  constructor(options: CredentialCacheOptions) {
    this.#resolve = options.resolve;
    this.#ttlMs = Math.max(0, options.ttlMs);
    this.#missRetryMs = Math.max(0, options.missRetryMs ?? DEFAULT_MISS_RETRY_MS);
    this.#clock = options.clock ?? systemClock;
  }

  /** The current credential: cached when fresh, else from a (shared) waterfall run. */
  async get(): Promise<Credential | null> {
    return (await this.result()).credential;
  }

  /** Like {@link get}, with every source's outcome. */
  result(): Promise<WaterfallResult> {
    const entry = this.#entry;
    if (entry && this.#clock.now() < entry.staleAt) return Promise.resolve(entry.result);
    return this.refresh();
  }

  /** Runs the waterfall now (joining a run already under way). */
  refresh(): Promise<WaterfallResult> {
    if (this.#inflight) return this.#inflight;
    const run = (async () => {
      try {
        this.runs++;
        const result = await this.#resolve();
        const now = this.#clock.now();
        let staleAt = now + (result.credential ? this.#ttlMs : this.#missRetryMs);
        const c = result.credential;
        if (c && c.kind === "oauth" && c.expiresAt !== undefined) {
          staleAt = Math.min(staleAt, c.expiresAt);
        }
        this.#entry = { result, staleAt };
        this.#resolvedAt = now;
        return result;
      } finally {
        this.#inflight = null;
      }
    })();
    this.#inflight = run;
    return run;
  }

  /** Drops the cached entry (e.g. after the upstream rejected the credential). */
  invalidate(): void {
    this.#entry = null;
  }

  /** What is cached, without running anything. */
  peek(): CacheStatus {
    const entry = this.#entry;
    if (!entry) return { source: "pending", resolvedAt: this.#resolvedAt };
    const c: Credential | null = entry.result.credential;
    return { source: c ? c.source : "none", resolvedAt: this.#resolvedAt };
  }
}
