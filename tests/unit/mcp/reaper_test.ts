/**
 * The MCP daemon's reaper on a fake clock, over the lifecycle harness (memory engine, real
 * state file and sandbox locks): idle MCP-made sandboxes are stopped, old ones deleted (the
 * entry kept and marked, then forgotten), CLI-made ones never touched; sandboxes in use by a
 * tool call or locked by a command are left alone; a use since the decision keeps it; every
 * action is logged and shows in `list`. Also: spawn over MCP marks the sandbox, a CLI spawn
 * takes it over, and the run loop passes on every interval.
 */
import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { FakeClock } from "../../testing/fake_clock.ts";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import { Logger } from "../../../src/lib/log.ts";
import { withSandboxLock } from "../../../src/state/lock.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";
import { SandboxActivity } from "../../../src/mcp/activity.ts";
import { Reaper, reaperPolicy } from "../../../src/mcp/reaper.ts";
import { type Harness, harness } from "../core/helpers.ts";

const T0 = Date.parse("2026-05-01T12:00:00Z");
const MIN = 60_000;
const HOUR = 60 * MIN;

interface World {
  h: Harness;
  clock: FakeClock;
  reaper: Reaper;
  activity: SandboxActivity;
  lines: string[];
  /** A running sandbox in the engine and its record. */
  seed(name: string, fields?: Partial<SandboxRecord>): Promise<void>;
  state(name: string): Promise<string>;
}

function world(h: Harness, clock: FakeClock): World {
  const activity = new SandboxActivity();
  const lines: string[] = [];
  const reaper = new Reaper(
    {
      clock,
      activity,
      service: () => Promise.resolve(new SandboxService(h.deps, h.repo.root)),
      logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
    },
    reaperPolicy({
      listen: "127.0.0.1:8765",
      idle_stop_after: "1h",
      hard_destroy_after: "24h",
      reap_interval: "1m",
    }),
  );
  return {
    h,
    clock,
    reaper,
    activity,
    lines,
    async seed(name, fields = {}) {
      await h.backend.seed(name, { state: "running", address_at: 0 });
      const stamp = new Date(clock.now()).toISOString();
      await h.store.put({
        name,
        repo: "myapp",
        branch: name,
        worktree_path: h.repo.root,
        repo_root: h.repo.root,
        backend: "memory",
        created_at: stamp,
        last_used: stamp,
        status: "running",
        ip: "127.0.0.1",
        failure: null,
        ...fields,
      });
    },
    async state(name) {
      try {
        return (await h.backend.get(name)).state;
      } catch {
        return "missing";
      }
    },
  };
}

Deno.test("reaper: idle MCP sandboxes stopped, old ones deleted then forgotten; CLI ones never", async () => {
  const clock = new FakeClock(T0);
  await using h = await harness({ clock });
  const w = world(h, clock);
  await w.seed("tk-mcp-idle", { created_by: "mcp" });
  await w.seed("tk-mcp-busy", { created_by: "mcp" });
  await w.seed("tk-cli", {});
  await w.seed("tk-mcp-creating", { created_by: "mcp", status: "creating" });

  assertEquals(await w.reaper.pass(), [], "nothing is due at first");
  clock.advance(30 * MIN);
  await h.store.update((s) => {
    const r = s.vms.find((v) => v.name === "tk-mcp-busy")!;
    r.last_used = new Date(clock.now()).toISOString(); // used half an hour in
  });
  clock.advance(31 * MIN);

  const first = await w.reaper.pass();
  assertEquals(first.map((a) => [a.name, a.action]), [["tk-mcp-idle", "stopped"]]);
  assertStringIncludes(first[0].reason, "unused for 1h1m (idle_stop_after 1h)");
  assertEquals(await w.state("tk-mcp-idle"), "stopped");
  assertEquals(await w.state("tk-mcp-busy"), "running", "used 31 minutes ago");
  assertEquals(await w.state("tk-cli"), "running", "the CLI's sandbox is never touched");
  const idle = (await h.store.get("tk-mcp-idle"))!;
  assertEquals([idle.status, idle.ip, idle.reaped?.action], ["stopped", null, "stopped"]);
  assert(w.lines.some((l) => l.startsWith("mcp reaper: stopped tk-mcp-idle: unused for")));

  // What the reaper did shows in list (and its JSON: created_by, reaped).
  const listed = await h.service.list({ all: true });
  const view = listed.sandboxes.find((s) => s.name === "tk-mcp-idle")!;
  assertEquals([view.status, view.created_by, view.reaped?.action], [
    "stopped",
    "mcp",
    "stopped",
  ]);
  assertEquals(listed.sandboxes.find((s) => s.name === "tk-cli")!.created_by, "cli");

  clock.advance(23 * HOUR);
  const second = await w.reaper.pass();
  assertEquals(
    second.map((a) => [a.name, a.action]).sort(),
    [["tk-mcp-busy", "destroyed"], ["tk-mcp-idle", "destroyed"]],
  );
  for (const name of ["tk-mcp-idle", "tk-mcp-busy"]) {
    assertEquals(await w.state(name), "missing", `${name} deleted from the engine`);
    const r = (await h.store.get(name))!;
    assertEquals([r.status, r.reaped?.action], ["stopped", "destroyed"], "the entry stays");
  }
  assertEquals(await w.state("tk-cli"), "running");
  assertEquals(await w.state("tk-mcp-creating"), "running", "a sandbox being created is skipped");
  const gone = (await h.service.status("tk-mcp-idle")).sandbox;
  assertEquals([gone.status, gone.reaped?.action], ["missing", "destroyed"]);

  assertEquals(await w.reaper.pass(), [], "nothing more until the entries expire");
  clock.advance(24 * HOUR);
  const third = await w.reaper.pass();
  assertEquals(third.map((a) => a.action), ["forgotten", "forgotten"]);
  assertEquals(
    (await h.store.read()).vms.map((r) => r.name).sort(),
    ["tk-cli", "tk-mcp-creating"],
  );
  assertEquals(w.reaper.stats.stopped, 1);
  assertEquals(w.reaper.stats.destroyed, 2);
  assertEquals(w.reaper.stats.passes, 5);
});

