/**
 * One request sent on by the proxy (the API forward and the egress forward share it): streamed
 * body (half duplex), no redirects followed, aborted when the client goes away or when the
 * upstream's headers do not come in time; and the upstream's answer relayed with only the
 * headers that may cross the proxy.
 *
 * @module
 */
import { forwardableHeaders } from "./headers.ts";

/** The request to send on. */
export interface UpstreamRequest {
  method: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | undefined;
}

/** How the request is sent, and when it is given up. */
export interface UpstreamOptions {
  client: Deno.HttpClient;
  /** Aborts when the client's connection closes. */
  gone: AbortSignal;
  /** How long the upstream may take to send its headers. */
  headersTimeoutMs: number;
  /** Why it was given up when it took longer (for the log). */
  timeoutReason: string;
}

/** What came back: the upstream's response, or the error that ended the attempt. */
export type UpstreamOutcome = { response: Response } | { error: unknown };

/** Sends `request` to `url`; never throws (a failure is the outcome's `error`). */
export async function fetchUpstream(
  url: string,
  request: UpstreamRequest,
  options: UpstreamOptions,
): Promise<UpstreamOutcome> {
  const { client, gone } = options;
  const abort = new AbortController();
  const onClientGone = () => abort.abort(new Error("client went away"));
  gone.addEventListener("abort", onClientGone, { once: true });
  const timer = setTimeout(
    () => abort.abort(new Error(options.timeoutReason)),
    options.headersTimeoutMs,
  );
  try {
    const response = await fetch(url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      redirect: "manual",
      signal: abort.signal,
      client,
      // Streaming request bodies need half-duplex.
      ...({ duplex: "half" } as Record<string, string>),
    });
    return { response };
  } catch (error) {
    return { error: abort.signal.reason ?? error };
  } finally {
    clearTimeout(timer);
    gone.removeEventListener("abort", onClientGone);
  }
}

/** The upstream's response as the client gets it: its status, body and forwardable headers. */
export function relayResponse(upstream: Response): Response {
  return new Response(upstream.body, {
    status: upstream.status,
    statusText: upstream.statusText,
    headers: forwardableHeaders(upstream.headers),
  });
}
