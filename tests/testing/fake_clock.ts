/**
 * A {@link Clock} that only moves when a test tells it to.
 *
 * @module
 */
import type { Clock } from "../../src/lib/clock.ts";

interface Sleeper {
  until: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. `sleep` resolves when {@link FakeClock.advance} moves
 * time past its deadline, so a test of a 120 s timeout runs in microseconds.
 * With `autoAdvance`, every `sleep` moves time forward by itself (useful for polling loops).
 */
export class FakeClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  #autoAdvance: boolean;
  #onSleep: (() => void)[] = [];
  /** Every duration passed to `sleep`, in order. */
  readonly sleeps: number[] = [];

  constructor(start = 1_700_000_000_000, options: { autoAdvance?: boolean } = {}) {
    this.#now = start;
    this.#autoAdvance = options.autoAdvance ?? false;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#autoAdvance) {
      this.#now += Math.max(0, ms);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const sleeper = { until: this.#now + Math.max(0, ms), resolve };
      this.#sleepers.push(sleeper);
      const waiting = this.#onSleep;
      this.#onSleep = [];
      for (const notify of waiting) notify();
      signal?.addEventListener("abort", () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      }, { once: true });
    });
  }

  /** Moves time forward and wakes every sleeper whose deadline has passed. */
  advance(ms: number): void {
    this.#now += ms;
    const due = this.#sleepers.filter((s) => s.until <= this.#now);
    this.#sleepers = this.#sleepers.filter((s) => s.until > this.#now);
    for (const s of due) s.resolve();
  }

  /** Number of pending sleeps. */
  get pending(): number {
    return this.#sleepers.length;
  }

  /**
   * Resolves once `count` sleeps are pending (at once if they already are): the code under
   * test has reached its wait, so the test may {@link advance} past it. No real time involved.
   */
  async sleeping(count = 1): Promise<void> {
    while (this.#sleepers.length < count) {
      await new Promise<void>((resolve) => this.#onSleep.push(resolve));
    }
  }
}
