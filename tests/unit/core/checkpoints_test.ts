/**
 * Checkpoints over the memory backend: labels, create/list/restore/delete, the restore
 * sequence (stop → restore → start with the shares → boot wait), its failure paths, and
 * engines without checkpoints.
 */
import { assert, assertEquals, assertMatch, assertRejects, assertThrows } from "@std/assert";
import {
  createCheckpoint,
  defaultLabel,
  deleteCheckpoint,
  formatDuration,
  formatSize,
  listCheckpoints,
  requireCheckpoints,
  restoreCheckpoint,
  validateLabel,
} from "../../../src/core/checkpoints.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  TimeoutError,
  UnsupportedError,
  UsageError,
} from "../../../src/lib/errors.ts";
import type { Backend } from "../../../src/backends/backend.ts";
import { type Harness, harness } from "./helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

async function spawned(h: Harness, branch = "feat") {
  const result = await h.service.spawn({ branch });
  return result.name;
}

async function methods(h: Harness, from = 0): Promise<string[]> {
  return (await h.backend.calls()).slice(from).map((c) => c.method);
}

Deno.test("labels: default tk-YYYYMMDD-HHMMSS (UTC); only [A-Za-z0-9._-], ≤ 63, no leading symbol", () => {
  assertEquals(defaultLabel(Date.parse("2026-05-01T09:08:07.654Z")), "tk-20260501-090807");
  for (const ok of ["a", "v1.2_rc-3", "X".repeat(63), "tk-20260501-090807"]) validateLabel(ok);
  for (
    const bad of [
      "",
      "-x",
      ".hidden",
      "a b",
      "../etc",
      "a/b",
      "$(touch x)",
      "`id`",
      "it's",
      "new\nline",
      "日本",
      "X".repeat(64),
    ]
  ) {
    const error = assertThrows(() => validateLabel(bad), UsageError);
    assert(error.message.startsWith(`invalid checkpoint label ${JSON.stringify(bad)}`), bad);
  }
});

Deno.test("formatting: sizes in IEC units, durations", () => {
  assertEquals(formatSize(null), "-");
  assertEquals(formatSize(0), "0 B");
  assertEquals(formatSize(1023), "1023 B");
  assertEquals(formatSize(1536), "1.5 KiB");
  assertEquals(formatSize(25 * 1024 * 1024), "25 MiB");
  assertEquals(formatSize(3 * 1024 ** 3 + 1), "3.0 GiB");
  assertEquals(formatDuration(850), "850 ms");
  assertEquals(formatDuration(4_240), "4.2 s");
  assertEquals(formatDuration(37_400), "37 s");
  assertEquals(formatDuration(125_000), "2 min 05 s");
});

Deno.test("create: default and given labels, unique defaults, conflicts, bad labels", async () => {
  await using h = await harness();
  const name = await spawned(h);
  const before = (await h.backend.calls("createCheckpoint")).length;

  const now = h.clock.now();
  const first = await createCheckpoint(h.service, { name: "feat" });
  assertEquals(first.name, name);
  assertEquals(first.label, defaultLabel(now));
  assertMatch(first.label, /^tk-\d{8}-\d{6}$/);
  assertEquals(first.created_at, new Date(now).toISOString());
  assertEquals(typeof first.size_bytes, "number");
  // The same second again: a suffix, not a conflict.
  const second = await createCheckpoint(h.service, { name });
  assertEquals(second.label, `${first.label}-2`);
  // No name: the current branch's sandbox (the harness repo is on main) does not exist.
  await assertRejects(() => createCheckpoint(h.service), NotFoundError, "no sandbox for branch");

  const given = await createCheckpoint(h.service, { name, label: "before-upgrade" });
  assertEquals(given.label, "before-upgrade");
  const dup = await assertRejects(
    () => createCheckpoint(h.service, { name, label: "before-upgrade" }),
    ConflictError,
    `${name} already has a checkpoint "before-upgrade"`,
  );
  assert(dup.hint?.includes("checkpoint delete"), dup.hint);
  await assertRejects(
    () => createCheckpoint(h.service, { name, label: "a b" }),
    UsageError,
    `invalid checkpoint label "a b"`,
  );
  assertEquals((await h.backend.calls("createCheckpoint")).length - before, 4);
});

