import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { EgressPolicy } from "../../../src/proxy/egress.ts";
import { OAUTH_BETA } from "../../../src/proxy/api.ts";
import {
  API_KEY,
  AUTH_A,
  basic,
  OAUTH_TOKEN,
  rawExchange,
  SANDBOX_A,
  SANDBOX_B,
  startHarness,
  statusOf,
  TOKEN_A,
  TOKEN_B,
} from "./helpers.ts";

/** Raw header lines: A's token for the proxy's own API, and for proxying. */
const RAW_AUTH = `Authorization: Bearer ${TOKEN_A}\r\n`;
const RAW_PROXY_AUTH = `Proxy-Authorization: ${basic(TOKEN_A)}\r\n`;

const JSON_HEADERS = { "content-type": "application/json" };
const messageBody = (stream: boolean) =>
  JSON.stringify({ model: "claude-test", max_tokens: 16, stream, messages: [] });

function noSecretsIn(text: string) {
  assert(!text.includes(API_KEY), "API key leaked");
  assert(!text.includes(OAUTH_TOKEN), "OAuth token leaked");
}

Deno.test("proxy: /health names the credential source, its pid and version, never the secret", async () => {
  const h = await startHarness();
  try {
    const res = await fetch(`${h.proxy.url}/health`);
    const text = await res.text();
    assertEquals(res.status, 200);
    const doc = JSON.parse(text);
    assertEquals(doc.status, "ok");
    assertEquals(doc.proxy, "tachikoma");
    assertEquals(doc.credential_source, "api_key_env");
    assertEquals(doc.pid, Deno.pid);
    assertEquals(typeof doc.version, "string");
    noSecretsIn(text);
  } finally {
    await h.close();
  }
});

Deno.test("proxy: absolute-form GET http://other/health is not the health endpoint", async () => {
  const h = await startHarness();
  try {
    // Egress to example.com: without a token 407, with one refused by the policy (403).
    const anonymous = await rawExchange(
      h.proxy.port,
      "GET http://example.com/health HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    assertEquals(statusOf(anonymous), 407);
    const raw = await rawExchange(
      h.proxy.port,
      `GET http://example.com/health HTTP/1.1\r\nHost: example.com\r\n${RAW_PROXY_AUTH}\r\n`,
    );
    assertEquals(statusOf(raw), 403);
    for (const r of [anonymous, raw]) assert(!r.includes('"proxy":"tachikoma"'));
  } finally {
    await h.close();
  }
});

Deno.test("proxy: API calls get the host API key; guest credentials (the token too) are stripped", async () => {
  const h = await startHarness();
  try {
    const res = await fetch(`${h.proxy.url}/v1/messages?beta=true`, {
      method: "POST",
      headers: {
        ...JSON_HEADERS,
        "x-api-key": "guest-key",
        ...AUTH_A,
        cookie: "session=guest",
        "anthropic-version": "2023-06-01",
      },
      body: messageBody(false),
    });
    assertEquals(res.status, 200);
    assertEquals((await res.json()).type, "message");
    const seen = h.upstream.requests.at(-1)!;
    assertEquals(seen.path, "/v1/messages?beta=true");
    assertEquals(seen.headers["x-api-key"], API_KEY);
    assertEquals(seen.headers["authorization"], undefined);
    assertEquals(seen.headers["cookie"], undefined);
    assertEquals(seen.headers["anthropic-version"], "2023-06-01");
    assert(!JSON.stringify(h.upstream.requests).includes(TOKEN_A), "the token went upstream");
    noSecretsIn(h.lines.join("\n"));
    assertStringIncludes(h.lines.join("\n"), `sandbox ${SANDBOX_A} (127.0.0.1) POST /v1/messages`);
  } finally {
    await h.close();
  }
});

Deno.test("proxy: OAuth tokens go as Bearer with the OAuth beta merged into the guest's", async () => {
  const h = await startHarness({
    credential: { kind: "oauth", source: "credentials_file", value: OAUTH_TOKEN },
  });
  try {
    const res = await fetch(`${h.proxy.url}/v1/models`, {
      headers: { "x-api-key": TOKEN_A, "anthropic-beta": "tools-2024-04-04" },
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
    const seen = h.upstream.requests.at(-1)!;
    assertEquals(seen.headers["authorization"], `Bearer ${OAUTH_TOKEN}`);
    assertEquals(seen.headers["x-api-key"], undefined);
    assertEquals(seen.headers["anthropic-beta"], `tools-2024-04-04,${OAUTH_BETA}`);
  } finally {
    await h.close();
  }
});

Deno.test("proxy: SSE events pass as they arrive (no buffering)", async () => {
  // Lockstep: the upstream sends event i only once the client has received event i-1 through
  // the proxy. A proxy that held events back would never deliver the first one: the gate then
  // fails the stream (safety net, far beyond any real delay) and the assertions below report it.
  let received = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const gateFailures: string[] = [];
  const eventGate = async (index: number) => {
    if (received >= index) return;
    const arrived = new Promise<void>((resolve) => waiters.push({ n: index, resolve }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gateFailures.push(`event ${index - 1} never reached the client`);
        reject(new Error("buffered"));
      }, 20_000);
    });
    try {
      await Promise.race([arrived, late]);
    } finally {
      clearTimeout(timer);
    }
  };
  const h = await startHarness({ upstreamOptions: { deltas: 3, eventGate } });
  try {
    const res = await fetch(`${h.proxy.url}/v1/messages`, {
      method: "POST",
      headers: { ...JSON_HEADERS, ...AUTH_A },
      body: messageBody(true),
    });
    assertEquals(res.headers.get("content-type"), "text/event-stream");
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let all = "";
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) break;
      all += decoder.decode(value);
      received = (all.match(/^event: /gm) ?? []).length;
      for (const w of waiters.filter((w) => received >= w.n)) w.resolve();
    }
    assertEquals(gateFailures, []);
    assertStringIncludes(all, "event: message_start");
    assertStringIncludes(all, "event: message_stop");
    assertEquals(received, 9, "3 deltas + 6 framing events, each released after the previous");
  } finally {
    await h.close();
  }
});

