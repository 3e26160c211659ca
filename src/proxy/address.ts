/**
 * Host/port text: IPv6 literals are bracketed in URLs and `host:port` authorities, and
 * authorities are parsed back (`[::1]:19280`, `example.com:443`).
 *
 * @module
 */
import { parseIp } from "./ip.ts";

/** `host` as it must appear in a URL or authority: IPv6 literals in brackets. */
export function urlHost(host: string): string {
  const bare = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host;
  return bare.includes(":") ? `[${bare}]` : bare;
}

/** `host:port` with IPv6 brackets. */
export function formatHostPort(host: string, port: number): string {
  return `${urlHost(host)}:${port}`;
}

/** `http://host:port` with IPv6 brackets. */
export function httpUrl(host: string, port: number): string {
  return `http://${formatHostPort(host, port)}`;
}

/** A parsed authority. `host` has no brackets and is lower-cased; `port` is null when absent. */
export interface Authority {
  host: string;
  port: number | null;
}

const HOSTNAME_RE =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?$/;

/** True for a syntactically valid DNS name (letters, digits, `-`, `_`, dots). */
export function isHostname(text: string): boolean {
  return HOSTNAME_RE.test(text.toLowerCase());
}

/**
 * Parses `host[:port]` / `[v6][:port]`. Returns null when the host is neither an IP literal nor
 * a valid DNS name, or the port is not 1–65535.
 */
export function parseAuthority(text: string): Authority | null {
  let host: string;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1) return null;
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== "") {
      if (!rest.startsWith(":")) return null;
      portText = rest.slice(1);
    }
    const ip = parseIp(host);
    if (!ip || ip.family !== 6) return null;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon !== -1 && text.indexOf(":") !== colon) return null; // bare IPv6 without brackets
    host = colon === -1 ? text : text.slice(0, colon);
    portText = colon === -1 ? undefined : text.slice(colon + 1);
    if (!parseIp(host) && !isHostname(host)) return null;
  }
  let port: number | null = null;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return null;
    port = Number(portText);
    if (port < 1 || port > 65535) return null;
  }
  host = host.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  return { host, port };
}
