/**
 * The proxy's limits. Request bodies are capped while streaming (413), request heads by size
 * (431) and time (408), connects by time (504).
 *
 * @module
 */

/** Limits of one proxy server. */
export interface ProxyLimits {
  /** Largest request body forwarded to the API (the Messages API accepts 32 MB). */
  maxApiBody: number;
  /** Largest request body forwarded to other hosts over plain HTTP. */
  maxEgressBody: number;
  /** Largest request head (request line + headers). */
  maxHeadBytes: number;
  /** Time a client has to send its first request head. */
  headTimeoutMs: number;
  /** Time to open a TCP connection for CONNECT or plain-HTTP egress. */
  connectTimeoutMs: number;
  /** Time the API may take to start answering (it can think for minutes). */
  upstreamHeadersTimeoutMs: number;
  /** Time another host may take to start answering a plain-HTTP egress request. */
  egressHeadersTimeoutMs: number;
}

/** Default limits. */
export const DEFAULT_LIMITS: Readonly<ProxyLimits> = {
  maxApiBody: 32 * 1024 * 1024,
  maxEgressBody: 50 * 1024 * 1024,
  maxHeadBytes: 32 * 1024,
  headTimeoutMs: 10_000,
  connectTimeoutMs: 10_000,
  upstreamHeadersTimeoutMs: 15 * 60_000,
  egressHeadersTimeoutMs: 60_000,
};
