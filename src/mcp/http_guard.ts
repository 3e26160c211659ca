/**
 * What every request to the MCP daemon must pass before anything else looks at it, in order:
 *
 * 1. `Host` (DNS rebinding): on a loopback address, the host must be `localhost`, `127.0.0.1`,
 *    `[::1]` or the listen host — a web page whose own name resolves to 127.0.0.1 sends its
 *    name and is refused. A remote daemon (TLS) takes any name: the certificate binds it.
 * 2. `Origin`: absent (what MCP clients send: they are not browsers), or exactly the daemon's
 *    own origin. Any other page is refused, the MCP Inspector's web UI included.
 * 3. `Authorization: Bearer <token>`, compared in constant time.
 *
 * Refusals carry no detail: 403 for 1–2, 401 (with `WWW-Authenticate: Bearer`) for 3, empty
 * bodies. Why is for the daemon's log only.
 *
 * @module
 */
import { constantTimeEqual } from "../lib/private_files.ts";
import { parseAuthority } from "../proxy/address.ts";

/** What a request is checked against. */
export interface GuardPolicy {
  /** The bearer token. */
  token: string;
  /** `https` with TLS, else `http`. */
  scheme: "http" | "https";
  /** The port the daemon listens on. */
  port: number;
  /** Host names a request may name (lower-case, no brackets); null: any (remote with TLS). */
  hosts: ReadonlySet<string> | null;
}

/** The verdict on one request. */
export type GuardVerdict =
  | { ok: true }
  | { ok: false; status: 401 | 403; reason: string };

/** The host names a loopback daemon answers to. */
export function loopbackHosts(listenHost: string): Set<string> {
  return new Set(["localhost", "127.0.0.1", "::1", listenHost.toLowerCase()]);
}

/** The token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | null): string | null {
  if (header === null) return null;
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}

/**
 * Checks `Host`, `Origin` and the token of a request (see the module doc). `authority` is the
 * request URL's `host:port`: HTTP/2 carries the host there (`:authority`), not in a header.
 */
export function checkRequest(
  headers: Headers,
  policy: GuardPolicy,
  authority?: string,
): GuardVerdict {
  const hostHeader = headers.get("host") ?? authority ?? null;
  const host = hostHeader === null ? null : parseAuthority(hostHeader);
  if (!host) return { ok: false, status: 403, reason: "missing or malformed Host header" };
  if (policy.hosts && !policy.hosts.has(host.host)) {
    return {
      ok: false,
      status: 403,
      reason: `Host ${JSON.stringify(hostHeader)} is not this daemon`,
    };
  }
  const origin = headers.get("origin");
  if (origin !== null && !sameOrigin(origin, host.host, policy)) {
    return {
      ok: false,
      status: 403,
      reason: `foreign Origin ${JSON.stringify(origin.slice(0, 100))}`,
    };
  }
  const presented = bearerToken(headers.get("authorization"));
  if (presented === null) return { ok: false, status: 401, reason: "no bearer token" };
  if (!constantTimeEqual(presented, policy.token)) {
    return { ok: false, status: 401, reason: "wrong bearer token" };
  }
  return { ok: true };
}

/** True when `origin` is the daemon's own: same scheme and port, an allowed host name. */
function sameOrigin(origin: string, requestHost: string, policy: GuardPolicy): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null", a file: origin, garbage
  }
  if (url.protocol !== `${policy.scheme}:`) return false;
  const port = url.port === "" ? (url.protocol === "https:" ? 443 : 80) : Number(url.port);
  if (port !== policy.port) return false;
  const name = url.hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return policy.hosts ? policy.hosts.has(name) : name === requestHost;
}

/** The answer to a refused request: the status, no detail. */
export function refusal(status: 401 | 403): Response {
  return new Response(null, {
    status,
    headers: status === 401 ? { "www-authenticate": "Bearer" } : {},
  });
}