Deno.test("list: oldest first with sizes; empty", async () => {
  await using h = await harness();
  const name = await spawned(h);
  assertEquals(await listCheckpoints(h.service, { name }), {
    name,
    backend: "memory",
    checkpoints: [],
  });
  await h.backend.pushFile(name, { path: "/home/user/a", data: enc.encode("12345") });
  await createCheckpoint(h.service, { name, label: "one" });
  h.clock.advance(60_000);
  await h.backend.pushFile(name, { path: "/home/user/b", data: enc.encode("1234567890") });
  await createCheckpoint(h.service, { name, label: "two" });
  const list = await listCheckpoints(h.service, { name: "feat" });
  assertEquals(list.checkpoints.map((c) => c.label), ["one", "two"]);
  assert(list.checkpoints[1].size_bytes! > list.checkpoints[0].size_bytes!);
  assert(list.checkpoints[0].created_at < list.checkpoints[1].created_at);
});

Deno.test("restore: stop → restore → start with the shares → boot; guest files go back", async () => {
  await using h = await harness();
  const name = await spawned(h);
  await h.backend.pushFile(name, { path: "/home/user/kept", data: enc.encode("before") });
  await createCheckpoint(h.service, { name, label: "clean" });
  await h.backend.pushFile(name, { path: "/home/user/kept", data: enc.encode("after") });
  await h.backend.pushFile(name, { path: "/home/user/new", data: enc.encode("later") });
  const from = (await h.backend.calls()).length;
  const probes = h.probe.calls.length;

  const result = await restoreCheckpoint(h.service, { name: "feat", label: "clean" });

  assertEquals(result.name, name);
  assertEquals(result.label, "clean");
  assertEquals(result.previous, "running");
  assertEquals(result.status, "running");
  assertEquals(result.ip, "127.0.0.1");
  assert(result.elapsed_ms >= 0);
  assertEquals(await methods(h, from), ["stop", "restoreCheckpoint", "start", "mountShares"]);
  assert(h.probe.calls.length > probes, "the boot wait probes SSH");
  assertEquals(dec.decode(await h.backend.pullFile(name, "/home/user/kept")), "before");
  await assertRejects(() => h.backend.pullFile(name, "/home/user/new"), NotFoundError);
  // The same shares as spawn gave it: the worktree as `code`, the repo's .git (read-only) and
  // its data parts as `git*`.
  const sb = await h.backend.peek(name);
  const record = (await h.store.get(name))!;
  assertEquals(sb?.state, "running");
  assertEquals(sb?.shares?.map((s) => [s.name, s.hostPath]), [
    ["code", record.worktree_path],
    ["git", `${h.repo.root}/.git`],
    ["git-objects", `${h.repo.root}/.git/objects`],
    ["git-refs", `${h.repo.root}/.git/refs`],
    ["git-logs", `${h.repo.root}/.git/logs`],
    ["git-worktree", `${h.repo.root}/.git/worktrees/myapp-feat`],
  ]);
  assertEquals(record.status, "running");
  assertEquals(record.ip, "127.0.0.1");
  const events = h.reporter.events.filter((e) => e.startsWith("done"));
  assertEquals(events.slice(-4), [
    `done stopping ${name}`,
    "done restoring checkpoint clean",
    `done starting ${name}`,
    "done waiting for boot",
  ]);
});

Deno.test("restore: a stopped sandbox is restored and started", async () => {
  await using h = await harness();
  const name = await spawned(h);
  await createCheckpoint(h.service, { name, label: "c1" });
  await h.service.halt(name);
  const from = (await h.backend.calls()).length;
  const result = await restoreCheckpoint(h.service, { name, label: "c1" });
  assertEquals(result.previous, "stopped");
  assertEquals(await methods(h, from), ["restoreCheckpoint", "start", "mountShares"]);
  assertEquals((await h.store.get(name))?.status, "running");
});

Deno.test("restore: an unknown label or a gone worktree is refused before anything stops", async () => {
  await using h = await harness();
  const name = await spawned(h);
  await createCheckpoint(h.service, { name, label: "c1" });
  const from = (await h.backend.calls()).length;
  const error = await assertRejects(
    () => restoreCheckpoint(h.service, { name, label: "nope" }),
    NotFoundError,
    `${name} has no checkpoint "nope"`,
  );
  assert(error.hint?.includes(`tachikoma checkpoint list ${name}`));
  const record = (await h.store.get(name))!;
  await Deno.remove(record.worktree_path, { recursive: true });
  await assertRejects(
    () => restoreCheckpoint(h.service, { name, label: "c1" }),
    NotFoundError,
    `the worktree of ${name} is gone or broken`,
  );
  assertEquals(await methods(h, from), []);
  assertEquals((await h.backend.get(name)).state, "running");
});

