/**
 * Probing a proxy's `/health` over a raw TCP connection (not `fetch`, which would honour the
 * host's `HTTP_PROXY` and could send the probe elsewhere). A proxy is healthy only when the
 * endpoint answers 200 with `"proxy":"tachikoma"` — an open port alone proves nothing.
 *
 * @module
 */
import { errorMessage } from "../lib/errors.ts";
import { formatHostPort } from "./address.ts";
import type { HealthDocument } from "./server.ts";

/** The result of a probe. */
export type HealthProbe =
  | { ok: true; health: HealthDocument }
  | {
    ok: false;
    reason: string; /** Something answered, but not a tachikoma proxy. */
    foreign: boolean;
  };

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  for (;;) {
    const nl = rest.indexOf("\r\n");
    if (nl === -1) return out;
    const size = parseInt(rest.slice(0, nl), 16);
    if (!Number.isFinite(size) || size === 0) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}

/** GETs `/health` on `host:port` within `timeoutMs`. Never throws. */
export async function probeHealth(
  host: string,
  port: number,
  timeoutMs = 2000,
): Promise<HealthProbe> {
  const signal = AbortSignal.timeout(timeoutMs);
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: host.replace(/^\[|\]$/g, ""), port, signal });
  } catch (error) {
    return { ok: false, reason: `nothing listening (${errorMessage(error)})`, foreign: false };
  }
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // closed
    }
  }, timeoutMs);
  let text = "";
  try {
    const req = `GET /health HTTP/1.1\r\nHost: ${formatHostPort(host, port)}\r\n` +
      "Accept: application/json\r\nConnection: close\r\n\r\n";
    await conn.write(new TextEncoder().encode(req));
    const decoder = new TextDecoder();
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
      if (text.length > 65536) break;
    }
  } catch (error) {
    if (text === "") {
      return { ok: false, reason: `no answer (${errorMessage(error)})`, foreign: false };
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed
    }
  }
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
  const split = text.indexOf("\r\n\r\n");
  if (!m || split === -1) return { ok: false, reason: "not an HTTP answer", foreign: true };
  if (m[1] !== "200") return { ok: false, reason: `/health answered ${m[1]}`, foreign: true };
  const head = text.slice(0, split).toLowerCase();
  let body = text.slice(split + 4);
  if (head.includes("transfer-encoding: chunked")) body = dechunk(body);
  try {
    const doc = JSON.parse(body);
    if (doc?.proxy === "tachikoma" && doc?.status === "ok" && typeof doc.pid === "number") {
      return { ok: true, health: doc as HealthDocument };
    }
    if (doc?.proxy === "tachikoma") {
      return {
        ok: false,
        reason: "an older tachikoma proxy answers (stop it: it forwards without an allowlist)",
        foreign: true,
      };
    }
  } catch {
    // fall through
  }
  return { ok: false, reason: "/health is not a tachikoma proxy's", foreign: true };
}
