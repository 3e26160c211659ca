/**
 * The egress forward proxy for guests: `CONNECT host:port` tunnels and absolute-URI plain-HTTP
 * requests, each only to targets the sandbox's egress policy allows (see egress.ts); anything
 * else is refused with 403 and a log line naming the sandbox and the host. The client has been
 * identified by its token before (server.ts). The proxy connects to the address the policy
 * checked (no second DNS lookup), with a connect timeout. Egress traffic never carries host
 * credentials, and `Proxy-Authorization` (the sandbox's token) is never forwarded: it is
 * hop-by-hop, and a CONNECT head is never passed on.
 *
 * @module
 */
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { formatHostPort, parseAuthority, urlHost } from "./address.ts";
import { type ClientInfo, describeClient } from "./clients.ts";
import type { EgressDecision, Resolver } from "./egress.ts";
import type { EgressRecorder } from "./egress_log.ts";
import { byteCap, formatBytes, forwardableHeaders, textResponse } from "./headers.ts";
import { type PlainResponse, plainResponse, type RequestHead, STATUS_TEXT } from "./http_head.ts";
import type { ProxyLimits } from "./limits.ts";
import { fetchUpstream, relayResponse } from "./upstream.ts";
import { splice, writeAll } from "./pump.ts";

/** What the egress forward needs. */
export interface ForwardContext {
  resolver: Resolver;
  limits: ProxyLimits;
  logger: Logger;
  /** An HTTP client allowed to set `Host` (requests go to the checked IP). */
  http: Deno.HttpClient;
  /** The per-sandbox egress log (absent: decisions go to the logger only). */
  egressLog?: EgressRecorder;
}

/** Records a decision in the sandbox's egress log. */
function recordDecision(
  ctx: ForwardContext,
  target: { client: ClientInfo; method: string; host: string; port: number },
  decision: EgressDecision,
): Promise<void> {
  if (!ctx.egressLog) return Promise.resolve();
  return ctx.egressLog.record({
    time: new Date().toISOString(),
    sandbox: target.client.sandbox,
    method: target.method,
    host: target.host,
    port: target.port,
    verdict: decision.allowed ? "allowed" : "refused",
    ...(decision.allowed ? {} : { reason: decision.reason }),
  });
}

function denyText(host: string, port: number, reason: string): string {
  return `tachikoma proxy: egress to ${formatHostPort(host, port)} refused: ${reason}.\n` +
    "Allow it on the host with egress_allow in the tachikoma configuration.";
}