Deno.test("restore: a failing restore starts the sandbox again and reports the error", async () => {
  await using h = await harness();
  const name = await spawned(h);
  await createCheckpoint(h.service, { name, label: "c1" });
  h.backend.fail("restoreCheckpoint", { kind: "runtime", message: "disk on fire", times: 1 });
  const from = (await h.backend.calls()).length;
  await assertRejects(
    () => restoreCheckpoint(h.service, { name, label: "c1" }),
    RuntimeError,
    "disk on fire",
  );
  assertEquals(await methods(h, from), ["stop", "start"]);
  assertEquals((await h.backend.get(name)).state, "running");
  assertEquals((await h.store.get(name))?.status, "running");
});

Deno.test("restore: a sandbox that does not boot afterwards is stopped and marked failed", async () => {
  await using h = await harness({ config: { boot_timeout_secs: 5 } });
  const name = await spawned(h);
  await createCheckpoint(h.service, { name, label: "c1" });
  h.backend.configure({ neverAddress: true });
  const error = await assertRejects(
    () => restoreCheckpoint(h.service, { name, label: "c1" }),
    TimeoutError,
  );
  assert(error.message.startsWith(`${name} did not boot after restoring "c1"`), error.message);
  assert(error.hint?.includes("marked failed"), error.hint);
  assertEquals((await h.backend.get(name)).state, "stopped");
  const record = (await h.store.get(name))!;
  assertEquals(record.status, "failed");
  assert(record.failure?.includes(`after restoring "c1"`), record.failure ?? "");
});

Deno.test("delete: removes one checkpoint; unknown labels say how to list", async () => {
  await using h = await harness();
  const name = await spawned(h);
  await createCheckpoint(h.service, { name, label: "c1" });
  await createCheckpoint(h.service, { name, label: "c2" });
  assertEquals(await deleteCheckpoint(h.service, { name: "feat", label: "c1" }), {
    name,
    label: "c1",
    deleted: true,
  });
  assertEquals((await listCheckpoints(h.service, { name })).checkpoints.map((c) => c.label), [
    "c2",
  ]);
  const error = await assertRejects(
    () => deleteCheckpoint(h.service, { name, label: "c1" }),
    NotFoundError,
    `${name} has no checkpoint "c1"`,
  );
  assert(error.hint?.includes("checkpoint list"));
});

Deno.test("a sandbox gone from the engine: every command says so", async () => {
  await using h = await harness();
  const name = await spawned(h);
  await h.backend.vanish(name);
  const gone = `sandbox ${name} no longer exists in memory`;
  await assertRejects(() => createCheckpoint(h.service, { name }), NotFoundError, gone);
  await assertRejects(() => listCheckpoints(h.service, { name }), NotFoundError, gone);
  await assertRejects(
    () => restoreCheckpoint(h.service, { name, label: "x" }),
    NotFoundError,
    gone,
  );
  await assertRejects(() => deleteCheckpoint(h.service, { name, label: "x" }), NotFoundError, gone);
});

Deno.test("engines without checkpoints: UnsupportedError with the way out, nothing called", async () => {
  await using h = await harness({ backend: { capabilities: { checkpoints: false } } });
  const name = await spawned(h);
  const from = (await h.backend.calls()).length;
  for (
    const run of [
      () => createCheckpoint(h.service, { name }),
      () => listCheckpoints(h.service, { name }),
      () => restoreCheckpoint(h.service, { name, label: "x" }),
      () => deleteCheckpoint(h.service, { name, label: "x" }),
    ]
  ) {
    const error = await assertRejects(
      run,
      UnsupportedError,
      "the memory backend cannot take checkpoints",
    );
    assert(error.hint?.includes("incus"), error.hint);
  }
  assertEquals(await methods(h, from), []);
  const tart = { name: "tart", capabilities: { checkpoints: false } } as unknown as Backend;
  const error = assertThrows(() => requireCheckpoints(tart), UnsupportedError);
  assertEquals(error.message, "the tart backend cannot take checkpoints");
  assertEquals(error.hint, "tart has no snapshots; use `tachikoma destroy` and spawn again");
});
