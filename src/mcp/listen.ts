/**
 * Where the MCP daemon listens, and what that requires. Loopback (`127.0.0.1`, `::1`,
 * `localhost`) is the default and needs nothing more. Any other address exposes the tools —
 * which run commands in every sandbox — to the network: it is refused unless `--allow-remote`
 * is given together with a TLS certificate and key (the bearer token must not cross a network
 * in clear text).
 *
 * @module
 */
import { ConfigError, UsageError } from "../lib/errors.ts";
import { formatHostPort, parseAuthority } from "../proxy/address.ts";
import { classifyIp, parseIp } from "../proxy/ip.ts";

/** The MCP endpoint's path (the only one clients use). */
export const MCP_PATH = "/mcp";

/** The listen flags of `tachikoma mcp --http`. */
export interface ListenFlags {
  /** `--listen host:port` (default: `[mcp] listen`). */
  listen?: string;
  allowRemote?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** Where and how the daemon listens. */
export interface ListenPlan {
  host: string;
  port: number;
  /** True for a loopback address. */
  loopback: boolean;
  /** PEM certificate and key (read from the flags' paths), or null for plain HTTP. */
  tls: { cert: string; key: string; certPath: string; keyPath: string } | null;
  /** The endpoint clients connect to. */
  url: string;
}

/** True when `host` is reachable from this machine only. */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === "localhost") return true;
  const ip = parseIp(host);
  return ip !== null && classifyIp(ip) === "loopback";
}

/** The endpoint URL of a daemon at `host:port`. */
export function endpointUrl(host: string, port: number, tls: boolean): string {
  return `${tls ? "https" : "http"}://${formatHostPort(host, port)}${MCP_PATH}`;
}

async function readPem(flag: string, path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound ? "no such file" : String(error);
    throw new UsageError(`${flag}: cannot read ${path}: ${why}`);
  }
}

/**
 * Checks the flags (and `[mcp] listen`) and reads the TLS files. Errors name the flag or key:
 * a malformed address, a non-loopback address without `--allow-remote`, `--allow-remote`
 * without TLS, one TLS file without the other, an unreadable file.
 */
export async function planListen(flags: ListenFlags, configured: string): Promise<ListenPlan> {
  const text = flags.listen ?? configured;
  const where = flags.listen !== undefined ? "--listen" : "mcp.listen";
  // Port 0: the system picks a free port (the daemon records and prints the real one).
  const zero = /^(.+):0$/.exec(text);
  const parsed = parseAuthority(zero ? zero[1] : text);
  const port = zero ? (parsed?.port === null ? 0 : null) : parsed?.port ?? null;
  if (!parsed || port === null) {
    const message = `${where}: expected host:port (e.g. 127.0.0.1:8765), got '${text}'`;
    throw flags.listen !== undefined ? new UsageError(message) : new ConfigError(message);
  }
  const host = parsed.host;
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: give both or neither");
  }
  const loopback = isLoopback(host);
  if (!loopback && !flags.allowRemote) {
    throw new UsageError(
      `refusing to listen on ${formatHostPort(host, port)}: not a loopback address, and ` +
        "anything that reaches it can run commands in every sandbox",
      {
        hint: "listen on 127.0.0.1, or pass --allow-remote with --tls-cert and --tls-key",
      },
    );
  }
  if (flags.allowRemote && flags.tlsCert === undefined) {
    throw new UsageError("--allow-remote needs --tls-cert and --tls-key (HTTPS)", {
      hint: "the bearer token must not cross a network in clear text",
    });
  }
  const tls = flags.tlsCert !== undefined && flags.tlsKey !== undefined
    ? {
      cert: await readPem("--tls-cert", flags.tlsCert),
      key: await readPem("--tls-key", flags.tlsKey),
      certPath: flags.tlsCert,
      keyPath: flags.tlsKey,
    }
    : null;
  return { host, port, loopback, tls, url: endpointUrl(host, port, tls !== null) };
}