Deno.test("reaper: a sandbox in use by a call or locked by a command is left alone", async () => {
  const clock = new FakeClock(T0);
  await using h = await harness({ clock });
  const w = world(h, clock);
  await w.seed("tk-running-call", { created_by: "mcp" });
  await w.seed("tk-locked", { created_by: "mcp" });
  clock.advance(2 * HOUR);

  const release = w.activity.begin("tk-running-call");
  let result: unknown;
  await withSandboxLock({ dir: h.stateDir, name: "tk-locked" }, async () => {
    result = await w.reaper.pass();
  });
  assertEquals(result, []);
  assertEquals(await w.state("tk-running-call"), "running");
  assertEquals(await w.state("tk-locked"), "running");
  assert(w.lines.some((l) => l.includes("tk-running-call is in use by a tool call")));
  assert(w.lines.some((l) => l.includes("tk-locked is locked by a command")));

  release();
  const later = await w.reaper.pass();
  assertEquals(later.map((a) => a.name).sort(), ["tk-locked", "tk-running-call"]);
});

Deno.test("reaper: durations of 0 turn the rules off; the run loop passes every interval", async () => {
  const clock = new FakeClock(T0);
  await using h = await harness({ clock });
  const off = new Reaper(
    {
      clock,
      activity: new SandboxActivity(),
      service: () => Promise.resolve(new SandboxService(h.deps, h.repo.root)),
    },
    reaperPolicy({
      listen: "127.0.0.1:8765",
      idle_stop_after: "0",
      hard_destroy_after: "0",
      reap_interval: "1m",
    }),
  );
  assertEquals(off.enabled, false);

  const w = world(h, clock);
  await w.seed("tk-mcp", { created_by: "mcp" });
  const stop = new AbortController();
  let ticks = 0;
  const loop = w.reaper.run(stop.signal, () => Promise.resolve(ticks++));
  const settle = async (passes: number) => {
    // The pass is done and the loop sleeps again (on the fake clock).
    for (let i = 0; i < 2000 && (w.reaper.stats.passes < passes || clock.pending < 1); i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assertEquals(w.reaper.stats.passes, passes);
  };
  await settle(1); // a pass at once
  assertEquals(clock.sleeps.at(-1), MIN, "then one every reap_interval");
  for (let minute = 1; minute < 60; minute++) {
    clock.advance(MIN);
    await settle(1 + minute);
  }
  assertEquals(await w.state("tk-mcp"), "running", "59 minutes unused");
  clock.advance(MIN);
  await settle(61);
  assertEquals(await w.state("tk-mcp"), "stopped", "stopped on the pass after the hour");
  stop.abort();
  await loop;
  assert(ticks >= 61, "the housekeeping ran after each pass");
});

Deno.test("spawn over MCP marks the sandbox; a CLI spawn takes it over (the reaper then leaves it)", async () => {
  await using h = await harness();
  const mcp = await h.service.spawn({ branch: "agent-work", createdBy: "mcp" });
  assertEquals((await h.store.get(mcp.name))!.created_by, "mcp");
  // A halted MCP sandbox spawned again over MCP stays the reaper's, and its mark is cleared.
  await h.store.update((s) => {
    s.vms[0].reaped = { action: "stopped", at: "2026-05-01T12:00:00.000Z", reason: "idle" };
  });
  await h.service.halt(mcp.name);
  await h.service.spawn({ branch: "agent-work", createdBy: "mcp" });
  let record = (await h.store.get(mcp.name))!;
  assertEquals([record.created_by, record.reaped], ["mcp", undefined]);

  await h.service.spawn({ branch: "agent-work" });
  record = (await h.store.get(mcp.name))!;
  assertEquals(record.created_by, undefined, "the CLI took it over");

  const cli = await h.service.spawn({ branch: "mine" });
  await h.service.spawn({ branch: "mine", createdBy: "mcp" });
  assertEquals(
    (await h.store.get(cli.name))!.created_by,
    undefined,
    "MCP reuse keeps it the CLI's",
  );
});