Deno.test("proxy: upstream errors are passed through with their status", async () => {
  const h = await startHarness();
  try {
    for (const code of [400, 401, 429, 529]) {
      const res = await fetch(`${h.proxy.url}/v1/status/${code}`, { headers: AUTH_A });
      assertEquals(res.status, code);
      assertEquals((await res.json()).error.message, `fake error ${code}`);
    }
  } finally {
    await h.close();
  }
});

Deno.test("proxy: no host credentials → 503; Bedrock/Vertex → 503 saying why", async () => {
  const h = await startHarness({ credential: null });
  try {
    const res = await fetch(`${h.proxy.url}/v1/models`, { headers: AUTH_A });
    assertEquals(res.status, 503);
    assertStringIncludes(await res.text(), "No credentials available on the host");
    assertEquals(h.upstream.requests.length, 0);
  } finally {
    await h.close();
  }
  const b = await startHarness({
    credential: { kind: "passthrough", source: "bedrock", vars: {} },
  });
  try {
    const res = await fetch(`${b.proxy.url}/v1/models`, { headers: AUTH_A });
    assertEquals(res.status, 503);
    assertStringIncludes(await res.text(), "AWS Bedrock");
  } finally {
    await b.close();
  }
});

Deno.test("proxy: traversal and non-/v1 paths are 403 and never reach the upstream", async () => {
  const h = await startHarness();
  try {
    for (
      const target of [
        "/v1/../admin",
        "/v1/%2e%2e/x",
        "/v1/..%2fx",
        "//v1",
        "/v1%2f..",
        "/v1/%252e%252e/admin",
        "/",
        "/admin",
        "/v2/messages",
        "/v1",
      ]
    ) {
      const raw = await rawExchange(
        h.proxy.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${h.proxy.port}\r\n${RAW_AUTH}\r\n`,
      );
      assertEquals(statusOf(raw), 403, target);
    }
    assertEquals(h.upstream.requests.length, 0);
  } finally {
    await h.close();
  }
});

Deno.test("proxy: an absolute URI to another host never gets credentials", async () => {
  const h = await startHarness();
  try {
    // Off the allowlist: refused.
    const raw = await rawExchange(
      h.proxy.port,
      "POST http://anyhost.example/v1/messages HTTP/1.1\r\nHost: anyhost.example\r\n" +
        RAW_PROXY_AUTH + "content-length: 2\r\n\r\n{}",
    );
    assertEquals(statusOf(raw), 403);
    assertEquals(h.upstream.requests.length, 0);
  } finally {
    await h.close();
  }
  // Allowed explicitly (the fake upstream's address): forwarded as plain egress, no key.
  const g = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
  try {
    const port = g.upstream.port;
    const raw = await rawExchange(
      g.proxy.port,
      `GET http://127.0.0.1:${port}/v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        RAW_PROXY_AUTH + "x-api-key: guest\r\n\r\n",
    );
    assertEquals(statusOf(raw), 200);
    const seen = g.upstream.requests.at(-1)!;
    assertEquals(seen.headers["x-api-key"], "guest");
    assertEquals(seen.headers["proxy-authorization"], undefined, "the token went upstream");
    assert(!JSON.stringify(g.upstream.requests).includes(TOKEN_A));
    assert(!JSON.stringify(g.upstream.requests).includes(API_KEY));
  } finally {
    await g.close();
  }
});

Deno.test("proxy: CONNECT off the list and to loopback is 403, logged with sandbox and host", async () => {
  const h = await startHarness({ policy: new EgressPolicy("unrestricted", []) });
  try {
    const toLoopback = await rawExchange(
      h.proxy.port,
      `CONNECT 127.0.0.1:${h.upstream.port} HTTP/1.1\r\nHost: 127.0.0.1:${h.upstream.port}\r\n` +
        `${RAW_PROXY_AUTH}\r\n`,
    );
    assertEquals(statusOf(toLoopback), 403);
    const v6 = await rawExchange(
      h.proxy.port,
      `CONNECT [::1]:22 HTTP/1.1\r\nHost: [::1]:22\r\n${RAW_PROXY_AUTH}\r\n`,
    );
    assertEquals(statusOf(v6), 403);
    const meta = await rawExchange(
      h.proxy.port,
      `CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254\r\n${RAW_PROXY_AUTH}\r\n`,
    );
    assertEquals(statusOf(meta), 403);
    const log = h.lines.join("\n");
    assertStringIncludes(
      log,
      `egress denied: sandbox ${SANDBOX_A} (127.0.0.1) CONNECT 127.0.0.1:${h.upstream.port}`,
    );
    assertStringIncludes(log, "CONNECT 169.254.169.254:80: link-local address");
  } finally {
    await h.close();
  }
  const a = await startHarness({
    policy: new EgressPolicy("allowlist", ["example.org"]),
    policyB: new EgressPolicy("allowlist", ["github.com"]),
  });
  try {
    const raw = await rawExchange(
      a.proxy.port,
      "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n" +
        `Proxy-Authorization: ${basic(TOKEN_B)}\r\n\r\n`,
    );
    assertEquals(statusOf(raw), 403);
    assertStringIncludes(raw, "evil.example:443");
    assertStringIncludes(
      a.lines.join("\n"),
      `egress denied: sandbox ${SANDBOX_B} (127.0.0.1) CONNECT evil.example:443: not on the egress allowlist (allowlist (+1 allowed))`,
    );
  } finally {
    await a.close();
  }
});

Deno.test("proxy: CONNECT to an explicitly allowed target tunnels bytes both ways", async () => {
  const h = await startHarness({
    policy: new EgressPolicy("allowlist", ["127.0.0.1"]),
  });
  try {
    const port = h.upstream.port;
    const raw = await rawExchange(
      h.proxy.port,
      `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${RAW_PROXY_AUTH}\r\n` +
        `GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
    );
    assert(raw.startsWith("HTTP/1.1 200 Connection Established\r\n\r\nHTTP/1.1 200"), raw);
    // The tunnel carries the guest's bytes unchanged: no credential added, the token not sent.
    assert(!JSON.stringify(h.upstream.requests).includes(API_KEY));
    assert(!JSON.stringify(h.upstream.requests).includes(TOKEN_A));
  } finally {
    await h.close();
  }
});

Deno.test("proxy: oversized bodies are 413 (declared, and while streaming)", async () => {
  const h = await startHarness({ limits: { maxApiBody: 64 * 1024 } });
  try {
    const declared = await rawExchange(
      h.proxy.port,
      `POST /v1/drain HTTP/1.1\r\nHost: 127.0.0.1:${h.proxy.port}\r\n${RAW_AUTH}` +
        "content-length: 10000000\r\n\r\n",
    );
    assertEquals(statusOf(declared), 413);
    // Chunked, no length: the cap trips mid-stream.
    const chunk = new Uint8Array(16 * 1024).fill(97);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(chunk);
        c.close();
      },
    });
    const res = await fetch(`${h.proxy.url}/v1/drain`, {
      method: "POST",
      headers: AUTH_A,
      body,
      ...({ duplex: "half" } as Record<string, string>),
    });
    assertEquals(res.status, 413);
    assertStringIncludes(await res.text(), "64 KiB");
    // Under the cap it streams through.
    const ok = await fetch(`${h.proxy.url}/v1/drain`, {
      method: "POST",
      headers: AUTH_A,
      body: chunk,
    });
    assertEquals((await ok.json()).bytes, chunk.length);
  } finally {
    await h.close();
  }
});

Deno.test("proxy: oversized headers are 431", async () => {
  const h = await startHarness();
  try {
    const big = "x".repeat(40 * 1024);
    const raw = await rawExchange(
      h.proxy.port,
      `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${h.proxy.port}\r\n${RAW_AUTH}x-big: ${big}\r\n\r\n`,
    );
    assertEquals(statusOf(raw), 431);
    // A later request on a kept-alive connection is checked too.
    const raw2 = await rawExchange(
      h.proxy.port,
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1:${h.proxy.port}\r\n\r\n` +
        `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${h.proxy.port}\r\n${RAW_AUTH}x-big: ${big}\r\n\r\n`,
      { timeoutMs: 1500 },
    );
    assertStringIncludes(raw2, " 431 ");
    assertEquals(h.upstream.requests.length, 0);
  } finally {
    await h.close();
  }
});

Deno.test("proxy: a client that never finishes its request head is cut off", async () => {
  const h = await startHarness({ limits: { headTimeoutMs: 200 } });
  try {
    const raw = await rawExchange(h.proxy.port, "GET /v1/models HTTP/1.1\r\nHost: x", {
      timeoutMs: 3000,
    });
    assertEquals(statusOf(raw) === 408 || raw === "", true, raw);
    assertEquals(h.proxy.activeConnections(), 0);
  } finally {
    await h.close();
  }
});

/** Why IPv6 loopback cannot be used here, or null (checked without the proxy). */
function ipv6Unavailable(): string | null {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return null;
  } catch (error) {
    return String(error);
  }
}
const noIpv6 = ipv6Unavailable();
if (noIpv6) console.error(`IPv6 loopback unavailable, the IPv6 bind test is skipped: ${noIpv6}`);

