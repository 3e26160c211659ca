/**
 * The proxy server. One public TCP listener on `bind:port` reads the head of the first request
 * on each connection (bounded in size and time): a `CONNECT` is tunnelled right there
 * (forward.ts), because Deno.serve cannot hand over the raw connection; every other connection
 * is spliced, unchanged, to an internal `Deno.serve` on an ephemeral loopback port, which
 * routes each request (routing.ts): `/health`, the credentialed `/v1/*` forward (api.ts),
 * plain-HTTP egress (forward.ts), or a refusal. The internal server learns the real client
 * address from a table keyed by the splice connection's local port.
 *
 * Every request but `/health` must present a sandbox's token (auth.ts, clients.ts): an API
 * request in `Authorization`/`x-api-key` (else 401), a proxy request in `Proxy-Authorization`
 * (else 407), each refusal logged with the client's address and why (never the value). The
 * client is that sandbox from then on: its egress policy, its name in every log line.
 *
 * @module
 */
import type { CredentialCache } from "../credentials/cache.ts";
import { errorMessage, UnreachableError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { VERSION } from "../lib/version.ts";
import { formatHostPort, httpUrl } from "./address.ts";
import { isUnspecified } from "./bind.ts";
import { forwardApi } from "./api.ts";
import {
  apiTokens,
  PROXY_CHALLENGE,
  proxyAuthRequiredResponse,
  proxyToken,
  REFUSAL_TEXT,
  unauthorizedResponse,
} from "./auth.ts";
import { canonicalIp, type ClientDirectory, type ClientInfo, describeClient } from "./clients.ts";
import { type Resolver, systemResolver } from "./egress.ts";
import type { EgressRecorder } from "./egress_log.ts";
import { forwardHttp, handleConnect, respondRaw } from "./forward.ts";
import { headerBytes, textResponse } from "./headers.ts";
import { plainResponse, readRequestHead, STATUS_TEXT } from "./http_head.ts";
import { DEFAULT_LIMITS, type ProxyLimits } from "./limits.ts";
import { splice, writeAll } from "./pump.ts";
import { routeRequest, selfAuthorities } from "./routing.ts";

/** Idle upstream connections kept per host. */
export const POOL_IDLE_PER_HOST = 32;

/** Options of {@link startProxyServer}. */
export interface ProxyServerOptions {
  /** Address to listen on (an IP literal). */
  bind: string;
  /** Port (0 picks a free one; tests). */
  port: number;
  /** `credential_proxy_upstream`. */
  upstream: string;
  credentials: CredentialCache;
  /** Who presents which token (every request but /health must present one). */
  clients: ClientDirectory;
  /** Request, refusal and error lines (redacted by the logger). */
  logger: Logger;
  resolver?: Resolver;
  /** The per-sandbox egress log (egress_log.ts); absent: decisions are only logged. */
  egressLog?: EgressRecorder;
  limits?: Partial<ProxyLimits>;
  /** More host names under which the proxy answers as itself. */
  selfHosts?: string[];
}

/** What `/health` returns. */
export interface HealthDocument {
  status: "ok";
  proxy: "tachikoma";
  credential_source: string;
  pid: number;
  version: string;
}

/** A running proxy. */
export interface ProxyServer {
  /** The address actually bound. */
  readonly bind: string;
  readonly port: number;
  /** `http://bind:port`. */
  readonly url: string;
  /** Connections open right now (front side). */
  activeConnections(): number;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
  /** Stops accepting, closes every connection and the internal server. */
  shutdown(): Promise<void>;
}

function listen(bind: string, port: number): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: bind, port, transport: "tcp" });
  } catch (error) {
    const where = formatHostPort(bind, port);
    if (error instanceof Deno.errors.AddrInUse) {
      throw new UnreachableError(`cannot listen on ${where}: the port is in use`, {
        hint: "another program (or another proxy) uses it: `tachikoma proxy status`, or set " +
          "credential_proxy_port",
        cause: error,
      });
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new UnreachableError(`cannot listen on ${where}: no such address on this host`, {
        hint: "the backend's guest network may not exist yet (tart creates 192.168.64.1 while a " +
          "VM runs); or set credential_proxy_bind",
        cause: error,
      });
    }
    throw new UnreachableError(`cannot listen on ${where}: ${errorMessage(error)}`, {
      cause: error,
    });
  }
}

