/**
 * A {@link Reporter} that records every step and note, for assertions.
 *
 * @module
 */
import type { Reporter, StepHandle } from "../../src/lib/progress.ts";

/** A reporter that records what happened, for tests. */
export class RecordingReporter implements Reporter {
  readonly events: string[] = [];
  step(label: string): StepHandle {
    this.events.push(`start ${label}`);
    return {
      done: (detail) => this.events.push(`done ${label}${detail ? `: ${detail}` : ""}`),
      fail: (reason) => this.events.push(`fail ${label}${reason ? `: ${reason}` : ""}`),
    };
  }
  note(message: string): void {
    this.events.push(`note ${message}`);
  }
}
