import { assert, assertEquals, assertRejects } from "@std/assert";
import { EchoSession, MemoryBackend, openMemoryWorld } from "../../../src/backends/memory/mod.ts";
import { FakeClock } from "../../testing/fake_clock.ts";
import {
  ConflictError,
  NotFoundError,
  TimeoutError,
  UnreachableError,
  UnsupportedError,
} from "../../../src/lib/errors.ts";

const shares = [{
  name: "code",
  hostPath: "/tmp",
  guestPath: "/mnt/tachikoma/code",
  readOnly: false,
}];
const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("memory: create → start → address → stop → delete, with typed errors", async () => {
  const clock = new FakeClock(1_000, { autoAdvance: true });
  const b = new MemoryBackend({ clock, addressDelayMs: 500 });
  await b.create("s1", { image: "ubuntu", cpus: 2 });
  await assertRejects(() => b.create("s1", { image: "ubuntu" }), ConflictError);
  assertEquals((await b.get("s1")).state, "stopped");
  await assertRejects(() => b.get("nope"), NotFoundError);
  await b.start("s1", { shares });
  const before = await b.get("s1");
  assertEquals(before.state, "running");
  assertEquals(before.addresses, [], "no address before the delay");
  const addr = await b.waitForAddress("s1", { deadline: clock.now() + 10_000, clock });
  assertEquals(addr, "127.0.0.1");
  assert(clock.now() >= 1_500, "waited on the clock for the address");
  assertEquals(await b.sshEndpoint("s1"), { host: "127.0.0.1", port: 22 });
  await b.start("s1", { shares }); // no-op when running
  assertEquals((await b.peek("s1"))?.starts, 1);
  await b.stop("s1");
  await b.stop("s1"); // no-op when stopped
  assertEquals((await b.get("s1")).addresses, []);
  await b.delete("s1");
  await b.delete("s1"); // idempotent
  assertEquals(await b.list(), []);
  assertEquals((await b.calls("create")).length, 2, "the failed create is recorded too");
});

Deno.test("memory: never gets an address → waitForAddress times out at the deadline", async () => {
  const clock = new FakeClock(0, { autoAdvance: true });
  const b = new MemoryBackend({ clock, neverAddress: true });
  await b.create("s", { image: "x" });
  await b.start("s", { shares: [] });
  await assertRejects(
    () => b.waitForAddress("s", { deadline: 5_000, clock }),
    TimeoutError,
  );
  assert(clock.now() >= 5_000 && clock.now() < 6_100, `stopped at ${clock.now()}`);
  assert(Math.max(...clock.sleeps) <= 1_000, "polls at most 1 s apart");
  await b.stop("s");
  await assertRejects(
    () => b.waitForAddress("s", { deadline: clock.now() + 5_000, clock }),
    ConflictError,
    "stopped",
  );
});

Deno.test("memory: failure injection per method, per name, limited times", async () => {
  const b = new MemoryBackend();
  await b.create("a", { image: "x" });
  await b.create("b", { image: "x" });
  b.fail("start", { kind: "unreachable", name: "a", times: 2 });
  await assertRejects(() => b.start("a", { shares: [] }), UnreachableError);
  await b.start("b", { shares: [] }); // other name unaffected
  await assertRejects(() => b.start("a", { shares: [] }), UnreachableError);
  await b.start("a", { shares: [] }); // third call succeeds
  b.fail("list", { kind: "timeout", message: "engine slow" });
  await assertRejects(() => b.list(), TimeoutError, "engine slow");
  await assertRejects(() => b.list(), TimeoutError);
  b.clearFailures();
  assertEquals((await b.list()).length, 2);
});

Deno.test("memory: exec handler, delays through the clock, gate hook", async () => {
  const clock = new FakeClock(0);
  const order: string[] = [];
  const b = new MemoryBackend({
    clock,
    delays: { create: 2_000 },
    exec: (_name, req) => ({
      code: req.argv.length,
      stdout: new TextEncoder().encode(req.argv.join("|")),
      stderr: new Uint8Array(),
    }),
    onCall: (method) => void order.push(method),
  });
  const creating = b.create("s", { image: "x" });
  await clock.sleeping();
  assertEquals(clock.pending, 1, "create is waiting on the clock");
  clock.advance(2_000);
  await creating;
  await assertRejects(() => b.exec("s", { argv: ["true"] }), ConflictError, "stopped");
  await b.start("s", { shares: [] });
  const r = await b.exec("s", { argv: ["echo", "a b", "$(x)"] });
  assertEquals(r.code, 3);
  assertEquals(text(r.stdout), "echo|a b|$(x)");
  assertEquals(b.execs.at(-1)?.request.argv, ["echo", "a b", "$(x)"]);
  assertEquals(order, ["create", "exec", "start", "exec"]);
});

