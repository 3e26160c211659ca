/**
 * The shape of a doctor check result, shared by every area that contributes checks.
 *
 * @module
 */

/** One doctor check's outcome. */
export interface CheckResult {
  /** Short name, e.g. `git`, `incus socket`. */
  name: string;
  ok: boolean;
  /** What was found (version, path) or what is wrong. */
  message: string;
  /** What to do when it failed. */
  hint?: string;
  /** A failed required check makes `doctor` exit 1; optional ones only warn. */
  required?: boolean;
}
