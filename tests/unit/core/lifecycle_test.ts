import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  ConflictError,
  NotFoundError,
  UnreachableError,
  UsageError,
} from "../../../src/lib/errors.ts";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import type { SandboxRecord } from "../../../src/state/schema.ts";
import { gitIn, harness } from "./helpers.ts";
import { loginArgv } from "../../../src/lib/shell.ts";
import { LAST_USED_RESOLUTION_MS } from "../../../src/core/lifecycle.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

function record(name: string, extra: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    name,
    repo: "other",
    branch: name,
    worktree_path: `/nowhere/${name}`,
    created_at: "2026-01-01T00:00:00.000Z",
    last_used: "2026-01-01T00:00:00.000Z",
    status: "running",
    ip: "10.0.0.9",
    backend: "memory",
    ...extra,
  };
}

Deno.test("list: state merged with live status; missing, failed, other backend, scopes", async () => {
  await using h = await harness();
  const a = await h.service.spawn({ branch: "a" });
  const b = await h.service.spawn({ branch: "b" });
  await h.service.halt(b.name);
  await h.store.put(record("tachikoma-other-x", { repo_root: "/src/other" }));
  await h.store.put(record("tachikoma-old-tart", { backend: "tart", repo: "old" }));
  await h.backend.seed("tachikoma-other-x", { state: "running", address_at: 0 });

  const mine = await h.service.list();
  assertEquals(mine.sandboxes.map((s) => [s.name, s.status, s.ip]), [
    [a.name, "running", "127.0.0.1"],
    [b.name, "stopped", null],
  ]);
  const all = await h.service.list({ all: true });
  assertEquals(all.sandboxes.map((s) => s.status), ["running", "stopped", "running", "unknown"]);
  assert(all.warnings.some((w) => w.includes("belong to the tart backend")), all.warnings.join());
  assertEquals((await h.service.list({ repo: "old" })).sandboxes.length, 1);

  await h.backend.vanish(a.name);
  const after = await h.service.list();
  assertEquals(after.sandboxes[0].status, "missing");
  assertEquals(after.sandboxes[0].recorded_status, "running");
});

Deno.test("list: an unreachable backend gives status unknown and a warning, never an error", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "a" });
  h.backend.fail("list", { kind: "unreachable", message: "socket gone" });
  const result = await h.service.list();
  assertEquals(result.sandboxes.map((s) => [s.name, s.status]), [[name, "unknown"]]);
  assertEquals(result.warnings, [
    "cannot reach the memory backend (socket gone); status is unknown",
  ]);
  // Even when the backend cannot be opened at all.
  const broken = new SandboxService({
    ...h.deps,
    backend: () => Promise.reject(new UnreachableError("no engine")),
  }, h.repo.root);
  const r2 = await broken.list();
  assertEquals(r2.sandboxes[0].status, "unknown");
  assert(r2.warnings[0].includes("no engine"));
  const st = await broken.status(name);
  assertEquals(st.sandbox.status, "unknown");
});

Deno.test("resolve: full name, branch of this repo, unique prefix, ambiguity, none", async () => {
  await using h = await harness();
  const a = await h.service.spawn({ branch: "feature/one" });
  const b = await h.service.spawn({ branch: "feature/two" });
  await h.store.put(record("tachikoma-other-feature"));
  assertEquals((await h.service.resolve(a.name)).name, a.name);
  assertEquals((await h.service.resolve("feature/two")).name, b.name);
  assertEquals((await h.service.resolve("tachikoma-myapp-feature-o")).name, a.name);
  assertEquals((await h.service.resolve("myapp-feature-t")).name, b.name, "without tachikoma-");
  assertEquals((await h.service.resolve("tachikoma-oth")).name, "tachikoma-other-feature");
  const amb = await assertRejects(() => h.service.resolve("feature"), UsageError);
  assert(amb.message.includes(a.name) && amb.message.includes(b.name), amb.message);
  const none = await assertRejects(() => h.service.resolve("zzz"), NotFoundError);
  assertEquals(none.exitCode, 3);
  // No name: the current branch's sandbox (from its worktree).
  const inWorktree = new SandboxService(h.deps, a.worktree.path);
  assertEquals((await inWorktree.resolve()).name, a.name);
  await assertRejects(() => h.service.resolve(), NotFoundError, "no sandbox for branch 'main'");
  const outside = await Deno.makeTempDir();
  try {
    await assertRejects(
      () => new SandboxService(h.deps, outside).resolve(),
      UsageError,
      "not inside a git repository",
    );
    assertEquals((await new SandboxService(h.deps, outside).resolve(a.name)).name, a.name);
  } finally {
    await Deno.remove(outside);
  }
});

