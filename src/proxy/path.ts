/**
 * Normalising the path of an API request before it is forwarded with host credentials.
 * Percent-encoded dots are decoded, `//` collapses, `.` and `..` segments are resolved, and the
 * result must stay under `/v1/`. Encoded slashes and backslashes (`%2f`, `%5c`), raw
 * backslashes, double-encoded dots or slashes (`%252e`), control characters and fragments are
 * refused outright: no Anthropic API path contains them, and an upstream that decodes them
 * again could otherwise be steered outside `/v1/`.
 *
 * @module
 */

/** The outcome of {@link normaliseApiPath}. */
export type PathCheck = { ok: true; path: string } | { ok: false; reason: string };

/** True when `text` holds an ASCII control character. */
export function hasControlChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Normalises `raw` (a request path, without the query) and checks it stays under `/v1/`.
 * Returns the path to forward, which is exactly the path that was checked.
 */
export function normaliseApiPath(raw: string): PathCheck {
  if (!raw.startsWith("/")) return { ok: false, reason: "path must start with /" };
  if (hasControlChar(raw) || raw.includes("#")) {
    return { ok: false, reason: "control character or fragment in path" };
  }
  if (raw.includes("\\") || /%(2f|5c)/i.test(raw)) {
    return { ok: false, reason: "encoded slash or backslash in path" };
  }
  if (/%25(2e|2f|5c)/i.test(raw)) return { ok: false, reason: "double-encoded path" };
  const decoded = raw.replace(/%2e/gi, ".");
  const segments: string[] = [];
  for (const segment of decoded.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") {
      if (segments.length === 0) return { ok: false, reason: "path escapes /" };
      segments.pop();
      continue;
    }
    segments.push(segment);
  }
  if (segments.length < 2 || segments[0] !== "v1") {
    return { ok: false, reason: "only /v1/* paths are forwarded" };
  }
  const trailing = decoded.endsWith("/") ? "/" : "";
  return { ok: true, path: `/${segments.join("/")}${trailing}` };
}

/** Checks a query string (without `?`) is safe to forward. */
export function checkQuery(query: string): boolean {
  return !hasControlChar(query) && !query.includes("#");
}