Deno.test({
  name: "proxy: an IPv6 bind works; its own authority is bracketed",
  ignore: noIpv6 !== null,
  async fn() {
    const h = await startHarness({ bind: "::1" });
    try {
      assertEquals(h.proxy.url, `http://[::1]:${h.proxy.port}`);
      const health = await fetch(`${h.proxy.url}/health`);
      assertEquals((await health.json()).proxy, "tachikoma");
      const res = await fetch(`${h.proxy.url}/v1/models`, { headers: AUTH_A });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      assertEquals(h.upstream.requests.at(-1)!.headers["x-api-key"], API_KEY);
      const raw = await rawExchange(
        h.proxy.port,
        `GET /v1/models HTTP/1.1\r\nHost: [::1]:${h.proxy.port}\r\n${RAW_AUTH}\r\n`,
        { hostname: "::1" },
      );
      assertEquals(statusOf(raw), 200);
    } finally {
      await h.close();
    }
  },
});

Deno.test("proxy: bound to 0.0.0.0 (explicitly), every local address names the proxy", async () => {
  const h = await startHarness({ bind: "0.0.0.0" });
  try {
    const health = await fetch(`http://127.0.0.1:${h.proxy.port}/health`);
    assertEquals((await health.json()).proxy, "tachikoma");
    const raw = await rawExchange(
      h.proxy.port,
      `GET /v1/models HTTP/1.1\r\nHost: localhost:${h.proxy.port}\r\n${RAW_AUTH}\r\n`,
    );
    assertEquals(statusOf(raw), 200);
  } finally {
    await h.close();
  }
});