Deno.test("memory: capabilities gate suspend, checkpoints, clone, egress", async () => {
  const limited = new MemoryBackend({
    capabilities: { suspend: false, checkpoints: false, clone: false, egress: false },
  });
  await limited.create("s", { image: "x" });
  await limited.start("s", { shares: [] });
  await assertRejects(() => limited.suspend("s"), UnsupportedError);
  await assertRejects(() => limited.createCheckpoint("s", "c"), UnsupportedError);
  await assertRejects(() => limited.clone("t", { sandbox: "s" }), UnsupportedError);
  await assertRejects(() => limited.getEgress("s"), UnsupportedError);

  const full = new MemoryBackend();
  await full.create("s", { image: "img" });
  await full.pushFile("s", { path: "/etc/x", data: new TextEncoder().encode("v1"), mode: 0o600 });
  const cp = await full.createCheckpoint("s", "c1");
  assertEquals(cp.name, "c1");
  await assertRejects(() => full.createCheckpoint("s", "c1"), ConflictError);
  await full.pushFile("s", { path: "/etc/x", data: new TextEncoder().encode("v2") });
  await full.clone("t", { sandbox: "s", checkpoint: "c1" });
  assertEquals(text(await full.pullFile("t", "/etc/x")), "v1");
  await full.restoreCheckpoint("s", "c1");
  assertEquals(text(await full.pullFile("s", "/etc/x")), "v1");
  assertEquals((await full.listCheckpoints("s")).map((c) => c.name), ["c1"]);
  await full.deleteCheckpoint("s", "c1");
  await assertRejects(() => full.deleteCheckpoint("s", "c1"), NotFoundError);
  await assertRejects(() => full.pullFile("s", "/nope"), NotFoundError);
  await full.start("s", { shares: [] });
  await full.suspend("s");
  assertEquals((await full.get("s")).state, "suspended");
  await full.setEgress("s", { mode: "allowlist", allow: ["example.com"] });
  assertEquals(await full.getEgress("s"), { mode: "allowlist", allow: ["example.com"] });
});

Deno.test("memory: default shell echoes, records resizes, exits with `exit N`", async () => {
  const b = new MemoryBackend();
  await b.create("s", { image: "x" });
  await b.start("s", { shares: [] });
  const session = await b.shell("s", { size: { cols: 80, rows: 24 } }) as EchoSession;
  await session.resize({ cols: 100, rows: 40 });
  await session.write(new TextEncoder().encode("hello\nexit 7\n"));
  assertEquals(await session.exit, 7);
  let out = "";
  for await (const c of session.output) out += text(c);
  assertEquals(out, "hello\nexit 7\n");
  assertEquals(session.sizes, [{ cols: 80, rows: 24 }, { cols: 100, rows: 40 }]);
});

Deno.test("memory world file: shared between instances, failures persist, host exec", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/world.json`;
  try {
    await Deno.writeTextFile(
      path,
      JSON.stringify({
        capabilities: { suspend: false },
        defaults: { ssh: { host: "127.0.0.1", port: 2222 } },
        sandboxes: {},
        failures: { delete: { kind: "unreachable", times: 1 } },
        exec: { mode: "host" },
      }),
    );
    const a = await openMemoryWorld(path);
    const b = await openMemoryWorld(path);
    assertEquals(a.capabilities.suspend, false);
    await a.create("s", { image: "x" });
    await b.start("s", {
      shares: [{ name: "code", hostPath: dir, guestPath: "/mnt/tachikoma/code", readOnly: false }],
    });
    assertEquals((await a.get("s")).state, "running");
    assertEquals(await a.sshEndpoint("s"), { host: "127.0.0.1", port: 2222 });
    // Host exec: argv kept exactly, cwd mapped through the share, stdin, exit code.
    const r = await a.exec("s", {
      argv: ["sh", "-c", 'pwd; printf "%s|" "$@"; cat; exit 5', "sh", "a b", "'q'", "$(x)"],
      cwd: "/mnt/tachikoma/code",
      stdin: "from stdin",
    });
    assertEquals(r.code, 5);
    assertEquals(text(r.stdout), `${await Deno.realPath(dir)}\na b|'q'|$(x)|from stdin`);
    await assertRejects(() => b.delete("s"), UnreachableError);
    await a.delete("s"); // times: 1 was used up by the other instance
    const world = JSON.parse(await Deno.readTextFile(path));
    assertEquals(world.sandboxes, {});
    assertEquals(
      world.calls.map((c: { method: string }) => c.method),
      ["create", "start", "exec", "delete"],
      "injected failures are not recorded as calls",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