Deno.test("exec: argv exactly, exit code, cwd, stdin, streaming, last_used; refuses when stopped", async () => {
  const seen: { argv: string[]; cwd?: string; stdin?: string }[] = [];
  const calls: string[] = [];
  await using h = await harness({
    backend: {
      onCall: (method) => void calls.push(method),
      exec: (_name, req) => {
        seen.push({
          argv: req.argv,
          cwd: req.cwd,
          stdin: req.stdin === undefined ? undefined : text(req.stdin as Uint8Array),
        });
        const out = new TextEncoder().encode("out");
        req.onStdout?.(out);
        return { code: 42, stdout: out, stderr: new Uint8Array() };
      },
    },
  });
  const { name } = await h.service.spawn({ branch: "e" });
  const before = (await h.store.get(name))!.last_used;
  h.clock.advance(3_600_000);
  const chunks: string[] = [];
  const argv = ["printf", "%s\n", "a b", "$(rm -rf /)", "`x`", "'q'", "é\nz"];
  calls.length = 0;
  const r = await h.service.exec("e", {
    argv,
    stdin: new TextEncoder().encode("input"),
    onStdout: (c) => chunks.push(text(c)),
  });
  assertEquals(r.code, 42);
  assertEquals(r.name, name);
  assertEquals(seen[0], { argv: loginArgv(argv), cwd: "/mnt/tachikoma/code", stdin: "input" });
  assertEquals(chunks, ["out"]);
  assertEquals(calls, ["exec"], "a running sandbox: the command goes straight out, no state query");
  assert((await h.store.get(name))!.last_used > before, "exec updates last_used");
  await h.service.exec(name, { argv: ["true"], workdir: "/tmp", raw: true });
  assertEquals(seen[1].cwd, "/tmp");
  assertEquals(seen[1].argv, ["true"], "raw: the argv as given");

  await h.service.halt(name);
  const stopped = await assertRejects(
    () => h.service.exec(name, { argv: ["true"] }),
    ConflictError,
  );
  assert(stopped.hint?.includes("tachikoma spawn e --no-attach"), stopped.hint);
  await h.backend.vanish(name);
  await assertRejects(() => h.service.exec(name, { argv: ["true"] }), NotFoundError, "no longer");
  await assertRejects(() => h.service.exec(name, { argv: [] }), UsageError);
});

Deno.test("exec: last_used moves when it is a minute old or more, not on every exec (no state write)", async () => {
  await using h = await harness({
    backend: { exec: () => ({ code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() }) },
  });
  const { name } = await h.service.spawn({ branch: "t" });
  h.clock.advance(3_600_000);
  await h.service.exec(name, { argv: ["true"] });
  const first = (await h.store.get(name))!.last_used;
  assertEquals(Date.parse(first), h.clock.now(), "an hour-old last_used is updated");
  const written = Deno.statSync(h.store.path).mtime;
  const inode = Deno.statSync(h.store.path).ino;
  h.clock.advance(LAST_USED_RESOLUTION_MS - 1);
  await h.service.exec(name, { argv: ["true"] });
  assertEquals((await h.store.get(name))!.last_used, first, "fresh: left alone");
  assertEquals(Deno.statSync(h.store.path).ino, inode, "the state file was not replaced");
  assertEquals(Deno.statSync(h.store.path).mtime, written);
  h.clock.advance(1);
  await h.service.exec(name, { argv: ["true"] });
  assertEquals(
    Date.parse((await h.store.get(name))!.last_used),
    h.clock.now(),
    "a minute: updated",
  );
});

Deno.test("halt and suspend: record updates; suspend stops where the backend cannot suspend", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "s" });
  const suspended = await h.service.suspend(name);
  assertEquals(suspended, { name, status: "suspended", previous: "running", suspended: true });
  const rec = await h.store.get(name);
  assertEquals([rec?.status, rec?.ip], ["suspended", "127.0.0.1"], "suspend keeps the ip");
  const halted = await h.service.halt(name);
  assertEquals(halted.previous, "suspended");
  assertEquals((await h.store.get(name))?.ip, null);
  assertEquals((await h.backend.get(name)).state, "stopped");

  await using h2 = await harness({ backend: { capabilities: { suspend: false } } });
  const r2 = await h2.service.spawn({ branch: "s" });
  const stopped = await h2.service.suspend(r2.name);
  assertEquals(stopped, {
    name: r2.name,
    status: "stopped",
    previous: "running",
    suspended: false,
  });
  assertEquals((await h2.backend.get(r2.name)).state, "stopped");
  assertEquals((await h2.backend.calls("suspend")).length, 0);
  assertEquals((await h2.service.suspend(r2.name)).previous, "stopped");

  await h2.backend.vanish(r2.name);
  assertEquals((await h2.service.halt(r2.name)).previous, "missing");
});

