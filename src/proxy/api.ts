/**
 * The credentialed forward: an origin-form `/v1/*` request to the proxy itself goes to
 * `credential_proxy_upstream` with the host's credential added (`x-api-key` for API keys;
 * `Authorization: Bearer` plus `anthropic-beta: oauth-2025-04-20` for OAuth tokens) and every
 * credential the guest sent removed. Bodies stream both ways: the request body is capped while
 * it streams (413), the response (SSE included) is passed on chunk by chunk as it arrives.
 * Upstream errors keep their status; transport failures are 502 with details only in the log.
 *
 * @module
 */
import type { CredentialCache } from "../credentials/cache.ts";
import { SOURCE_LABELS } from "../credentials/types.ts";
import { describeAttempts } from "../credentials/waterfall.ts";
import { errorMessage } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import {
  byteCap,
  copyForwardable,
  formatBytes,
  GUEST_AUTH_HEADERS,
  mergeBeta,
  textResponse,
} from "./headers.ts";
import type { ProxyLimits } from "./limits.ts";
import { fetchUpstream, relayResponse } from "./upstream.ts";

/** The beta flag the API requires with OAuth access tokens. */
export const OAUTH_BETA = "oauth-2025-04-20";

/** What the API forward needs. */
export interface ApiContext {
  /** `credential_proxy_upstream`, parsed. */
  upstream: URL;
  credentials: CredentialCache;
  /** The HTTP client for upstream calls (pooled connections). */
  http: Deno.HttpClient;
  limits: ProxyLimits;
  logger: Logger;
}

/** The upstream URL for a normalised path and raw query. */
export function upstreamUrl(upstream: URL, path: string, query: string): string {
  const base = upstream.pathname.replace(/\/+$/, "");
  return `${upstream.origin}${base}${path}${query !== "" ? `?${query}` : ""}`;
}

/** The client behind a request. */
export interface RequestOrigin {
  /** Names the client in log lines. */
  who: string;
  /** Aborts when the client's connection closes. */
  gone: AbortSignal;
}

/** An API request's normalised path and raw query, and the client behind it. */
export interface ApiRequestOrigin extends RequestOrigin {
  path: string;
  query: string;
}

/** Forwards one API request. */
export async function forwardApi(
  req: Request,
  origin: ApiRequestOrigin,
  ctx: ApiContext,
): Promise<Response> {
  const { path, query, who, gone } = origin;
  const started = performance.now();
  const line = (status: number | string, extra = "") =>
    `${who} ${req.method} ${path} → ${status} ${Math.round(performance.now() - started)}ms${extra}`;

  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > ctx.limits.maxApiBody) {
    ctx.logger.warn(line(413, " (declared body too large)"));
    return textResponse(413, `Request body exceeds ${formatBytes(ctx.limits.maxApiBody)}`);
  }

  const result = await ctx.credentials.result();
  const credential = result.credential;
  if (!credential) {
    ctx.logger.warn(line(503, ` (no credentials: ${describeAttempts(result.attempts)})`));
    return textResponse(
      503,
      "No credentials available on the host (run `tachikoma proxy logs` on the host for details)",
    );
  }
  if (credential.kind === "passthrough") {
    ctx.logger.warn(line(503, ` (host uses ${SOURCE_LABELS[credential.source]})`));
    return textResponse(
      503,
      `The host uses ${
        SOURCE_LABELS[credential.source]
      }; the credential proxy forwards to the Anthropic API only`,
    );
  }

  const { headers, bytes } = copyForwardable(req.headers, GUEST_AUTH_HEADERS);
  if (bytes > ctx.limits.maxHeadBytes) {
    ctx.logger.warn(line(431));
    return textResponse(431, "Request headers too large");
  }
  headers.set("accept-encoding", "identity");
  if (credential.kind === "api_key") {
    headers.set("x-api-key", credential.value);
  } else {
    headers.set("authorization", `Bearer ${credential.value}`);
    mergeBeta(headers, OAUTH_BETA);
  }

  // A body with a Content-Length is framed by the HTTP server (never longer than declared,
  // checked above); only a chunked body needs counting while it streams.
  let tooLarge = false;
  const framed = declared !== null && /^\d+$/.test(declared);
  const body = !req.body
    ? undefined
    : framed
    ? req.body
    : req.body.pipeThrough(byteCap(ctx.limits.maxApiBody, () => tooLarge = true));
  const sent = await fetchUpstream(upstreamUrl(ctx.upstream, path, query), {
    method: req.method,
    headers,
    body,
  }, {
    client: ctx.http,
    gone,
    headersTimeoutMs: ctx.limits.upstreamHeadersTimeoutMs,
    timeoutReason: "upstream did not answer in time",
  });
  if ("error" in sent) {
    if (tooLarge) {
      ctx.logger.warn(line(413, " (body too large)"));
      return textResponse(413, `Request body exceeds ${formatBytes(ctx.limits.maxApiBody)}`);
    }
    if (gone.aborted) {
      ctx.logger.info(line("client closed"));
      return textResponse(499, "Client closed request");
    }
    ctx.logger.warn(line(502, ` (upstream: ${errorMessage(sent.error)})`));
    return textResponse(502, "Upstream request failed");
  }
  const upstream = sent.response;
  if (upstream.status === 401) ctx.credentials.invalidate();
  ctx.logger.info(line(upstream.status, ` (${credential.source})`));
  return relayResponse(upstream);
}
