/**
 * A {@link Reporter} that turns core progress (steps and notes) into MCP
 * `notifications/progress` for the request that asked with a `progressToken`, and into debug
 * lines on stderr. `progress` grows by one per event (the total is unknown); the message says
 * what is happening, e.g. `waiting for boot` → `waiting for boot: done (1.2 s)`.
 *
 * @module
 */
import type { Reporter, StepHandle } from "../lib/progress.ts";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { redact } from "../lib/redact.ts";

/** One progress notification's parameters. */
export interface ProgressParams {
  progressToken: string | number;
  progress: number;
  message: string;
}

/** Sends a notification; failures are logged, never thrown into the work. */
export type ProgressSender = (params: ProgressParams) => Promise<void>;

/** Forwards steps as progress notifications (when the client gave a token). */
export class McpProgressReporter implements Reporter {
  #token: string | number | undefined;
  #send: ProgressSender;
  #count = 0;
  #now: () => number;

  /** `token` is the request's `_meta.progressToken`; without one only stderr gets the steps. */
  constructor(token: string | number | undefined, send: ProgressSender, now = () => Date.now()) {
    this.#token = token;
    this.#send = send;
    this.#now = now;
  }

  /** Notifications sent so far. */
  get count(): number {
    return this.#count;
  }

  step(label: string): StepHandle {
    const started = this.#now();
    this.#emit(label);
    const finish = (outcome: string, extra?: string) => {
      const ms = this.#now() - started;
      const took = ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
      this.#emit(`${label}: ${outcome}${extra ? ` (${extra})` : ""} — ${took}`);
    };
    return {
      done: (detail) => finish("done", detail),
      fail: (reason) => finish("failed", reason),
    };
  }

  note(message: string): void {
    this.#emit(message);
  }

  #emit(message: string): void {
    const text = redact(message);
    log.debug(`mcp progress: ${text}`);
    if (this.#token === undefined) return;
    this.#count++;
    this.#send({ progressToken: this.#token, progress: this.#count, message: text }).catch(
      (error) => log.debug(`mcp: progress notification not sent: ${errorMessage(error)}`),
    );
  }
}
