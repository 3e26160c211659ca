/**
 * Progress reporting as a dependency of core logic. The CLI supplies a reporter that draws on
 * stderr (a spinner on a TTY, step lines with durations in `-v`); MCP supplies one that sends
 * progress notifications; tests record steps (`tests/testing/recording_reporter.ts`).
 *
 * @module
 */

/** Reports the steps of a long operation. */
export interface Reporter {
  /** Starts a step; call `done()` when it finishes or `fail()` when it fails. */
  step(label: string): StepHandle;
  /** A one-off informational line (e.g. "created branch x from HEAD"). */
  note(message: string): void;
}

/** A running step. */
export interface StepHandle {
  done(detail?: string): void;
  fail(reason?: string): void;
  /** How far the step is (e.g. a download's `rootfs: 45% (12.3MB/s)`), when it can tell. */
  progress?(detail: string): void;
}

/** A reporter that does nothing. */
export const silentReporter: Reporter = {
  step: () => ({ done() {}, fail() {} }),
  note() {},
};
