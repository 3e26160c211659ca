/**
 * Test helpers: a proxy on loopback in front of the fake upstream, with a fixed credential, two
 * sandboxes' tokens (A's is the default client) and a logger whose lines the test can read.
 *
 * @module
 */
import { CredentialCache } from "../../../src/credentials/cache.ts";
import type { Credential } from "../../../src/credentials/types.ts";
import { Logger } from "../../../src/lib/log.ts";
import { registerSecret } from "../../../src/lib/redact.ts";
import { type ClientDirectory, StaticClientDirectory } from "../../../src/proxy/clients.ts";
import { EgressPolicy, type Resolver } from "../../../src/proxy/egress.ts";
import type { ProxyLimits } from "../../../src/proxy/limits.ts";
import { type ProxyServer, startProxyServer } from "../../../src/proxy/server.ts";
import { newToken } from "../../../src/proxy/tokens.ts";
import { type FakeUpstream, startFakeUpstream } from "../../fixtures/upstream.ts";

/** The secret the tests hand to the proxy. */
export const API_KEY = "sk-ant-api03-TESTKEY-abcdefghijklmnop";
/** An OAuth token for tests. */
export const OAUTH_TOKEN = "sk-ant-oat01-TESTTOKEN-qrstuvwxyz";

/** Sandbox A's proxy token (the harness's default client). */
export const TOKEN_A = newToken();
/** Sandbox B's proxy token. */
export const TOKEN_B = newToken();
/** The sandboxes of the tokens. */
export const SANDBOX_A = "tk-repo-feature-a";
export const SANDBOX_B = "tk-other-feature-b";

/** `Authorization: Bearer` with A's token (an API call from sandbox A). */
export const AUTH_A: Record<string, string> = { authorization: `Bearer ${TOKEN_A}` };

/** A `Proxy-Authorization: Basic` value with `token` as the password. */
export function basic(token: string, user = "tachikoma"): string {
  return `Basic ${btoa(`${user}:${token}`)}`;
}

/** A proxy plus its upstream and captured log lines. */
export interface Harness {
  proxy: ProxyServer;
  upstream: FakeUpstream;
  lines: string[];
  cache: CredentialCache;
  close(): Promise<void>;
}

/** Options of {@link startHarness}. */
export interface HarnessOptions {
  credential?: Credential | null;
  /** Sandbox A's egress policy (default: allowlist, nothing allowed). */
  policy?: EgressPolicy;
  /** Sandbox B's egress policy (default: allowlist, nothing allowed). */
  policyB?: EgressPolicy;
  clients?: ClientDirectory;
  resolver?: Resolver;
  limits?: Partial<ProxyLimits>;
  upstreamOptions?: Parameters<typeof startFakeUpstream>[0];
  bind?: string;
}

/** Starts the fake upstream and a proxy in front of it. */
export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  registerSecret(API_KEY);
  registerSecret(OAUTH_TOKEN);
  const upstream = startFakeUpstream(options.upstreamOptions);
  const lines: string[] = [];
  const logger = new Logger({ level: "debug", sink: (l) => lines.push(l) });
  const credential = options.credential === undefined
    ? { kind: "api_key" as const, source: "api_key_env" as const, value: API_KEY }
    : options.credential;
  const cache = new CredentialCache({
    resolve: () => Promise.resolve({ credential, attempts: [] }),
    ttlMs: 60_000,
  });
  const clients = options.clients ?? new StaticClientDirectory({
    [TOKEN_A]: { sandbox: SANDBOX_A, policy: options.policy ?? new EgressPolicy("allowlist", []) },
    [TOKEN_B]: {
      sandbox: SANDBOX_B,
      policy: options.policyB ?? new EgressPolicy("allowlist", []),
    },
  });
  const proxy = await startProxyServer({
    bind: options.bind ?? "127.0.0.1",
    port: 0,
    upstream: upstream.url,
    credentials: cache,
    clients,
    logger,
    resolver: options.resolver ?? (() => Promise.reject(new Error("no DNS in tests"))),
    limits: options.limits,
  });
  return {
    proxy,
    upstream,
    lines,
    cache,
    async close() {
      await proxy.shutdown();
      await upstream.close();
    },
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Sends raw bytes on a fresh connection and returns everything read until close or timeout. */
export async function rawExchange(
  port: number,
  request: string | Uint8Array,
  options: { hostname?: string; timeoutMs?: number } = {},
): Promise<string> {
  const conn = await Deno.connect({ hostname: options.hostname ?? "127.0.0.1", port });
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch {
      // closed
    }
  }, options.timeoutMs ?? 3000);
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  let out = "";
  try {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
    const buf = new Uint8Array(16384);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      out += decoder.decode(buf.subarray(0, n));
      // A complete response with content-length: stop reading.
      const m = /content-length: (\d+)\r\n/i.exec(out);
      const end = out.indexOf("\r\n\r\n");
      if (m && end !== -1 && out.length >= end + 4 + Number(m[1])) break;
    }
  } catch {
    // closed by timer or peer
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed
    }
  }
  return out;
}

/** The status code of a raw HTTP response. */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}
