/**
 * Job bookkeeping of the TrueNAS client (truenas-api.md §4): terminal `core.get_jobs` events are
 * kept (the last 100), so a job that ends before anyone waits for it — or whose event arrives
 * before the call's reply — is still seen; waiters hear about their job or about a lost socket.
 *
 * @module
 */

/** A job as an event's `fields` or a `core.get_jobs` row describes it. */
export interface JobRow {
  state: string;
  result?: unknown;
  error?: string | null;
  logs_excerpt?: string | null;
}

/** What a waiter learns. */
export type JobSignal = { kind: "done"; row: JobRow } | { kind: "disconnected" };

const KEEP = 100;
const TERMINAL = new Set(["SUCCESS", "FAILED", "ABORTED"]);

/** Terminal job events and the waiters of one client. */
export class JobTracker {
  readonly #done = new Map<number, JobRow>();
  readonly #waiters = new Map<number, Set<(s: JobSignal) => void>>();

  /** Whether a state ends a job. */
  static terminal(state: unknown): boolean {
    return typeof state === "string" && TERMINAL.has(state);
  }

  /** One `collection_update` of `core.get_jobs`; malformed ones are dropped (§4). */
  event(id: unknown, fields: unknown): void {
    if (typeof id !== "number" || !fields || typeof fields !== "object") return;
    const f = fields as Record<string, unknown>;
    if (f.error !== undefined && f.error !== null && typeof f.error !== "string") return;
    if (!JobTracker.terminal(f.state)) return;
    const row: JobRow = {
      state: f.state as string,
      result: f.result,
      error: (f.error as string | null | undefined) ?? null,
      logs_excerpt: typeof f.logs_excerpt === "string" ? f.logs_excerpt : null,
    };
    this.#done.set(id, row);
    while (this.#done.size > KEEP) this.#done.delete(this.#done.keys().next().value!);
    const waiting = this.#waiters.get(id);
    this.#waiters.delete(id);
    for (const w of waiting ?? []) w({ kind: "done", row });
  }

  /** Resolves with the job's end, or at once when it already ended; `offline`: disconnected. */
  wait(id: number, offline: boolean): Promise<JobSignal> {
    const row = this.#done.get(id);
    if (row) return Promise.resolve({ kind: "done", row });
    if (offline) return Promise.resolve({ kind: "disconnected" });
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, set = new Set());
      set.add(resolve);
    });
  }

  /** The socket was lost: every waiter polls. */
  disconnected(): void {
    const all = [...this.#waiters.values()];
    this.#waiters.clear();
    for (const set of all) for (const w of set) w({ kind: "disconnected" });
  }
}
