/**
 * The HTTP daemon's parts on their own: the request guard (Host, Origin, token; order and
 * answers), the listen plan (loopback, `--allow-remote`, TLS, port 0), the bounded event log
 * (bounds, per-session isolation, replay, expiry), durations, and the activity counter.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ConfigError, UsageError } from "../../../src/lib/errors.ts";
import { formatDuration, parseDuration } from "../../../src/lib/duration.ts";
import { newToken } from "../../../src/lib/private_files.ts";
import { SandboxActivity } from "../../../src/mcp/activity.ts";
import { EventLog, type JsonRpcMessage } from "../../../src/mcp/event_store.ts";
import {
  bearerToken,
  checkRequest,
  type GuardPolicy,
  loopbackHosts,
  refusal,
} from "../../../src/mcp/http_guard.ts";
import { isLoopback, planListen } from "../../../src/mcp/listen.ts";

const TOKEN = newToken();
const LOCAL: GuardPolicy = {
  token: TOKEN,
  scheme: "http",
  port: 8765,
  hosts: loopbackHosts("127.0.0.1"),
};

function headers(h: Record<string, string>): Headers {
  return new Headers({ authorization: `Bearer ${TOKEN}`, host: "127.0.0.1:8765", ...h });
}

Deno.test("guard: Host, then Origin, then the token; refusals carry no detail", async () => {
  assertEquals(checkRequest(headers({}), LOCAL), { ok: true });
  for (const host of ["localhost:8765", "[::1]:8765", "127.0.0.1", "LOCALHOST:8765"]) {
    assertEquals(checkRequest(headers({ host }), LOCAL).ok, true, host);
  }
  for (const host of ["evil.example:8765", "127.0.0.2:8765", "10.0.0.1", "a b", ""]) {
    const v = checkRequest(headers({ host }), LOCAL);
    assertEquals(v.ok ? 0 : v.status, 403, host);
  }
  // HTTP/2 has no Host header: the request's authority counts.
  const h2 = headers({});
  h2.delete("host");
  assertEquals(checkRequest(h2, LOCAL, "127.0.0.1:8765").ok, true);
  assertEquals(checkRequest(h2, LOCAL, "evil.example:8765").ok, false);
  assertEquals(checkRequest(h2, LOCAL).ok, false, "no host at all");

  for (const origin of ["http://127.0.0.1:8765", "http://localhost:8765", "http://[::1]:8765"]) {
    assertEquals(checkRequest(headers({ origin }), LOCAL).ok, true, origin);
  }
  for (
    const origin of [
      "http://evil.example",
      "http://127.0.0.1:8766",
      "https://127.0.0.1:8765",
      "http://127.0.0.1",
      "null",
      "file://",
      "chrome-extension://abc",
    ]
  ) {
    const v = checkRequest(headers({ origin }), LOCAL);
    assertEquals(v.ok ? 0 : v.status, 403, origin);
  }
  // A foreign page gets 403 whatever it sends as a token.
  const noToken = new Headers({ host: "127.0.0.1:8765", origin: "http://evil.example" });
  assertEquals((checkRequest(noToken, LOCAL) as { status: number }).status, 403);

  const cases: [Record<string, string>, number | true][] = [
    [{ authorization: "" }, 401],
    [{ authorization: `Bearer ${TOKEN}x` }, 401],
    [{ authorization: `Bearer ${TOKEN.slice(1)}` }, 401],
    [{ authorization: `bearer ${TOKEN}` }, true],
    [{ authorization: `Token ${TOKEN}` }, 401],
    [{ authorization: `Bearer ${TOKEN} extra` }, 401],
    [{ authorization: `Bearer ${newToken()}` }, 401],
  ];
  for (const [h, expected] of cases) {
    const v = checkRequest(headers(h), LOCAL);
    assertEquals(v.ok ? true : v.status, expected, JSON.stringify(h));
  }
  const missing = new Headers({ host: "127.0.0.1:8765" });
  assertEquals((checkRequest(missing, LOCAL) as { reason: string }).reason, "no bearer token");
  assertEquals(bearerToken("  Bearer   abc  "), "abc");
  assertEquals(bearerToken(null), null);

  const r401 = refusal(401);
  assertEquals([r401.status, r401.headers.get("www-authenticate"), await r401.text()], [
    401,
    "Bearer",
    "",
  ]);
  const r403 = refusal(403);
  assertEquals([r403.status, await r403.text()], [403, ""]);
});

Deno.test("guard: a remote daemon (TLS) takes any Host; Origin must be its own", () => {
  const remote: GuardPolicy = { token: TOKEN, scheme: "https", port: 443, hosts: null };
  const h = (extra: Record<string, string>) =>
    new Headers({ authorization: `Bearer ${TOKEN}`, host: "box.example", ...extra });
  assertEquals(checkRequest(h({}), remote).ok, true);
  assertEquals(checkRequest(h({ origin: "https://box.example" }), remote).ok, true);
  assertEquals(checkRequest(h({ origin: "https://evil.example" }), remote).ok, false);
  assertEquals(checkRequest(h({ origin: "http://box.example" }), remote).ok, false);
});

Deno.test("listen: loopback by default; anything else needs --allow-remote and TLS", async () => {
  const plan = await planListen({}, "127.0.0.1:8765");
  assertEquals([plan.host, plan.port, plan.loopback, plan.tls, plan.url], [
    "127.0.0.1",
    8765,
    true,
    null,
    "http://127.0.0.1:8765/mcp",
  ]);
  assertEquals((await planListen({ listen: "[::1]:9000" }, "x")).url, "http://[::1]:9000/mcp");
  assertEquals((await planListen({ listen: "localhost:0" }, "x")).port, 0);
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) assert(isLoopback(host));
  for (const host of ["0.0.0.0", "::", "10.213.0.1", "192.168.1.2", "box.example"]) {
    assert(!isLoopback(host), host);
  }
  await assertRejects(
    () => planListen({ listen: "0.0.0.0:8765" }, "x"),
    UsageError,
    "refusing to listen on 0.0.0.0:8765",
  );
  await assertRejects(
    () => planListen({ listen: "[::]:8765", allowRemote: true }, "x"),
    UsageError,
    "--allow-remote needs --tls-cert and --tls-key",
  );
  await assertRejects(() => planListen({}, "0.0.0.0:1"), UsageError, "not a loopback address");
  await assertRejects(() => planListen({}, "nope"), ConfigError, "mcp.listen: expected host:port");
  for (const bad of ["127.0.0.1", "127.0.0.1:99999", ":8765", "a b:1", "::1:8765", "h:0x1"]) {
    await assertRejects(() => planListen({ listen: bad }, "x"), UsageError, "--listen", bad);
  }
  await assertRejects(
    () => planListen({ listen: "127.0.0.1:1", tlsKey: "/k" }, "x"),
    UsageError,
    "go together",
  );
});

Deno.test("event log: bounded in events and bytes, per session, replays what followed", async () => {
  const log = new EventLog({ maxEvents: 5, maxBytes: 10_000 });
  const a = log.forSession("a");
  const b = log.forSession("b");
  const msg = (n: number): JsonRpcMessage => ({ jsonrpc: "2.0", method: "m", params: { n } });
  const idsA: string[] = [];
  for (let i = 0; i < 3; i++) idsA.push(await a.storeEvent("s1", msg(i)));
  const other = await a.storeEvent("s2", msg(99));
  const idB = await b.storeEvent("_GET_stream", msg(100));
  assertEquals(log.size, 5);

  const replayed: [string, JsonRpcMessage][] = [];
  const stream = await a.replayEventsAfter(idsA[0], {
    send: (id, m) => Promise.resolve(void replayed.push([id, m])),
  });
  assertEquals(stream, "s1");
  assertEquals(replayed.map(([, m]) => (m.params as { n: number }).n), [1, 2], "its stream only");
  assertEquals(replayed.map(([id]) => id), idsA.slice(1));
  assertEquals(await a.getStreamIdForEventId(other), "s2");
  assertEquals(await b.getStreamIdForEventId(idsA[0]), undefined, "not another session's");
  await assertRejects(() => b.replayEventsAfter(idsA[0], { send: () => Promise.resolve() }));
  assertEquals(await a.getStreamIdForEventId("garbage"), undefined);
  assertEquals(await a.getStreamIdForEventId(idsA[0].replace(/^\w+/, "00000000")), undefined);

  // Bounds: the oldest go first.
  await b.storeEvent("_GET_stream", msg(101));
  assertEquals(log.size, 5);
  assertEquals(await a.getStreamIdForEventId(idsA[0]), undefined, "expired");
  assertEquals(await b.getStreamIdForEventId(idB), "_GET_stream");
  const big = new EventLog({ maxEvents: 100, maxBytes: 1000 });
  const s = big.forSession("x");
  for (let i = 0; i < 50; i++) await s.storeEvent("s", { data: "y".repeat(100) });
  assert(big.bytes <= 1000 && big.size <= 9, `${big.size} events, ${big.bytes} bytes`);

  log.dropSession("b");
  assertEquals(await b.getStreamIdForEventId(idB), undefined);
  assertEquals(log.size, 3);
  // Priming events (empty) mark a position and are never resent.
  const p = await a.storeEvent("s3", {});
  await a.storeEvent("s3", msg(7));
  const resent: JsonRpcMessage[] = [];
  await a.replayEventsAfter(p, { send: (_id, m) => Promise.resolve(void resent.push(m)) });
  assertEquals(resent, [msg(7)]);
});

Deno.test("event log: memory stays bounded over many events and sessions", async () => {
  const log = new EventLog({ maxEvents: 200, maxBytes: 1 << 20 });
  for (let i = 0; i < 20_000; i++) {
    await log.forSession(`s${i % 10}`).storeEvent("st", { jsonrpc: "2.0", id: i, result: {} });
    if (i % 1000 === 999) log.dropSession(`s${(i / 1000) % 10}`);
  }
  assert(log.size <= 200);
});

Deno.test("durations: Go syntax subset, largest unit first; formatting", () => {
  const ok: [string, number][] = [
    ["0", 0],
    ["1h", 3_600_000],
    ["24h", 86_400_000],
    ["1m", 60_000],
    ["90s", 90_000],
    ["1h30m", 5_400_000],
    ["1.5h", 5_400_000],
    ["250ms", 250],
    ["2h0m5s", 7_205_000],
  ];
  for (const [text, ms] of ok) assertEquals(parseDuration(text), ms, text);
  for (const bad of ["", "1", "1d", "-1h", "1 h", "1m1h", "1h1h", "h", "1.h", "1e3s", "0s0"]) {
    assertEquals(parseDuration(bad), null, bad);
  }
  assertEquals(
    [0, 250, 45_000, 3_600_000, 5_400_000, 3_725_000].map(formatDuration),
    ["0s", "250ms", "45s", "1h", "1h30m", "1h2m5s"],
  );
});

Deno.test("activity: counted per sandbox; a release is idempotent", () => {
  const a = new SandboxActivity();
  const one = a.begin("x");
  const two = a.begin("x");
  one();
  one();
  assert(a.busy("x"));
  two();
  assert(!a.busy("x"));
  assertEquals(a.names, []);
});
