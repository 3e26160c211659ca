/**
 * Header hygiene shared by the API forward and the egress forward: hop-by-hop headers (and
 * those a `Connection` header names) never cross the proxy, guest-sent credentials never reach
 * the upstream, and `accept-encoding: identity` is sent upstream because Deno's fetch would
 * otherwise decompress the body while keeping `content-encoding`, corrupting what the client
 * receives.
 *
 * @module
 */

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

/** Headers a guest may send that carry credentials; stripped before forwarding to the API. */
export const GUEST_AUTH_HEADERS: readonly string[] = ["authorization", "x-api-key", "cookie"];

/**
 * Copies `source` without hop-by-hop headers, those named by `Connection`, and `drop`, and
 * measures the whole header block on the way (one pass over the headers).
 */
export function copyForwardable(
  source: Headers,
  drop: readonly string[] = [],
): { headers: Headers; bytes: number } {
  const out = new Headers();
  const connection = source.get("connection");
  const named = new Set<string>();
  if (connection) {
    for (const token of connection.split(",")) {
      const t = token.trim().toLowerCase();
      if (t) named.add(t);
    }
  }
  let bytes = 0;
  for (const [name, value] of source) {
    bytes += name.length + value.length + 4;
    if (HOP_BY_HOP.has(name) || named.has(name) || drop.includes(name)) continue;
    out.append(name, value);
  }
  return { headers: out, bytes };
}

/** Copies `source` without hop-by-hop headers, those named by `Connection`, and `drop`. */
export function forwardableHeaders(source: Headers, drop: readonly string[] = []): Headers {
  return copyForwardable(source, drop).headers;
}

/** Total size of the header block as the client sent it (names, values, separators). */
export function headerBytes(headers: Headers): number {
  let n = 0;
  for (const [name, value] of headers) n += name.length + value.length + 4;
  return n;
}

/** Adds `flag` to a comma-separated `anthropic-beta` header, once. */
export function mergeBeta(headers: Headers, flag: string): void {
  const current = (headers.get("anthropic-beta") ?? "").split(",").map((s) => s.trim()).filter(
    (s) => s.length > 0,
  );
  if (!current.includes(flag)) current.push(flag);
  headers.set("anthropic-beta", current.join(","));
}

/** A plain-text response from the proxy itself. */
export function textResponse(status: number, text: string, extra?: HeadersInit): Response {
  const headers = new Headers(extra);
  headers.set("content-type", "text/plain; charset=utf-8");
  return new Response(text.endsWith("\n") ? text : text + "\n", { status, headers });
}

/** Thrown into a request body stream that grew past its cap. */
export class BodyTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`request body exceeds ${limit} bytes`);
  }
}

/**
 * A pass-through stream that errors with {@link BodyTooLargeError} once more than `limit` bytes
 * went through, so an oversized body is refused while streaming, without buffering it.
 */
export function byteCap(
  limit: number,
  onExceeded: () => void,
): TransformStream<Uint8Array, Uint8Array> {
  let seen = 0;
  return new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) {
        onExceeded();
        controller.error(new BodyTooLargeError(limit));
        return;
      }
      controller.enqueue(chunk);
    },
  });
}

/** Human size: `32 MiB`. */
export function formatBytes(n: number): string {
  if (n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}
