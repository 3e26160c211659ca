/**
 * The trust gate: keys marked `trust` in the key table (they run something on the host, or
 * decide where code, credentials and secrets go) take effect from a repo config file only when
 * the user has trusted that file's exact content (`tachikoma config trust`). The user config,
 * the environment and flags are the user's own and are never gated.
 *
 * @module
 */
import { KEY_NAMES, KEYS } from "./defaults.ts";

/** The gated keys, in display order. */
export const GATED_KEYS: readonly string[] = KEY_NAMES.filter((k) => KEYS[k].trust);

/** True when `key` is gated. */
export function isGated(key: string): boolean {
  return Object.hasOwn(KEYS, key) && KEYS[key].trust !== undefined;
}

/** The gated keys among `keys`, in display order. */
export function gatedAmong(keys: Iterable<string>): string[] {
  const set = new Set(keys);
  return GATED_KEYS.filter((k) => set.has(k));
}

/** A path for a one-line message: as it is, or JSON-quoted when it holds control characters. */
export function onePath(path: string): string {
  // deno-lint-ignore no-control-regex
  return /[\u0000-\u001f\u007f]/.test(path) ? JSON.stringify(path) : path;
}

/** The one-line warning for an untrusted repo file whose gated keys are ignored. */
export function untrustedWarning(where: string, keys: readonly string[]): string {
  return `ignoring ${keys.join(", ")} from ${onePath(where)} (not trusted; review the file, ` +
    "then run `tachikoma config trust`)";
}
