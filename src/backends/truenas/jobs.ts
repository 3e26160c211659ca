/**
 * Job bookkeeping of the TrueNAS client (truenas-api.md §4): terminal `core.get_jobs` events are
 * kept (the last 100), so a job that ends before anyone waits for it — or whose event arrives
 * before the call's reply — is still seen; waiters hear about their job or about a lost socket.
 *
 * @module
 */

import type { Clock } from "../../lib/clock.ts";
import { formatJobError, TruenasCallError, TruenasTransportError } from "./rpc_errors.ts";

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

/** What {@link awaitJob} needs from the client. */
export interface JobWait {
  host: string;
  method: string;
  jobId: number;
  tracker: JobTracker;
  /** Whether the client has no open socket now. */
  offline(): boolean;
  /** A call with the client's retry policy (re-dials). */
  call<T>(method: string, params?: unknown[]): Promise<T>;
  clock: Clock;
  /** How long to try to reconnect after a loss. */
  budgetMs: number;
}

/** Waits for a job's end: events, or after a lost socket a re-dial and `core.get_jobs` by id. */
export async function awaitJob(w: JobWait): Promise<unknown> {
  while (true) {
    const signal = await w.tracker.wait(w.jobId, w.offline());
    if (signal.kind === "done") return finish(w, signal.row);
    const row = await pollAfterLoss(w);
    if (row) return finish(w, row);
  }
}

async function pollAfterLoss(w: JobWait): Promise<JobRow | null> {
  const started = w.clock.now();
  while (true) {
    try {
      const rows = await w.call<JobRow[]>("core.get_jobs", [[["id", "=", w.jobId]]]);
      if (!Array.isArray(rows) || rows.length === 0) {
        throw new TruenasCallError({ host: w.host, method: w.method }, {
          rpcCode: 0,
          reason: `job ${w.jobId} no longer exists`,
        });
      }
      return JobTracker.terminal(rows[0].state) ? rows[0] : null;
    } catch (error) {
      if (error instanceof TruenasCallError) throw error;
      if (w.clock.now() - started >= w.budgetMs) {
        throw new TruenasTransportError(
          w.host,
          `${w.method} (job ${w.jobId})`,
          `connection lost and not re-established within ${Math.round(w.budgetMs / 1000)} s: ${
            (error as Error).message
          }`,
        );
      }
      await w.clock.sleep(2000);
    }
  }
}

function finish(w: JobWait, row: JobRow): unknown {
  if (row.state === "SUCCESS") return row.result;
  throw new TruenasCallError({ host: w.host, method: `${w.method} (job ${w.jobId})` }, {
    rpcCode: 0,
    reason: formatJobError(row.error ?? null, row.logs_excerpt),
  });
}
