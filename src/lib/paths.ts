/**
 * Host path helpers without `node:path` (startup speed) and without touching the disk, except
 * {@link realPathOr}. Paths are POSIX (macOS and Linux hosts).
 *
 * @module
 */

/** Joins `path` onto `base` unless it is absolute; normalises `.`, `..` and repeated slashes. */
export function resolvePath(base: string, path: string): string {
  const full = path.startsWith("/") ? path : `${base}/${path}`;
  const out: string[] = [];
  for (const part of full.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") out.pop();
    else out.push(part);
  }
  return "/" + out.join("/");
}

/** The last component of `path` (trailing slashes ignored). */
export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/** The parent directory of `path` (trailing slashes ignored); `/` for a top-level entry. */
export function dirname(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const i = trimmed.lastIndexOf("/");
  return i <= 0 ? "/" : trimmed.slice(0, i);
}

/** `path` with every symlink resolved, or `fallback` (default: `path`) when it cannot be. */
export function realPathOr(path: string, fallback: string = path): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return fallback;
  }
}
