/**
 * The proxy authenticates its clients: every request but /health must carry a sandbox's token
 * (API: Authorization/x-api-key → else 401; proxying: Proxy-Authorization → else 407), the
 * refusal is logged without the presented value, the token never goes upstream, and the token
 * decides the identity (log name, egress policy). Revocation through the real token store
 * takes effect on the next request.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Logger } from "../../../src/lib/log.ts";
import { TokenClientDirectory } from "../../../src/proxy/clients.ts";
import { EgressPolicy } from "../../../src/proxy/egress.ts";
import { ensureToken, newToken, revokeToken } from "../../../src/proxy/tokens.ts";
import {
  API_KEY,
  AUTH_A,
  basic,
  rawExchange,
  SANDBOX_A,
  SANDBOX_B,
  startHarness,
  statusOf,
  TOKEN_A,
  TOKEN_B,
} from "./helpers.ts";

function headerOf(raw: string, name: string): string | null {
  const head = raw.slice(0, raw.indexOf("\r\n\r\n"));
  const m = new RegExp(`^${name}: (.*)$`, "im").exec(head);
  return m ? m[1].trim() : null;
}

Deno.test("auth: /health is open; everything else without a token is 401 (API) or 407 (proxy)", async () => {
  const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
  const unknown = newToken(); // well-formed, never issued: must not appear in the log
  try {
    const health = await fetch(`${h.proxy.url}/health`);
    assertEquals((await health.json()).proxy, "tachikoma");

    const none = await fetch(`${h.proxy.url}/v1/models`);
    assertEquals(none.status, 401);
    assertEquals(none.headers.get("www-authenticate"), 'Bearer realm="tachikoma"');
    const body = await none.json();
    assertEquals(body.error.type, "authentication_error");
    assert(!/unknown|missing|no token/i.test(body.error.message), "the body says why");

    const tries: Record<string, string>[] = [
      { authorization: `Bearer ${unknown}` },
      { "x-api-key": unknown },
      { authorization: "Bearer not-a-token" },
      { authorization: `Basic ${btoa(`x:${TOKEN_A}`)}` }, // a proxy credential, not the API's
      { "proxy-authorization": basic(TOKEN_A) }, // ditto
    ];
    for (const headers of tries) {
      const r = await fetch(`${h.proxy.url}/v1/models`, { headers });
      assertEquals(r.status, 401, JSON.stringify(Object.keys(headers)));
      await r.body?.cancel();
    }
    // Not even a refusal path leaks the routing: traversal without a token is 401 too.
    const traversal = await rawExchange(
      h.proxy.port,
      `GET /admin HTTP/1.1\r\nHost: 127.0.0.1:${h.proxy.port}\r\n\r\n`,
    );
    assertEquals(statusOf(traversal), 401);

    const port = h.upstream.port;
    const plain = await rawExchange(
      h.proxy.port,
      `GET http://127.0.0.1:${port}/v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
    );
    assertEquals(statusOf(plain), 407);
    assertEquals(headerOf(plain, "proxy-authenticate"), 'Basic realm="tachikoma"');
    const wrongPlain = await rawExchange(
      h.proxy.port,
      `GET http://127.0.0.1:${port}/v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Proxy-Authorization: ${basic(unknown)}\r\n\r\n`,
    );
    assertEquals(statusOf(wrongPlain), 407);
    // The API token is not a proxy credential.
    const apiStyle = await rawExchange(
      h.proxy.port,
      `GET http://127.0.0.1:${port}/v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Authorization: Bearer ${TOKEN_A}\r\n\r\n`,
    );
    assertEquals(statusOf(apiStyle), 407);

    const tunnel = await rawExchange(
      h.proxy.port,
      `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n` +
        `GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
    );
    assertEquals(statusOf(tunnel), 407);
    assertEquals(headerOf(tunnel, "proxy-authenticate"), 'Basic realm="tachikoma"');
    assert(!tunnel.includes("HTTP/1.1 200"), "the tunnel opened after a 407");
    const wrongTunnel = await rawExchange(
      h.proxy.port,
      `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        `Proxy-Authorization: ${basic(unknown)}\r\n\r\n`,
    );
    assertEquals(statusOf(wrongTunnel), 407);

    assertEquals(h.upstream.requests.length, 0, "a refused request reached the upstream");
    const log = h.lines.join("\n");
    assertStringIncludes(log, 'refused: client 127.0.0.1 GET "/v1/models" → 401 (no token)');
    assertStringIncludes(log, 'refused: client 127.0.0.1 GET "/v1/models" → 401 (unknown token)');
    assertStringIncludes(
      log,
      `refused: client 127.0.0.1 GET "http://127.0.0.1:${port}/v1/echo" → 407 (no token)`,
    );
    assertStringIncludes(
      log,
      `refused: client 127.0.0.1 CONNECT "127.0.0.1:${port}" → 407 (no token)`,
    );
    assertStringIncludes(
      log,
      `refused: client 127.0.0.1 CONNECT "127.0.0.1:${port}" → 407 (unknown token)`,
    );
    assert(!log.includes(unknown), "a presented token is in the log");
    assert(!log.includes("not-a-token"), "a presented value is in the log");
    assert(!log.includes(TOKEN_A), "a presented token is in the log");
    // One line per refusal.
    assertEquals(h.lines.filter((l) => l.includes("refused:")).length, 12);
  } finally {
    await h.close();
  }
});

Deno.test("auth: tokens travel as Bearer or x-api-key (API), Basic or Bearer (proxy); never upstream", async () => {
  const h = await startHarness({ policy: new EgressPolicy("allowlist", ["127.0.0.1"]) });
  try {
    for (
      const headers of [AUTH_A, { "x-api-key": TOKEN_A }, { authorization: `bearer ${TOKEN_A}` }]
    ) {
      const r = await fetch(`${h.proxy.url}/v1/echo`, { headers });
      assertEquals(r.status, 200);
      const seen = await r.json();
      assertEquals(seen["x-api-key"], API_KEY);
      assertEquals(seen.authorization, undefined);
    }
    const port = h.upstream.port;
    for (
      const value of [
        basic(TOKEN_A),
        basic(TOKEN_A, ""), // ":token"
        `Basic ${btoa(`${TOKEN_A}:`)}`, // the token as the user name
        `Bearer ${TOKEN_A}`,
      ]
    ) {
      const raw = await rawExchange(
        h.proxy.port,
        `GET http://127.0.0.1:${port}/v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Proxy-Authorization: ${value}\r\nConnection: close\r\n\r\n`,
      );
      assertEquals(statusOf(raw), 200, value);
      const tunnel = await rawExchange(
        h.proxy.port,
        `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Proxy-Authorization: ${value}\r\n\r\n` +
          `GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      );
      assert(tunnel.startsWith("HTTP/1.1 200 Connection Established"), tunnel);
    }
    const everything = JSON.stringify(h.upstream.requests);
    assert(!everything.includes(TOKEN_A), "the token reached the upstream");
    assert(!everything.includes("proxy-authorization"), "Proxy-Authorization was forwarded");
  } finally {
    await h.close();
  }
});

Deno.test("auth: sandbox A's token is A's identity and policy, never B's", async () => {
  const h = await startHarness({
    policy: new EgressPolicy("allowlist", ["127.0.0.1"]),
    policyB: new EgressPolicy("allowlist", ["github.com"]),
  });
  try {
    const port = h.upstream.port;
    const connect = (token: string) =>
      rawExchange(
        h.proxy.port,
        `CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
          `Proxy-Authorization: ${basic(token)}\r\n\r\n` +
          `GET /v1/echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`,
      );
    assert((await connect(TOKEN_A)).startsWith("HTTP/1.1 200 Connection Established"));
    assertEquals(statusOf(await connect(TOKEN_B)), 403);
    const api = await fetch(`${h.proxy.url}/v1/models`, {
      headers: { authorization: `Bearer ${TOKEN_B}` },
    });
    assertEquals(api.status, 200);
    await api.body?.cancel();
    const log = h.lines.join("\n");
    assertStringIncludes(log, `sandbox ${SANDBOX_A} (127.0.0.1) CONNECT 127.0.0.1:${port}`);
    assertStringIncludes(
      log,
      `egress denied: sandbox ${SANDBOX_B} (127.0.0.1) CONNECT 127.0.0.1:${port}`,
    );
    assertStringIncludes(log, `sandbox ${SANDBOX_B} (127.0.0.1) GET /v1/models → 200`);
    assert(
      !h.lines.some((l) => l.includes(SANDBOX_A) && l.includes("egress denied")),
      "B's refusal was logged as A's",
    );
  } finally {
    await h.close();
  }
});

Deno.test("auth: with the real token store, a revoked token is refused at the next request", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tk-proxy-auth-" });
  const lines: string[] = [];
  const clients = new TokenClientDirectory({
    stateDir: dir,
    logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
    policySource: {
      load: () => Promise.resolve(new EgressPolicy("allowlist", [])),
      files: () => Promise.resolve([]),
    },
  });
  const h = await startHarness({ clients });
  try {
    const vms = [
      { name: "tk-a", ip: "127.0.0.1", repo_root: "/r/a", worktree_path: "/w/a" },
      { name: "tk-b", ip: "127.0.0.1", repo_root: "/r/b", worktree_path: "/w/b" },
    ];
    await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ version: 2, vms }));
    const a = await ensureToken(dir, "tk-a");
    const b = await ensureToken(dir, "tk-b");
    const call = async (token: string) => {
      const r = await fetch(`${h.proxy.url}/v1/models`, {
        headers: { authorization: `Bearer ${token}` },
      });
      await r.body?.cancel();
      return r.status;
    };
    assertEquals([await call(a), await call(b)], [200, 200]);
    assert(await revokeToken(dir, "tk-a"));
    assertEquals(await call(a), 401, "a revoked token still works");
    assertEquals(await call(b), 200);
    // A sandbox made again under the same name gets a new token; the old one stays dead.
    const a2 = await ensureToken(dir, "tk-a");
    assert(a2 !== a);
    assertEquals([await call(a2), await call(a)], [200, 401]);
    // A token whose sandbox is no longer in the state is refused.
    await Deno.writeTextFile(`${dir}/state.json`, JSON.stringify({ version: 2, vms: [vms[0]] }));
    assertEquals(await call(b), 401);
    const log = [...lines, ...h.lines].join("\n");
    assertStringIncludes(log, "sandbox tk-a (127.0.0.1) GET /v1/models → 200");
    assertStringIncludes(log, "sandbox tk-b (127.0.0.1) GET /v1/models → 200");
    assertStringIncludes(log, 'refused: client 127.0.0.1 GET "/v1/models" → 401 (unknown token)');
    assertStringIncludes(log, "a token of sandbox tk-b, which tachikoma's state no longer lists");
    // A base build is never in the state: its token works while it exists, and only its.
    const build = await ensureToken(dir, "tkb-dev-0123456789");
    const notBuild = await ensureToken(dir, "tkb-dev-0123456789x");
    assertEquals([await call(build), await call(notBuild)], [200, 401]);
    assert(await revokeToken(dir, "tkb-dev-0123456789"));
    assertEquals(await call(build), 401, "a revoked build token still works");
    for (const t of [a, a2, b, build]) assert(!log.includes(t), "a token is in the log");
  } finally {
    await h.close();
    await Deno.remove(dir, { recursive: true });
  }
});