Deno.test("destroy: deletes sandbox and entry; --worktree removes only a clean worktree", async () => {
  await using h = await harness();
  const clean = await h.service.spawn({ branch: "clean" });
  const dirty = await h.service.spawn({ branch: "dirty" });
  await Deno.writeTextFile(`${dirty.worktree.path}/wip.txt`, "unsaved");
  const c = await h.service.destroy(clean.record, { worktree: true });
  assertEquals(c.worktree_removed, true);
  assertEquals(await h.backend.peek(clean.name), undefined);
  assertEquals(await h.store.get(clean.name), undefined);
  assertEquals(await gitIn(h.repo.root, "branch", "--list", "clean"), "clean", "branch kept");
  const d = await h.service.destroy(dirty.record, { worktree: true });
  assertEquals(d.worktree_removed, false);
  assertEquals(d.worktree_kept_reason, "it has 1 uncommitted change");
  assertEquals(await Deno.readTextFile(`${dirty.worktree.path}/wip.txt`), "unsaved");

  // A state entry whose sandbox is gone is still cleaned up.
  const gone = await h.service.spawn({ branch: "gone" });
  await h.backend.vanish(gone.name);
  assertEquals((await h.service.destroy(gone.record)).was_missing, true);
  assertEquals(await h.store.get(gone.name), undefined);

  // --all: this repo's sandboxes only.
  await h.store.put(record("tachikoma-other-y", { repo_root: "/src/other" }));
  await h.service.spawn({ branch: "x1" });
  const targets = await h.service.destroyTargets({ all: true });
  assertEquals(targets.map((t) => t.branch), ["x1"]);
  // An unreachable engine keeps the entry.
  h.backend.fail("get", { kind: "unreachable" });
  await assertRejects(() => h.service.destroy(targets[0]), UnreachableError);
  assert(await h.store.get(targets[0].name));
});

Deno.test("prune: unused for D days, gone entries dropped, dry-run changes nothing", async () => {
  await using h = await harness();
  const old = await h.service.spawn({ branch: "old" });
  h.clock.advance(10 * 86_400_000);
  const fresh = await h.service.spawn({ branch: "fresh" });
  const gone = await h.service.spawn({ branch: "gone" });
  await h.backend.vanish(gone.name);
  h.clock.advance(86_400_000);
  // exec counts as use: `old` was used a day ago → not pruned at 5 days.
  const dry = await h.service.prune({ days: 5, dryRun: true });
  assertEquals(dry.pruned.map((p) => [p.name, p.reason]), [
    [old.name, "unused"],
    [gone.name, "missing"],
  ]);
  assertEquals((await h.store.read()).vms.length, 3, "dry run changes nothing");
  assertEquals((await h.backend.list()).length, 2);
  await h.service.exec(old.name, { argv: ["true"] });
  const real = await h.service.prune({ days: 5 });
  assertEquals(real.pruned.map((p) => p.name), [gone.name], "old was just used");
  h.clock.advance(31 * 86_400_000);
  const later = await h.service.prune({});
  assertEquals(later.days, 30);
  assertEquals(later.pruned.map((p) => p.name).sort(), [fresh.name, old.name].sort());
  assertEquals((await h.store.read()).vms, []);
  assertEquals(await h.backend.list(), []);
});

Deno.test("prune: an unreachable backend never drops entries", async () => {
  await using h = await harness();
  await h.service.spawn({ branch: "a" });
  h.clock.advance(40 * 86_400_000);
  h.backend.fail("list", { kind: "unreachable" });
  const dry = await h.service.prune({ dryRun: true });
  assertEquals(dry.pruned.map((p) => p.reason), ["unused"], "no entry is taken for gone");
  assert(dry.warnings[0].includes("cannot reach"));
  await assertRejects(() => h.service.prune({}), UnreachableError);
  assertEquals((await h.store.read()).vms.length, 1);
});
