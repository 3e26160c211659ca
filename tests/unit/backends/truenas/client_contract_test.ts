/**
 * The TrueNAS client against the fake TrueNAS, one test per row of truenas-api.md §1–§4.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { API_KEY, rig } from "./harness.ts";
import {
  TruenasCallError,
  TruenasTransportError,
} from "../../../../src/backends/truenas/rpc_errors.ts";
import { UnsupportedError } from "../../../../src/lib/errors.ts";
import { freePort } from "../../../testing/free_port.ts";

const CREATE = {
  name: "px-a",
  instance_type: "CONTAINER",
  image: "debian/12",
  cpu: "1",
  memory: 1073741824,
  autostart: true,
  environment: null,
};

Deno.test("§1 URL: the client upgrades at /api/current", async () => {
  await using r = await rig();
  await r.client.connect();
  assertEquals(r.server.logins, 1);
});

Deno.test("§1 request ids are strings: auth, job-sub, req-0 (version), req-n", async () => {
  await using r = await rig();
  await r.client.call("virt.global.config");
  await r.client.call("virt.instance.query", [[["name", "^", "px-"]]]);
  const ids = r.server.frames.filter((f) => f.dir === "in").map((
    f,
  ) => [f.frame.id, f.frame.method]);
  assertEquals(ids, [
    ["auth", "auth.login_ex"],
    ["job-sub", "core.subscribe"],
    ["req-0", "system.version"],
    ["req-1", "virt.global.config"],
    ["req-2", "virt.instance.query"],
  ]);
});

Deno.test("§1 HTTP headers: none beyond the WebSocket upgrade (no cookie, no bearer token)", async () => {
  await using r = await rig();
  await r.client.call("virt.global.config");
  assertEquals(r.server.upgrades.length, 1);
  assertEquals(Object.keys(r.server.upgrades[0]).sort(), [
    "connection",
    "host",
    "sec-websocket-key",
    "sec-websocket-version",
    "upgrade",
  ]);
});

Deno.test("§1 params: omitted without arguments, a positional array otherwise", async () => {
  await using r = await rig();
  await r.client.call("virt.global.config");
  await r.client.call("virt.instance.get_instance", ["px-x"]).catch(() => {});
  assert(!("params" in r.server.calls("system.version")[0].frame));
  assert(!("params" in r.server.calls("virt.global.config")[0].frame));
  assertEquals(r.server.calls("virt.instance.get_instance")[0].frame.params, ["px-x"]);
});

Deno.test("§1 response routing: a reply with a numeric id is not taken for the answer", async () => {
  await using r = await rig();
  r.server.faults.numericIdFirst = "virt.global.config";
  const config = await r.client.call<{ pool: string }>("virt.global.config");
  assertEquals(config.pool, "tank");
});

Deno.test("§1 notifications: frames without id other than core.get_jobs updates are ignored", async () => {
  await using r = await rig();
  r.server.faults.noiseBefore = "virt.global.config";
  assertEquals((await r.client.call<{ pool: string }>("virt.global.config")).pool, "tank");
  assertEquals(r.server.logins, 1);
});

Deno.test("§1 a dropped socket is re-dialled on the next call", async () => {
  await using r = await rig();
  await r.client.connect();
  r.server.dropAll();
  assertEquals(await r.client.call("virt.instance.query", [[]]), []);
  assertEquals(r.server.logins, 2);
});

Deno.test("§1 close: a call in flight fails at once, without retries", async () => {
  await using r = await rig();
  await r.client.connect();
  r.server.faults.dropOnCall = undefined;
  const pending = r.client.callJob("virt.instance.create", [{ ...CREATE, name: "px-slow" }]);
  await r.client.close();
  const e = await assertRejects(() => pending);
  assertMatch((e as Error).message, /connection closed by the client/);
  assertEquals(r.clock.sleeps, []);
});

Deno.test("§1 concurrency: many calls in flight on one socket", async () => {
  await using r = await rig();
  const results = await Promise.all(
    Array.from({ length: 12 }, () => r.client.call<{ pool: string }>("virt.global.config")),
  );
  assertEquals(results.map((x) => x.pool), Array(12).fill("tank"));
  assertEquals(r.server.logins, 1);
});

Deno.test("§1 retry: -32000 is retried with 2 s·2^n backoff (jitter ±25 %)", async () => {
  await using r = await rig();
  await r.client.connect();
  r.server.faults.busy = { method: "virt.global.config", times: 2 };
  await r.client.call("virt.global.config");
  assertEquals(r.clock.sleeps, [2000, 4000]);
  assertEquals(r.server.calls("virt.global.config").length, 3);
});

Deno.test("§1 retry: at most 3 retries (4 attempts), then the error names host and method", async () => {
  await using r = await rig();
  await r.client.connect();
  r.server.faults.busy = { method: "virt.global.config", times: 10 };
  const e = await assertRejects(() => r.client.call("virt.global.config"), TruenasCallError);
  assertEquals(r.server.calls("virt.global.config").length, 4);
  assertMatch(e.message, /^TrueNAS 127\.0\.0\.1:\d+: virt\.global\.config: Too many concurrent/);
});

Deno.test("§1 retry: -32001 with errno 11 (EAGAIN) is retried", async () => {
  await using r = await rig();
  await r.client.connect();
  r.server.faults.eagain = { method: "virt.global.config", times: 1 };
  await r.client.call("virt.global.config");
  assertEquals(r.server.calls("virt.global.config").length, 2);
  assertEquals(r.clock.sleeps, [2000]);
});

Deno.test("§1 retry: an ordinary -32001 error fails at once", async () => {
  await using r = await rig();
  await assertRejects(() => r.client.call("virt.instance.get_instance", ["px-nope"]));
  assertEquals(r.server.calls("virt.instance.get_instance").length, 1);
  assertEquals(r.clock.sleeps, []);
});

Deno.test("§1 retry: a refused connection is retried, then one line naming the host", async () => {
  const port = await freePort();
  await using r = await rig({}, { port });
  const e = await assertRejects(() => r.client.connect(), TruenasTransportError);
  assertMatch(e.message, new RegExp(`^TrueNAS 127\\.0\\.0\\.1:${port}: connecting: `));
  assert(!e.message.includes("\n"));
  await assertRejects(() => r.client.call("virt.global.config"), TruenasTransportError);
  assertEquals(r.clock.sleeps, [2000, 4000, 8000]);
});

Deno.test("§1 retry: ENOTAUTHENTICATED forces a re-dial and a new login", async () => {
  await using r = await rig();
  await r.client.connect();
  r.server.faults.deauth = "virt.global.config";
  await r.client.call("virt.global.config");
  assertEquals(r.server.logins, 2);
  assertEquals(r.server.calls("virt.global.config").length, 2);
});

Deno.test("§2 handshake: login, subscription, version in this order, synchronously", async () => {
  await using r = await rig();
  await r.client.connect();
  const inbound = r.server.frames.filter((f) => f.dir === "in").map((f) => f.frame);
  assertEquals(inbound[0].params, [{
    mechanism: "API_KEY_PLAIN",
    username: "root",
    api_key: API_KEY,
  }]);
  assertEquals(inbound[1].params, ["core.get_jobs"]);
  assertEquals(inbound[2].method, "system.version");
});

Deno.test("§2 handshake: AUTH_ERR aborts with one line naming the host, without the key", async () => {
  await using r = await rig({}, { apiKey: "1-wrongwrongwrongwrong" });
  const e = await assertRejects(() => r.client.connect());
  assertMatch(
    (e as Error).message,
    /^TrueNAS 127\.0\.0\.1:\d+: auth\.login_ex: the server refused the API key of user root \(AUTH_ERR\)$/,
  );
  assert(!(e as Error).message.includes("wrongwrong"));
  assertEquals(r.server.calls("core.subscribe").length, 0);
});

Deno.test("§2 handshake: a frame before the subscription reply is a protocol error", async () => {
  await using r = await rig();
  r.server.faults.pushBeforeSubscribeReply = true;
  const e = await assertRejects(() => r.client.connect());
  assertMatch((e as Error).message, /core\.subscribe: expected the reply with id "job-sub"/);
});

Deno.test("§2 version: 25.04 uses zfs.snapshot.*; 25.10 switches to pool.snapshot.*", async () => {
  {
    await using r = await rig();
    await r.client.connect();
    assertEquals(r.client.snapshotMethod("query"), "zfs.snapshot.query");
  }
  await using r = await rig({ version: "TrueNAS-25.10.1" });
  await r.client.connect();
  assertEquals(r.client.version?.minor, 10);
  assertEquals(r.client.snapshotMethod("rollback"), "pool.snapshot.rollback");
});

Deno.test("§2 version: older than 25.0 is refused in one line naming the host", async () => {
  await using r = await rig({ version: "TrueNAS-SCALE-24.10.2.1" });
  const e = await assertRejects(() => r.client.connect(), UnsupportedError);
  assertMatch(
    e.message,
    /^TrueNAS 127\.0\.0\.1:\d+ runs TrueNAS-SCALE-24\.10\.2\.1; tachikoma needs/,
  );
});

Deno.test("§2 version: a string without major.minor.patch is an error", async () => {
  await using r = await rig({ version: "TrueNAS-25.04" });
  const e = await assertRejects(() => r.client.connect());
  assertMatch((e as Error).message, /system\.version: unrecognised version "TrueNAS-25\.04"/);
});

Deno.test("§3 error shape: data.reason is the message; ENOENT is not-found", async () => {
  await using r = await rig();
  const e = await assertRejects(
    () => r.client.call("virt.instance.get_instance", ["px-gone"]),
    TruenasCallError,
  );
  assertEquals(e.rpcCode, -32001);
  assertEquals(e.errno, 2);
  assertEquals(e.reason, "[ENOENT] px-gone does not exist");
  const { isNotFound } = await import("../../../../src/backends/truenas/rpc_errors.ts");
  assert(isNotFound(e));
});

Deno.test("§4 jobs: an integer result is awaited through core.get_jobs events", async () => {
  await using r = await rig();
  const row = await r.client.callJob<{ name: string; status: string }>("virt.instance.create", [
    CREATE,
  ]);
  assertEquals([row.name, row.status], ["px-a", "RUNNING"]);
});

Deno.test("§4 jobs: a non-integer result is returned directly", async () => {
  await using r = await rig();
  const config = await r.client.callJob<{ pool: string }>("virt.global.config");
  assertEquals(config.pool, "tank");
});

Deno.test("§4 jobs: an event that comes before the reply is still seen", async () => {
  await using r = await rig();
  r.server.faults.eventBeforeReply = true;
  await r.client.callJob("virt.instance.create", [CREATE]);
  const out = r.server.frames.filter((f) => f.dir === "out" && f.conn === 1);
  const reply = out.findIndex((f) => f.frame.id === "req-1");
  const event = out.findIndex((f) => f.frame.method === "collection_update");
  assert(event < reply);
});

Deno.test("§4 jobs: FAILED → the job's error string, trimmed, with a suggestion", async () => {
  await using r = await rig();
  r.server.faults.failJob = {
    method: "virt.instance.create",
    error:
      "Process exited with status 1: [EINVAL] name: already exists\nTraceback (most recent call last):\n  boom",
  };
  const e = await assertRejects(() => r.client.callJob("virt.instance.create", [CREATE]));
  assertMatch(
    (e as Error).message,
    /^TrueNAS 127\.0\.0\.1:\d+: virt\.instance\.create \(job \d+\): \[EINVAL\] name: already exists \(the server rejected a value/,
  );
  assert(!(e as Error).message.includes("Traceback"));
});

Deno.test("§4 jobs: socket dropped mid-job → re-login, poll core.get_jobs, result", async () => {
  await using r = await rig();
  r.server.faults.dropAfterJobReply = "virt.instance.create";
  const row = await r.client.callJob<{ name: string }>("virt.instance.create", [CREATE]);
  assertEquals(row.name, "px-a");
  assertEquals(r.server.logins, 2);
  assertEquals(r.server.calls("core.get_jobs")[0].frame.params, [[["id", "=", 1]]]);
});

Deno.test("§4 jobs: a job the server no longer knows after a drop is an error", async () => {
  await using r = await rig();
  r.server.faults.dropAfterJobReply = "virt.instance.create";
  r.server.faults.forgetJobs = true;
  const e = await assertRejects(() => r.client.callJob("virt.instance.create", [CREATE]));
  assertMatch((e as Error).message, /job 1 no longer exists/);
});

Deno.test("§1 framing: large messages both ways (16- and 64-bit lengths, masked client frames)", async () => {
  await using r = await rig();
  await r.client.callJob("virt.instance.create", [CREATE]);
  const data = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
  const { toBase64 } = await import("../../../../src/lib/shell.ts");
  await r.client.call("filesystem.file_receive", [
    "/var/lib/incus/storage-pools/tank/containers/px-a/rootfs/big.bin",
    toBase64(data),
    { mode: 420, uid: -1, gid: -1 },
  ]);
  assertEquals(r.world.instances.get("px-a")!.files.get("/big.bin")!.data, data);
  for (let i = 0; i < 600; i++) {
    await r.world.create({ name: `px-n${i}`, image: "debian/12", cpu: "1", memory: 1 });
  }
  const rows = await r.client.call<unknown[]>("virt.instance.query", [[["name", "^", "px-"]]]);
  assertEquals(rows.length, 601);
  assert(JSON.stringify(rows).length > 65_535);
});

Deno.test("§2 the API key never appears in an error, even when the server echoes it", async () => {
  const { registerSecret } = await import("../../../../src/lib/redact.ts");
  registerSecret(API_KEY);
  await using r = await rig();
  const e = await assertRejects(() => r.client.call(`echo.${API_KEY}`));
  assert(!(e as Error).message.includes(API_KEY), (e as Error).message);
  assertMatch((e as Error).message, /\[REDACTED\]/);
});
