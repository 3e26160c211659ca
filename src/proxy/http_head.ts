/**
 * Reading the head of the first request on a raw connection (the proxy needs to see `CONNECT`
 * before Deno.serve would take the connection): bounded in size and time.
 *
 * @module
 */

/** The request line and headers of a request. */
export interface RequestHead {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
}

/** How reading a head ended. */
export type HeadRead =
  | { ok: true; head: RequestHead; raw: Uint8Array; rest: Uint8Array }
  | { ok: false; status: 400 | 408 | 431 | 0; reason: string };

const CRLFCRLF = [13, 10, 13, 10];

/** Index just past the first `\r\n\r\n` in `buf[0..len)`, or -1. */
export function findHeadEnd(buf: Uint8Array, len: number, from = 0): number {
  for (let i = Math.max(0, from - 3); i + 3 < len; i++) {
    if (
      buf[i] === CRLFCRLF[0] && buf[i + 1] === CRLFCRLF[1] && buf[i + 2] === CRLFCRLF[2] &&
      buf[i + 3] === CRLFCRLF[3]
    ) return i + 4;
  }
  return -1;
}

const decoder = new TextDecoder("latin1");
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Parses a request head (the bytes up to and including the blank line). */
export function parseRequestHead(bytes: Uint8Array): RequestHead | null {
  const text = decoder.decode(bytes);
  const lines = text.split("\r\n");
  const m = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) (HTTP\/1\.[01])$/.exec(lines[0] ?? "");
  if (!m) return null;
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    if (colon <= 0) return null;
    const name = line.slice(0, colon);
    if (!TOKEN_RE.test(name)) return null;
    headers.push([name.toLowerCase(), line.slice(colon + 1).trim()]);
  }
  return { method: m[1], target: m[2], version: m[3], headers };
}

/**
 * Reads from `conn` until the end of the first request head, at most `maxBytes`, within
 * `timeoutMs`. `rest` holds bytes read past the head (a pipelined body or TLS hello).
 */
export async function readRequestHead(
  conn: Deno.Conn,
  maxBytes: number,
  timeoutMs: number,
): Promise<HeadRead> {
  let buf = new Uint8Array(Math.min(8192, maxBytes + 4096));
  let len = 0;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
  }, timeoutMs);
  try {
    for (;;) {
      if (len === buf.length) {
        const bigger = new Uint8Array(Math.min(buf.length * 4, maxBytes + 4096));
        bigger.set(buf);
        buf = bigger;
      }
      let n: number | null;
      try {
        n = await conn.read(buf.subarray(len));
      } catch {
        if (timedOut) return { ok: false, status: 408, reason: "request head timeout" };
        return { ok: false, status: 0, reason: "connection error" };
      }
      if (n === null) {
        if (timedOut) return { ok: false, status: 408, reason: "request head timeout" };
        return { ok: false, status: 0, reason: "closed before a request" };
      }
      const before = len;
      len += n;
      const end = findHeadEnd(buf, len, before);
      if (end !== -1) {
        if (end > maxBytes) return { ok: false, status: 431, reason: "request head too large" };
        const raw = buf.slice(0, end);
        const head = parseRequestHead(raw);
        if (!head) return { ok: false, status: 400, reason: "malformed request head" };
        return { ok: true, head, raw, rest: buf.slice(end, len) };
      }
      if (len >= maxBytes) return { ok: false, status: 431, reason: "request head too large" };
    }
  } finally {
    clearTimeout(timer);
  }
}

const encoder = new TextEncoder();

/** A short text response written by hand on a raw connection. */
export interface PlainResponse {
  status: number;
  /** The reason phrase (`Bad Request`). */
  reason: string;
  body: string;
  /** Extra header lines. */
  headers?: [string, string][];
}

/** A complete plain-text HTTP/1.1 response that closes the connection. */
export function plainResponse(response: PlainResponse): Uint8Array {
  const { status, reason, body, headers: extraHeaders = [] } = response;
  const payload = encoder.encode(body.endsWith("\n") ? body : body + "\n");
  const extra = extraHeaders.map(([k, v]) => `${k}: ${v}\r\n`).join("");
  const head = `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    extra + `content-length: ${payload.length}\r\nconnection: close\r\n\r\n`;
  const out = new Uint8Array(head.length + payload.length);
  out.set(encoder.encode(head), 0);
  out.set(payload, head.length);
  return out;
}

/** Status texts for the responses the front writes itself. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "Connection Established",
  400: "Bad Request",
  403: "Forbidden",
  405: "Method Not Allowed",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  502: "Bad Gateway",
  504: "Gateway Timeout",
};
