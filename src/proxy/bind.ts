/**
 * Where the proxy listens. `credential_proxy_bind` when set; otherwise the host side of the
 * backend's guest network, the only address guests need to reach:
 *
 * - tart: `192.168.64.1` (the vmnet shared-NAT gateway);
 * - local Incus: the gateway of the bridge the sandboxes use, read from the Incus REST API
 *   (`[incus] network`, else the NIC of the `default` profile → `ipv4.address`);
 * - remote Incus / TrueNAS: the local address this host uses to reach that server (the
 *   sandboxes' host is on that side);
 * - memory (tests): `127.0.0.1`.
 *
 * Never `0.0.0.0`/`::` unless given explicitly (the CLI warns then). Each lookup is a seam
 * ({@link BindDeps}) so tests and other callers can inject the answer.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { ConfigError, errorMessage } from "../lib/errors.ts";
import { parseIp } from "./ip.ts";

/** The tart shared-NAT gateway. */
export const TART_HOST_ADDRESS = "192.168.64.1";

/** The configuration the bind resolution reads. */
export type BindConfig = Pick<Config, "credential_proxy_bind" | "credential_proxy_port"> & {
  incus: Pick<Config["incus"], "socket" | "remote" | "project" | "network">;
  truenas: Pick<Config["truenas"], "host" | "port">;
};

/** Lookups the default bind needs (injectable). */
export interface BindDeps {
  /** The gateway address of the local Incus bridge. */
  incusGateway(incus: BindConfig["incus"]): Promise<string>;
  /** The local address used to reach `host:port`. */
  localAddressToward(host: string, port: number): Promise<string>;
}

/** Where the proxy listens, and why. */
export interface ProxyAddress {
  bind: string;
  port: number;
  /** `config` (credential_proxy_bind), `flag`, or `backend` (derived). */
  source: "config" | "flag" | "backend";
}

/** True for 0.0.0.0 / ::. */
export function isUnspecified(bind: string): boolean {
  const ip = parseIp(bind);
  return ip !== null && ip.bytes.every((b) => b === 0);
}

interface IncusEnvelope {
  metadata?: unknown;
  error?: string;
}

/** The Incus socket's HTTP client, project and per-request budget. */
interface IncusScope {
  client: Deno.HttpClient;
  project: string | undefined;
  timeoutMs: number;
}

async function incusGet(scope: IncusScope, path: string): Promise<unknown> {
  const { client, project, timeoutMs } = scope;
  const q = project
    ? `${path.includes("?") ? "&" : "?"}project=${encodeURIComponent(project)}`
    : "";
  let body: IncusEnvelope;
  let res: Response;
  try {
    res = await fetch(`http://localhost${path}${q}`, {
      client,
      signal: AbortSignal.timeout(timeoutMs),
    });
    body = await res.json() as IncusEnvelope;
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    throw new Error(
      timedOut
        ? `the Incus API did not answer GET ${path} within ${Math.round(timeoutMs / 1000)} s`
        : `GET ${path}: ${errorMessage(error)}`,
    );
  }
  if (!res.ok || body.metadata === undefined || body.metadata === null) {
    throw new Error(`GET ${path}: ${body.error ?? `HTTP ${res.status}`}`);
  }
  return body.metadata;
}

function gatewayOf(net: Record<string, unknown>): string | null {
  const config = (net.config ?? {}) as Record<string, string>;
  for (const key of ["ipv4.address", "ipv6.address"]) {
    const value = config[key];
    if (value && value !== "none" && value !== "auto") {
      const addr = value.split("/")[0];
      if (parseIp(addr)) return addr;
    }
  }
  return null;
}

/** The host's own address on interface `name` (IPv4 first), or null. */
function interfaceAddress(name: string): string | null {
  const found = Deno.networkInterfaces().filter((i) => i.name === name);
  const pick = found.find((i) => i.family === "IPv4") ??
    found.find((i) => i.family === "IPv6" && !i.address.startsWith("fe80"));
  return pick ? pick.address.split("%")[0] : null;
}

/**
 * Reads the local Incus bridge's gateway address. The network is `incus.network`, else the one
 * the `default` profile's NIC uses (REST API on the unix socket); its address is the host's
 * address on that interface, else the network's configured `ipv4.address`/`ipv6.address`.
 * When the profile names no network or does not answer, the only managed bridge with an address
 * is used. Each API call is bounded by `timeoutMs`.
 */