/** Starts the proxy. Throws UnreachableError when it cannot listen. */
export function startProxyServer(options: ProxyServerOptions): Promise<ProxyServer> {
  const limits: ProxyLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const logger = options.logger;
  const resolver = options.resolver ?? systemResolver;
  const upstream = new URL(options.upstream);
  // Pooled upstream connections: a burst of streams must not leave hundreds of idle sockets.
  const pool = { poolMaxIdlePerHost: POOL_IDLE_PER_HOST, poolIdleTimeout: 30_000 };
  const apiHttp = Deno.createHttpClient(pool);
  const egressHttp = Deno.createHttpClient({ ...pool, allowHost: true });
  const forwardCtx = { resolver, limits, logger, http: egressHttp, egressLog: options.egressLog };
  const apiCtx = { upstream, credentials: options.credentials, http: apiHttp, limits, logger };

  const listener = listen(options.bind, options.port);
  const port = listener.addr.port;
  const extraHosts = [...(options.selfHosts ?? [])];
  if (isUnspecified(options.bind)) {
    // Bound to every address: each local address (and localhost) names the proxy itself.
    for (const ni of Deno.networkInterfaces()) extraHosts.push(ni.address.split("%")[0]);
    extraHosts.push("localhost", "127.0.0.1", "::1");
  }
  const self = selfAuthorities(options.bind, port, extraHosts);
  /** Local port of a splice connection → the real client's address and its liveness. */
  const peers = new Map<number, { ip: string; gone: AbortSignal }>();
  const neverGone = new AbortController().signal;
  const open = new Set<Deno.Conn>();

  // Resolve credentials once up front so /health can name the source without waiting.
  options.credentials.refresh().catch(() => {});

  /** Short text for a request target in a log line. */
  const shown = (target: string) =>
    JSON.stringify(target.length > 200 ? `${target.slice(0, 200)}…` : target);

  /**
   * The sandbox presenting one of `tokens` from `ip`, or null after logging the refusal. The
   * tokens are tried in order; the first known one wins.
   */
  const authenticate = async (
    ip: string,
    tokens: string[],
    what: { method: string; target: string; status: 401 | 407 },
  ): Promise<ClientInfo | null> => {
    let reason = "no token";
    for (const token of tokens) {
      const id = await options.clients.identify(ip, token);
      if (id.ok) return id.client;
      reason = id.reason;
    }
    logger.warn(
      `refused: client ${canonicalIp(ip)} ${what.method} ${shown(what.target)} → ${what.status} ` +
        `(${reason})`,
    );
    return null;
  };

  const peerIp = (remote: Deno.Addr): string => {
    const addr = remote as Deno.NetAddr;
    return peers.get(addr.port)?.ip ?? `${addr.hostname} (direct)`;
  };
  /** Aborts when the client's connection closes (Deno.serve's own signal is not used). */
  const clientGone = (remote: Deno.Addr): AbortSignal =>
    peers.get((remote as Deno.NetAddr).port)?.gone ?? neverGone;

  const handler = async (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    const route = routeRequest(req.method, req.url, self);
    // API calls measure their headers while copying them (api.ts); the rest here.
    if (route.kind !== "api" && headerBytes(req.headers) > limits.maxHeadBytes) {
      return textResponse(431, "Request headers too large");
    }
    switch (route.kind) {
      case "health": {
        const status = options.credentials.peek();
        if (status.source === "pending") options.credentials.refresh().catch(() => {});
        const doc: HealthDocument = {
          status: "ok",
          proxy: "tachikoma",
          credential_source: status.source,
          pid: Deno.pid,
          version: VERSION,
        };
        return Response.json(doc, { headers: { "cache-control": "no-store" } });
      }
      case "api": {
        const client = await authenticate(
          peerIp(info.remoteAddr),
          apiTokens((n) => req.headers.get(n)),
          { method: req.method, target: route.path, status: 401 },
        );
        if (!client) return unauthorizedResponse();
        return forwardApi(req, {
          path: route.path,
          query: route.query,
          who: describeClient(client),
          gone: clientGone(info.remoteAddr),
        }, apiCtx);
      }
      case "forward": {
        const token = proxyToken(req.headers.get("proxy-authorization"));
        const client = await authenticate(peerIp(info.remoteAddr), token ? [token] : [], {
          method: req.method,
          target: req.url,
          status: 407,
        });
        if (!client) return proxyAuthRequiredResponse();
        return forwardHttp(req, {
          host: route.host,
          port: route.port,
          pathAndQuery: route.pathAndQuery,
          client,
          gone: clientGone(info.remoteAddr),
        }, forwardCtx);
      }
      case "reject": {
        const api = route.audience === "api";
        const proxied = proxyToken(req.headers.get("proxy-authorization"));
        const client = await authenticate(
          peerIp(info.remoteAddr),
          api ? apiTokens((n) => req.headers.get(n)) : proxied ? [proxied] : [],
          { method: req.method, target: req.url, status: api ? 401 : 407 },
        );
        if (!client) return api ? unauthorizedResponse() : proxyAuthRequiredResponse();
        logger.warn(`${describeClient(client)} ${req.method} ${shown(req.url)} → ${route.status}`);
        return textResponse(route.status, route.reason);
      }
    }
  };

  const internal = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: () => {},
    onError: (error) => {
      logger.error(`proxy: internal error: ${errorMessage(error)}`);
      return textResponse(500, "Internal proxy error");
    },
  }, handler);
  const internalPort = internal.addr.port;

  const serveConnection = async (conn: Deno.TcpConn): Promise<void> => {
    open.add(conn);
    try {
      conn.setNoDelay(true);
      const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
      const read = await readRequestHead(conn, limits.maxHeadBytes, limits.headTimeoutMs);
      if (!read.ok) {
        if (read.status !== 0) {
          logger.warn(`client ${peer}: ${read.reason} → ${read.status}`);
          try {
            await writeAll(
              conn,
              plainResponse({
                status: read.status,
                reason: STATUS_TEXT[read.status] ?? "Error",
                body: read.reason,
              }),
            );
          } catch {
            // gone
          }
        }
        conn.close();
        return;
      }
      if (read.head.method === "CONNECT") {
        const header = read.head.headers.find(([k]) => k === "proxy-authorization");
        const token = proxyToken(header ? header[1] : null);
        const client = await authenticate(canonicalIp(peer), token ? [token] : [], {
          method: "CONNECT",
          target: read.head.target,
          status: 407,
        });
        if (!client) {
          await respondRaw(conn, {
            status: 407,
            body: REFUSAL_TEXT,
            headers: [["proxy-authenticate", PROXY_CHALLENGE]],
          });
          return;
        }
        await handleConnect({ conn, head: read.head, rest: read.rest, client }, forwardCtx);
        return;
      }
      const inner = await Deno.connect({ hostname: "127.0.0.1", port: internalPort });
      inner.setNoDelay(true);
      const key = (inner.localAddr as Deno.NetAddr).port;
      const gone = new AbortController();
      peers.set(key, { ip: peer, gone: gone.signal });
      open.add(inner);
      try {
        await writeAll(inner, read.raw);
        if (read.rest.length > 0) await writeAll(inner, read.rest);
        await splice(conn, inner);
      } finally {
        gone.abort(new Error("client went away"));
        peers.delete(key);
        open.delete(inner);
        try {
          inner.close();
        } catch {
          // closed by splice
        }
      }
    } catch (error) {
      if (!(error instanceof Deno.errors.BadResource)) {
        logger.debug(`proxy: connection error: ${errorMessage(error)}`);
      }
      try {
        conn.close();
      } catch {
        // closed already
      }
    } finally {
      open.delete(conn);
    }
  };

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.TcpConn;
      try {
        conn = await listener.accept();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
          return;
        }
        logger.warn(`proxy: accept failed: ${errorMessage(error)}`);
        continue;
      }
      serveConnection(conn);
    }
  })();

  let stopping: Promise<void> | null = null;
  const shutdown = () => {
    stopping ??= (async () => {
      try {
        listener.close();
      } catch {
        // closed
      }
      for (const c of open) {
        try {
          c.close();
        } catch {
          // closed
        }
      }
      await internal.shutdown();
      await accepting;
      apiHttp.close();
      egressHttp.close();
    })();
    return stopping;
  };

  const finished = (async () => {
    await accepting;
    await internal.finished;
  })();

  return Promise.resolve({
    bind: options.bind,
    port,
    url: httpUrl(options.bind, port),
    activeConnections: () => open.size,
    finished,
    shutdown,
  });
}