/** Answers on a raw connection and closes it. */
export async function respondRaw(
  conn: Deno.Conn,
  response: Omit<PlainResponse, "reason">,
): Promise<void> {
  const reason = STATUS_TEXT[response.status] ?? "Error";
  try {
    await writeAll(conn, plainResponse({ ...response, reason }));
  } catch {
    // the client went away
  }
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** Opens a TCP connection with a deadline. */
async function connectWithTimeout(
  hostname: string,
  port: number,
  timeoutMs: number,
): Promise<Deno.TcpConn> {
  const signal = AbortSignal.timeout(timeoutMs);
  const conn = await Deno.connect({ hostname, port, signal });
  conn.setNoDelay(true);
  return conn;
}

/** A `CONNECT` read from a raw connection, and its authenticated client. */
export interface ConnectRequest {
  conn: Deno.Conn;
  head: RequestHead;
  /** Bytes read past the head (the tunnel's first bytes). */
  rest: Uint8Array;
  client: ClientInfo;
}

/** Handles a `CONNECT` that arrived as the first request on `conn`. */
export async function handleConnect(
  request: ConnectRequest,
  ctx: ForwardContext,
): Promise<void> {
  const { conn, head, rest, client } = request;
  const who = describeClient(client);
  const auth = parseAuthority(head.target);
  if (!auth || auth.port === null) {
    ctx.logger.warn(`${who} CONNECT ${JSON.stringify(head.target)} → 400 (bad authority)`);
    return respondRaw(conn, { status: 400, body: "CONNECT needs host:port" });
  }
  const decision = await (await client.policy()).decide(auth.host, auth.port, ctx.resolver);
  await recordDecision(
    ctx,
    { client, method: "CONNECT", host: auth.host, port: auth.port },
    decision,
  );
  const target = formatHostPort(auth.host, auth.port);
  if (!decision.allowed) {
    ctx.logger.warn(`egress denied: ${who} CONNECT ${target}: ${decision.reason}`);
    return respondRaw(conn, { status: 403, body: denyText(auth.host, auth.port, decision.reason) });
  }
  const started = performance.now();
  let upstream: Deno.TcpConn;
  try {
    upstream = await connectWithTimeout(decision.address, auth.port, ctx.limits.connectTimeoutMs);
  } catch (error) {
    const timedOut = error instanceof DOMException && error.name === "TimeoutError";
    const status = timedOut ? 504 : 502;
    ctx.logger.warn(
      `${who} CONNECT ${target} (${decision.address}) → ${status}: ${errorMessage(error)}`,
    );
    return respondRaw(conn, {
      status,
      body: timedOut ? "Tunnel connect timed out" : "Tunnel connect failed",
    });
  }
  try {
    await writeAll(conn, new TextEncoder().encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
    if (rest.length > 0) await writeAll(upstream, rest);
  } catch {
    upstream.close();
    try {
      conn.close();
    } catch {
      // already closed
    }
    return;
  }
  const counts = await splice(conn, upstream);
  ctx.logger.info(
    `${who} CONNECT ${target} (${decision.address}) closed after ${
      Math.round(performance.now() - started)
    }ms, ${counts.up + rest.length} B up, ${counts.down} B down`,
  );
}

/** Where a plain-HTTP request goes, and the client it came from. */
export interface HttpTarget {
  host: string;
  port: number;
  pathAndQuery: string;
  client: ClientInfo;
  /** Aborts when the client's connection closes. */
  gone: AbortSignal;
}

/** Forwards an absolute-URI plain-HTTP request to another host. */
export async function forwardHttp(
  req: Request,
  to: HttpTarget,
  ctx: ForwardContext,
): Promise<Response> {
  const { host, port, pathAndQuery, client, gone } = to;
  const who = describeClient(client);
  const target = formatHostPort(host, port);
  const decision = await (await client.policy()).decide(host, port, ctx.resolver);
  await recordDecision(ctx, { client, method: req.method, host, port }, decision);
  if (!decision.allowed) {
    ctx.logger.warn(`egress denied: ${who} ${req.method} http://${target}: ${decision.reason}`);
    return textResponse(403, denyText(host, port, decision.reason));
  }
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > ctx.limits.maxEgressBody) {
    return textResponse(413, `Request body exceeds ${formatBytes(ctx.limits.maxEgressBody)}`);
  }
  const headers = forwardableHeaders(req.headers);
  headers.set("host", port === 80 ? urlHost(host) : target);
  headers.set("accept-encoding", "identity");
  let tooLarge = false;
  const body = req.body
    ? req.body.pipeThrough(byteCap(ctx.limits.maxEgressBody, () => tooLarge = true))
    : undefined;
  const started = performance.now();
  const sent = await fetchUpstream(
    `http://${urlHost(decision.address)}:${port}${pathAndQuery}`,
    { method: req.method, headers, body },
    {
      client: ctx.http,
      gone,
      headersTimeoutMs: ctx.limits.egressHeadersTimeoutMs,
      timeoutReason: "no answer in time",
    },
  );
  if ("error" in sent) {
    if (tooLarge) {
      return textResponse(413, `Request body exceeds ${formatBytes(ctx.limits.maxEgressBody)}`);
    }
    ctx.logger.warn(`${who} ${req.method} http://${target} → 502: ${errorMessage(sent.error)}`);
    return textResponse(502, "Upstream request failed");
  }
  const res = sent.response;
  ctx.logger.info(
    `${who} ${req.method} http://${target} → ${res.status} ${
      Math.round(performance.now() - started)
    }ms`,
  );
  return relayResponse(res);
}