export async function readIncusGateway(
  incus: BindConfig["incus"],
  timeoutMs = 5000,
): Promise<string> {
  if (incus.network) {
    const local = interfaceAddress(incus.network);
    if (local) return local;
  }
  // No idle pooled connections: an idle connection on the socket stalls incusd (see
  // src/backends/incus/README.md).
  const { incusSocketHttpClient } = await import("../backends/incus/client.ts");
  const client = incusSocketHttpClient(incus.socket);
  const scope: IncusScope = { client, project: incus.project, timeoutMs };
  try {
    let network = incus.network;
    let profileProblem = "";
    if (!network) {
      try {
        const path = "/1.0/profiles/default";
        const profile = await incusGet(scope, path) as Record<string, unknown>;
        const devices = (profile.devices ?? {}) as Record<string, Record<string, string>>;
        const nic = Object.values(devices).find((d) => d.type === "nic" && (d.network || d.parent));
        network = nic?.network ?? nic?.parent;
        if (!network) profileProblem = "the default profile has no NIC on a managed network";
      } catch (error) {
        profileProblem = errorMessage(error);
      }
    }
    if (network) {
      const local = interfaceAddress(network);
      if (local) return local;
      const net = await incusGet(
        scope,
        `/1.0/networks/${encodeURIComponent(network)}`,
      ) as Record<string, unknown>;
      const addr = gatewayOf(net);
      if (addr) return addr;
      throw new Error(`network ${network} has no IPv4 or IPv6 address`);
    }
    const list = await incusGet(scope, "/1.0/networks?recursion=1");
    const bridges = (Array.isArray(list) ? list : []).filter((n) =>
      n?.managed === true && n?.type === "bridge" && gatewayOf(n) !== null
    );
    if (bridges.length === 1) return gatewayOf(bridges[0])!;
    throw new Error(
      `${profileProblem}; and ${bridges.length} managed bridges have an address (set incus.network)`,
    );
  } finally {
    client.close();
  }
}

/** The local address of a TCP connection to `host:port`. */
export async function localAddressToward(host: string, port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: host, port, signal: AbortSignal.timeout(5000) });
  try {
    return (conn.localAddr as Deno.NetAddr).hostname;
  } finally {
    conn.close();
  }
}

/** The real lookups. */
export const realBindDeps: BindDeps = {
  incusGateway: readIncusGateway,
  localAddressToward,
};

/** The default bind that needs no lookup, or null when the backend needs one. */
export function staticDefaultBind(backend: string): string | null {
  if (backend === "tart") return TART_HOST_ADDRESS;
  if (backend === "memory") return "127.0.0.1";
  return null;
}

/**
 * Resolves the proxy's address for `backend`. Throws ConfigError when the backend's network
 * cannot be determined (with a hint to set `credential_proxy_bind`).
 */
export async function resolveProxyAddress(
  config: BindConfig,
  backend: string,
  deps: BindDeps = realBindDeps,
): Promise<ProxyAddress> {
  const port = config.credential_proxy_port;
  if (config.credential_proxy_bind) {
    return { bind: config.credential_proxy_bind, port, source: "config" };
  }
  const fixed = staticDefaultBind(backend);
  if (fixed) return { bind: fixed, port, source: "backend" };
  const hint = "set credential_proxy_bind to an address of this host the sandboxes can reach";
  try {
    if (backend === "incus") {
      if (config.incus.remote) {
        const url = new URL(config.incus.remote);
        const bind = await deps.localAddressToward(url.hostname, Number(url.port || 8443));
        return { bind, port, source: "backend" };
      }
      return { bind: await deps.incusGateway(config.incus), port, source: "backend" };
    }
    if (backend === "truenas") {
      if (!config.truenas.host) throw new Error("truenas.host is not set");
      const bind = await deps.localAddressToward(config.truenas.host, config.truenas.port);
      return { bind, port, source: "backend" };
    }
  } catch (error) {
    throw new ConfigError(
      `cannot tell which address the proxy should listen on for backend ${backend}: ${
        errorMessage(error)
      }`,
      { hint, cause: error },
    );
  }
  throw new ConfigError(`no default proxy address for backend '${backend}'`, { hint });
}
