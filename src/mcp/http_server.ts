/**
 * The MCP daemon's HTTP server on `Deno.serve` (HTTPS with the given certificate): every
 * request passes the guard (Host, Origin, bearer token: `http_guard.ts`) before anything
 * else; then `/mcp` goes to the MCP sessions (`http_sessions.ts`) and `GET /status` answers
 * the daemon's live numbers (for `tachikoma mcp status`). Anything else is 404.
 *
 * @module
 */
import { ConflictError, errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { formatHostPort } from "../proxy/address.ts";
import { checkRequest, type GuardPolicy, loopbackHosts, refusal } from "./http_guard.ts";
import type { SessionRegistry } from "./http_sessions.ts";
import { endpointUrl, type ListenPlan, MCP_PATH } from "./listen.ts";

/** Inputs of {@link startHttpServer}. */
export interface HttpServerOptions {
  plan: ListenPlan;
  token: string;
  sessions: SessionRegistry;
  /** The document `GET /status` answers. */
  status(): Record<string, unknown>;
}

/** Request counters of a running server. */
export interface HttpCounters {
  requests: number;
  /** Answered 401 (no or wrong token). */
  unauthorized: number;
  /** Answered 403 (foreign Host or Origin). */
  forbidden: number;
}

/** A listening server. */
export interface RunningHttpServer {
  /** The endpoint clients use (with the real port). */
  url: string;
  port: number;
  counters: HttpCounters;
  /** Resolves when the server has stopped. */
  finished: Promise<void>;
  /** Stops accepting and waits for open requests (close the sessions first). */
  shutdown(): Promise<void>;
}

/** Starts listening (see the module doc). A port already in use is a ConflictError. */
export function startHttpServer(options: HttpServerOptions): RunningHttpServer {
  const { plan, sessions } = options;
  const counters: HttpCounters = { requests: 0, unauthorized: 0, forbidden: 0 };
  // Known once the server listens (the real port): requests cannot arrive before.
  const guard: { policy?: GuardPolicy } = {};
  const handler = async (req: Request, info: Deno.ServeHandlerInfo): Promise<Response> => {
    counters.requests++;
    const url = new URL(req.url);
    const verdict = checkRequest(req.headers, guard.policy!, url.host);
    const path = url.pathname;
    if (!verdict.ok) {
      if (verdict.status === 401) counters.unauthorized++;
      else counters.forbidden++;
      const from = info.remoteAddr as Deno.NetAddr;
      log.debug(
        `mcp: ${verdict.status} for ${req.method} ${path.slice(0, 80)} from ` +
          `${formatHostPort(from.hostname, from.port)}: ${verdict.reason}`,
      );
      return refusal(verdict.status);
    }
    if (path === MCP_PATH) return await sessions.handle(req);
    if (path === "/status" && req.method === "GET") return Response.json(options.status());
    return new Response(null, { status: 404 });
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    const common = {
      hostname: plan.host,
      port: plan.port,
      onListen: () => {},
      onError: (error: unknown) => {
        log.warn(`mcp: request failed: ${errorMessage(error)}`);
        return new Response(null, { status: 500 });
      },
    };
    server = plan.tls
      ? Deno.serve({ ...common, cert: plan.tls.cert, key: plan.tls.key }, handler)
      : Deno.serve(common, handler);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new ConflictError(`${formatHostPort(plan.host, plan.port)} is already in use`, {
        hint: "another program listens there (or a tachikoma mcp daemon of another " +
          "configuration directory): stop it, or choose another --listen address",
      });
    }
    throw error;
  }
  const port = server.addr.port;
  guard.policy = {
    token: options.token,
    scheme: plan.tls ? "https" : "http",
    port,
    hosts: plan.loopback ? loopbackHosts(plan.host) : null,
  };
  return {
    url: endpointUrl(plan.host, port, plan.tls !== null),
    port,
    counters,
    finished: server.finished,
    shutdown: () => server.shutdown(),
  };
}
