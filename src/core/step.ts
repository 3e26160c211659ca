/**
 * A reported step: a label on the progress reporter, done (with a detail of its result) or
 * failed with the error's message.
 *
 * @module
 */
import { errorMessage } from "../lib/errors.ts";
import type { LifecycleDeps } from "./lifecycle.ts";

/** A reported step: its label, and the detail its result shows when it is done. */
export interface StepReport<T> {
  label: string;
  detail?: (value: T) => string;
}

/**
 * Runs `fn` as a reported step (`what`: its label, or the label with a detail of the result):
 * done with the detail, or failed with the error message.
 */
export async function step<T>(
  deps: Pick<LifecycleDeps, "reporter">,
  what: string | StepReport<T>,
  fn: () => Promise<T>,
): Promise<T> {
  const { label, detail } = typeof what === "string" ? { label: what, detail: undefined } : what;
  const handle = deps.reporter.step(label);
  try {
    const value = await fn();
    handle.done(detail?.(value));
    return value;
  } catch (error) {
    handle.fail(errorMessage(error));
    throw error;
  }
}
