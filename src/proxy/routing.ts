/**
 * Classifying a request that reached the proxy's HTTP server.
 *
 * The server sees every request as `scheme://authority/path` (Deno.serve builds the URL from the
 * request target or the Host header). A request is addressed to the proxy itself only when its
 * authority is one of the proxy's own (`bind:port`, plus `localhost`/`127.0.0.1`/`[::1]` when
 * bound to loopback). Only such requests can reach `/health` or the credentialed `/v1/*`
 * forward. Any other authority, e.g. an absolute-URI `GET http://anyhost/v1/...` (tachikoma
 * sent those to Anthropic with host credentials) is forward-proxy traffic: checked against the
 * sandbox's egress allowlist and never given credentials. `CONNECT` is handled before this
 * point, on the raw connection.
 *
 * @module
 */
import { parseAuthority, urlHost } from "./address.ts";
import { checkQuery, hasControlChar, normaliseApiPath } from "./path.ts";

/** What to do with a request. */
export type Route =
  | { kind: "health" }
  | { kind: "api"; path: string; query: string }
  | { kind: "forward"; host: string; port: number; pathAndQuery: string }
  | {
    kind: "reject";
    status: number;
    reason: string;
    /** Whose authentication applies: the proxy's own API (401) or proxying (407). */
    audience: "api" | "proxy";
  };

/** Splits Deno.serve's `req.url` without normalising it (URL parsing would resolve `..`). */
export function splitUrl(
  url: string,
): { scheme: string; authority: string; path: string; query: string } | null {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?/i.exec(url);
  if (!m) return null;
  return { scheme: m[1].toLowerCase(), authority: m[2], path: m[3] || "/", query: m[4] ?? "" };
}

/** The authorities (`host:port`, lower-case) under which the proxy answers as itself. */
export function selfAuthorities(
  bind: string,
  port: number,
  extraHosts: string[] = [],
): Set<string> {
  const hosts = new Set<string>([bind.toLowerCase(), ...extraHosts.map((h) => h.toLowerCase())]);
  const loopback = bind === "127.0.0.1" || bind === "::1" || bind.startsWith("127.");
  if (loopback) ["localhost", "127.0.0.1", "::1"].forEach((h) => hosts.add(h));
  const out = new Set<string>();
  for (const h of hosts) {
    out.add(`${urlHost(h)}:${port}`);
    if (port === 80) out.add(urlHost(h));
  }
  return out;
}

/** Routes one request. `self` comes from {@link selfAuthorities}. */
export function routeRequest(method: string, url: string, self: Set<string>): Route {
  const parts = splitUrl(url);
  if (!parts || parts.authority === "") {
    return { kind: "reject", status: 400, reason: "Request has no host", audience: "api" };
  }
  if (method === "CONNECT") {
    return {
      kind: "reject",
      status: 405,
      reason: "CONNECT must be the first request on a connection",
      audience: "proxy",
    };
  }
  if (self.has(parts.authority.toLowerCase())) {
    if ((method === "GET" || method === "HEAD") && parts.path === "/health") {
      return { kind: "health" };
    }
    const checked = normaliseApiPath(parts.path);
    if (!checked.ok || !checkQuery(parts.query)) {
      return {
        kind: "reject",
        status: 403,
        reason: "Only /v1/* paths are forwarded by this proxy",
        audience: "api",
      };
    }
    return { kind: "api", path: checked.path, query: parts.query };
  }
  if (parts.scheme !== "http") {
    return {
      kind: "reject",
      status: 400,
      reason: "Only http:// URIs can be proxied; use CONNECT",
      audience: "proxy",
    };
  }
  const auth = parseAuthority(parts.authority);
  if (!auth) return { kind: "reject", status: 400, reason: "Invalid host", audience: "proxy" };
  if (hasControlChar(parts.path + parts.query)) {
    return { kind: "reject", status: 400, reason: "Invalid request target", audience: "proxy" };
  }
  return {
    kind: "forward",
    host: auth.host,
    port: auth.port ?? 80,
    pathAndQuery: parts.path + (parts.query !== "" || url.includes("?") ? `?${parts.query}` : ""),
  };
}
