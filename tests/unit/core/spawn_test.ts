import { ProvisionError } from "../../../src/provision/errors.ts";
import { assert, assertEquals, assertRejects } from "@std/assert";
import { log } from "../../../src/lib/log.ts";
import {
  ConflictError,
  InterruptedError,
  TachikomaError,
  TimeoutError,
  UnreachableError,
} from "../../../src/lib/errors.ts";
import { SandboxService } from "../../../src/core/sandbox_service.ts";
import { gitIn, harness } from "./helpers.ts";

Deno.test("spawn: new branch → worktree, create, start with shares, boot, provision", async () => {
  await using h = await harness();
  await Deno.mkdir(`${h.home}/.claude/rules`, { recursive: true });
  const memory = `${h.home}/.claude/projects/${h.repo.root.replaceAll("/", "-")}/memory`;
  await Deno.mkdir(memory, { recursive: true });
  const result = await h.service.spawn({ branch: "feature/auth" });

  assertEquals(result.action, "created");
  assertEquals(result.name, "tachikoma-myapp-feature-auth");
  assertEquals(result.worktree.path, `${h.repo.dir}/myapp-feature-auth`);
  assertEquals(result.worktree.branchCreated, true);
  assertEquals(await gitIn(result.worktree.path, "branch", "--show-current"), "feature/auth");
  assertEquals(await gitIn(h.repo.root, "status", "--porcelain"), "", "main checkout untouched");
  assert(
    h.reporter.events.some((e) => e.startsWith("note created branch 'feature/auth' from HEAD")),
  );

  const sb = await h.backend.peek(result.name);
  assertEquals(sb?.state, "running");
  assertEquals(sb?.mounted, true);
  assertEquals(sb?.cpus, 4);
  assertEquals(
    sb?.shares?.map((s) => [s.name, s.hostPath, s.guestPath, s.readOnly]),
    [
      ["code", result.worktree.path, "/mnt/tachikoma/code", false],
      ["git", `${h.repo.root}/.git`, "/mnt/tachikoma/git", true],
      ["git-objects", `${h.repo.root}/.git/objects`, "/mnt/tachikoma/git/objects", false],
      ["git-refs", `${h.repo.root}/.git/refs`, "/mnt/tachikoma/git/refs", false],
      ["git-logs", `${h.repo.root}/.git/logs`, "/mnt/tachikoma/git/logs", false],
      [
        "git-worktree",
        `${h.repo.root}/.git/worktrees/myapp-feature-auth`,
        "/mnt/tachikoma/git/worktrees/myapp-feature-auth",
        false,
      ],
      ["claude-rules", `${h.home}/.claude/rules`, "/mnt/tachikoma/claude-rules", true],
      ["claude-memory", memory, "/mnt/tachikoma/claude-memory", true],
    ],
  );

  const record = await h.store.get(result.name);
  assertEquals(record?.status, "running");
  assertEquals(record?.ip, "127.0.0.1");
  assertEquals(record?.backend, "memory");
  assertEquals(record?.repo, "myapp");
  assertEquals(record?.branch, "feature/auth");
  assertEquals(record?.repo_root, h.repo.root);
  assertEquals(record?.worktree_path, result.worktree.path);
  assertEquals(record?.provisioned?.complete, true);
  assertEquals(record?.provisioned?.version, 3);
  assertEquals(record?.provisioned?.last_step, "claude");
  assertEquals(record?.provisioned?.fingerprints?.env, "env-v1");
  assertEquals(h.provisioner.runs, [["keys", "mounts", "env", "claude"]]);
  assertEquals(result.provisioning.reason, "new");
});

Deno.test("spawn: running → reconnect (no create, no provisioning), last_used updated", async () => {
  await using h = await harness();
  const first = await h.service.spawn({ branch: "b1" });
  const usedBefore = (await h.store.get(first.name))!.last_used;
  h.clock.advance(60_000);
  const second = await h.service.spawn({ branch: "b1" });
  assertEquals(second.action, "reconnected");
  assertEquals(second.worktree.action, "reused");
  assertEquals((await h.backend.calls("create")).length, 1);
  assertEquals((await h.backend.calls("start")).length, 1);
  assertEquals(h.provisioner.runs.length, 1);
  assert((await h.store.get(first.name))!.last_used > usedBefore);
});

Deno.test("spawn: stopped → started with shares again; suspended → resumed", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "b2" });
  await h.service.halt(name);
  assertEquals((await h.store.get(name))?.status, "stopped");
  const started = await h.service.spawn({ branch: "b2" });
  assertEquals(started.action, "started");
  const starts = await h.backend.calls("start");
  assertEquals(starts.length, 2);
  assertEquals(starts[1].detail?.shares, [
    "code",
    "git",
    "git-objects",
    "git-refs",
    "git-logs",
    "git-worktree",
  ]);
  assertEquals((await h.backend.peek(name))?.mounted, true);
  await h.service.suspend(name);
  assertEquals((await h.store.get(name))?.status, "suspended");
  const resumed = await h.service.spawn({ branch: "b2" });
  assertEquals(resumed.action, "resumed");
  assertEquals((await h.store.get(name))?.status, "running");
  assertEquals(h.provisioner.runs.length, 1, "provisioned once");
});

Deno.test("spawn: a new sandbox that never gets an address is stopped and recorded failed; retry works; destroy cleans", async () => {
  await using h = await harness({
    backend: { neverAddress: true },
    config: { boot_timeout_secs: 30 },
  });
  const started = h.clock.now();
  const error = await assertRejects(() => h.service.spawn({ branch: "ghost" }), TachikomaError);
  assertEquals(error.code, "timeout");
  assert(error.message.includes("failed to boot"), error.message);
  assert(error.hint?.includes("tachikoma destroy tachikoma-myapp-ghost"), error.hint);
  assert(h.clock.now() - started <= 31_000, "gave up at the deadline");
  const name = "tachikoma-myapp-ghost";
  assertEquals((await h.backend.get(name)).state, "stopped", "no ghost keeps running");
  const stops = await h.backend.calls("stop");
  assertEquals(stops.length, 1);
  const record = await h.store.get(name);
  assertEquals(record?.status, "failed");
  assert(record?.failure?.includes("no IP address within 30 s"), record?.failure ?? "");
  assertEquals(h.provisioner.runs.length, 0);

  const listed = await h.service.list();
  assertEquals(listed.sandboxes.map((s) => [s.name, s.status]), [[name, "failed"]]);

  // Spawn again: the address comes now; it is started and provisioned (never completed).
  h.backend.configure({ neverAddress: false });
  const retry = await h.service.spawn({ branch: "ghost" });
  assertEquals(retry.action, "started");
  assertEquals(retry.provisioning.reason, "incomplete");
  assertEquals(h.provisioner.runs, [["keys", "mounts", "env", "claude"]]);
  assertEquals((await h.store.get(name))?.status, "running");
  assertEquals((await h.store.get(name))?.failure, null);

  const outcome = await h.service.destroy((await h.store.get(name))!);
  assertEquals(outcome.was_missing, false);
  assertEquals(await h.store.get(name), undefined);
  assertEquals(await h.backend.peek(name), undefined);
});

Deno.test("spawn: boot failure on the restart path also stops the sandbox", async () => {
  await using h = await harness({ config: { boot_timeout_secs: 10 } });
  const { name } = await h.service.spawn({ branch: "b3" });
  await h.service.halt(name);
  h.probe.answer = () => ({ ok: false, reason: "connection refused" });
  await assertRejects(
    () => h.service.spawn({ branch: "b3" }),
    TachikomaError,
    "did not answer SSH",
  );
  assertEquals((await h.backend.get(name)).state, "stopped");
  const rec = await h.store.get(name);
  assertEquals(rec?.status, "failed");
  assert(rec?.failure?.includes("last probe: connection refused"), rec?.failure ?? "");
  assertEquals(rec?.provisioned?.complete, true, "provisioning state is kept");
  h.probe.answer = () => ({ ok: true, banner: "SSH-2.0-x" });
  assertEquals((await h.service.spawn({ branch: "b3" })).action, "started");
  assertEquals(h.provisioner.runs.length, 1, "a complete provisioning is not redone");
});

Deno.test("spawn: a running sandbox that stops answering is not stopped by reconnect", async () => {
  await using h = await harness({ config: { boot_timeout_secs: 5 } });
  const { name } = await h.service.spawn({ branch: "b4" });
  h.probe.answer = () => ({ ok: false, reason: "connection reset" });
  const error = await assertRejects(() => h.service.spawn({ branch: "b4" }), TimeoutError);
  assert(error.message.includes("running but not answering"), error.message);
  assert(error.hint?.includes(`tachikoma halt ${name}`), error.hint);
  assertEquals((await h.backend.get(name)).state, "running");
  assertEquals((await h.store.get(name))?.status, "running");
});

Deno.test("spawn: create failure leaves no entry; start failure stops and marks failed", async () => {
  await using h = await harness();
  h.backend.fail("create", { kind: "unreachable", times: 1 });
  await assertRejects(() => h.service.spawn({ branch: "c1" }), UnreachableError);
  assertEquals((await h.store.read()).vms, []);
  h.backend.fail("start", { kind: "runtime", message: "no space left", times: 1 });
  await assertRejects(() => h.service.spawn({ branch: "c1" }), TachikomaError, "no space left");
  const rec = await h.store.get("tachikoma-myapp-c1");
  assertEquals(rec?.status, "failed");
  assertEquals((await h.backend.get("tachikoma-myapp-c1")).state, "stopped");
  const ok = await h.service.spawn({ branch: "c1" });
  assertEquals(ok.action, "started");
  assertEquals(h.provisioner.runs.length, 1);
});

Deno.test("spawn: interrupted boot stops the sandbox and records it", async () => {
  const controller = new AbortController();
  await using h = await harness({ backend: { neverAddress: true } });
  h.deps.signal = controller.signal;
  const service = new SandboxService(h.deps, h.repo.root);
  h.backend.configure({
    onCall: (method) => {
      if (method === "waitForAddress") controller.abort(new InterruptedError());
    },
  });
  await assertRejects(() => service.spawn({ branch: "int" }), InterruptedError);
  assertEquals((await h.backend.get("tachikoma-myapp-int")).state, "stopped");
  assertEquals((await h.store.get("tachikoma-myapp-int"))?.failure, "interrupted while booting");
});

Deno.test("spawn: a step's own resume hint is the whole hint (said once)", async () => {
  await using h = await harness();
  h.provisioner.failAt = "env";
  h.provisioner.failWith = new ProvisionError("env", "apt said no");
  const error = await assertRejects(() => h.service.spawn({ branch: "p0" }), TachikomaError);
  assertEquals(
    error.hint,
    "fix the cause, then run `tachikoma spawn` again: provisioning resumes at step 'env'",
  );
});

Deno.test("spawn: provisioning that fails resumes after the last completed step", async () => {
  await using h = await harness();
  h.provisioner.failAt = "env";
  const error = await assertRejects(() => h.service.spawn({ branch: "p1" }), TachikomaError);
  assertEquals(error.code, "provision_failed");
  assert(error.message.includes("after step 'mounts'"), error.message);
  assert(error.hint?.includes("resume"), error.hint);
  const name = "tachikoma-myapp-p1";
  const rec = await h.store.get(name);
  assertEquals(rec?.status, "running");
  assertEquals(rec?.provisioned?.complete, false);
  assertEquals(rec?.provisioned?.last_step, "mounts");
  assertEquals(rec?.provisioned?.version, 3);

  const again = await h.service.spawn({ branch: "p1" });
  assertEquals(again.action, "reconnected");
  assertEquals(again.provisioning.reason, "incomplete");
  assertEquals(again.provisioning.resumed_after, "mounts");
  assertEquals(h.provisioner.runs, [["keys", "mounts"], ["env", "claude"]]);
  const done = await h.store.get(name);
  assertEquals(done?.provisioned?.complete, true);
  assertEquals(done?.provisioned?.last_step, "claude");
  assert(h.reporter.events.includes(`note resuming provisioning of ${name} after step 'mounts'`));
});

Deno.test("spawn: older recipe version → full provisioning; --reprovision re-runs changed steps", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "p2" });
  h.provisioner.version = 4;
  const outdated = await h.service.spawn({ branch: "p2" });
  assertEquals(outdated.provisioning.reason, "outdated");
  assertEquals(h.provisioner.runs.length, 2);
  assertEquals((await h.store.get(name))?.provisioned?.version, 4);

  await h.service.spawn({ branch: "p2", reprovision: true });
  assertEquals(h.provisioner.runs.length, 2, "nothing changed: nothing re-run");
  assert(h.reporter.events.includes("note nothing to reprovision: no step's inputs changed"));

  h.provisioner.inputs.env = "env-v2";
  const re = await h.service.spawn({ branch: "p2", reprovision: true });
  assertEquals(re.provisioning.reason, "reprovision");
  assertEquals(h.provisioner.runs.at(-1), ["env"]);
  const rec = await h.store.get(name);
  assertEquals(rec?.provisioned?.fingerprints?.env, "env-v2");
  assertEquals(rec?.provisioned?.complete, true);
  await h.service.spawn({ branch: "p2", reprovision: true });
  assertEquals(h.provisioner.runs.length, 3, "fingerprint saved: not re-run again");
});

Deno.test("spawn: tachikoma records without provisioning info, vanished and foreign sandboxes", async () => {
  await using h = await harness();
  // A record from tachikoma (no `provisioned`) whose VM runs: provisioned again.
  const { name } = await h.service.spawn({ branch: "legacy" });
  await h.store.update((s) => void delete s.vms[0].provisioned);
  const legacy = await h.service.spawn({ branch: "legacy" });
  assertEquals(legacy.provisioning.reason, "unrecorded");

  // Gone behind our back: created again.
  await h.backend.vanish(name);
  const recreated = await h.service.spawn({ branch: "legacy" });
  assertEquals(recreated.action, "created");
  assertEquals(recreated.provisioning.reason, "new");
  assert(h.reporter.events.some((e) => e.includes("is gone from memory; creating it again")));

  // The engine has it but state does not: adopted, provisioned.
  await h.store.remove(name);
  const adopted = await h.service.spawn({ branch: "legacy" });
  assertEquals(adopted.action, "reconnected");
  assertEquals(adopted.provisioning.reason, "unrecorded");
  assertEquals((await h.backend.calls("create")).length, 2);
});

Deno.test("spawn: two spawns of one branch at once create it once; the second reconnects", async () => {
  await using h = await harness();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let inCreate!: () => void;
  const creating = new Promise<void>((r) => (inCreate = r));
  let creates = 0;
  h.backend.configure({
    onCall: async (method) => {
      if (method === "create" && creates++ === 0) {
        inCreate();
        await gate;
      }
    },
  });
  // The second spawn logs that it waits for the sandbox's lock (held by the first, in create).
  let blocked!: () => void;
  const waiting = new Promise<void>((r) => (blocked = r));
  const stop = log.listen((_level, line) => {
    if (line.startsWith("waiting for sandbox 'tachikoma-myapp-race'")) blocked();
  });
  try {
    const first = h.service.spawn({ branch: "race" });
    await creating;
    const second = new SandboxService(h.deps, h.repo.root).spawn({ branch: "race" });
    await waiting;
    release();
    const [ra, rb] = await Promise.all([first, second]);
    assertEquals([ra.action, rb.action], ["created", "reconnected"]);
  } finally {
    stop();
    release();
  }
  assertEquals((await h.backend.calls("create")).length, 1);
  assertEquals(h.provisioner.runs.length, 1);
  assertEquals((await h.store.read()).vms.length, 1);
});

Deno.test("spawn: colliding branch names get distinct sandboxes", async () => {
  await using h = await harness();
  const a = await h.service.spawn({ branch: "feat/x" });
  const b = await h.service.spawn({ branch: "feat-x" });
  assertEquals(a.name, "tachikoma-myapp-feat-x");
  assert(b.name.startsWith("tachikoma-myapp-feat-x-") && b.name !== a.name, b.name);
  assert(a.worktree.path !== b.worktree.path);
  assertEquals((await h.store.get(b.name))?.branch, "feat-x");
});

Deno.test("spawn: current branch, detached HEAD, main checkout, linked worktree, hostile name", async () => {
  await using h = await harness();
  // The main checkout's branch is never handed to a sandbox.
  await assertRejects(() => h.service.spawn({}), ConflictError, "main checkout");
  assertEquals((await h.backend.list()).length, 0);

  // From a linked worktree: that worktree, the main repo's name and .git.
  await gitIn(h.repo.root, "worktree", "add", "-q", "-b", "mine", `${h.repo.dir}/wt-mine`);
  const linked = await new SandboxService(h.deps, `${h.repo.dir}/wt-mine`).spawn({});
  assertEquals(linked.name, "tachikoma-myapp-mine");
  assertEquals(linked.worktree.path, `${h.repo.dir}/wt-mine`);
  assertEquals(linked.worktree.action, "reused");
  const shares = (await h.backend.peek(linked.name))?.shares ?? [];
  assertEquals(shares.find((s) => s.name === "git")?.hostPath, `${h.repo.root}/.git`);
  assertEquals(
    shares.find((s) => s.name === "git-worktree")?.hostPath,
    `${h.repo.root}/.git/worktrees/wt-mine`,
  );
  assertEquals((await h.store.get(linked.name))?.repo_root, h.repo.root);

  // Detached HEAD: the short commit names the branch.
  await gitIn(`${h.repo.dir}/wt-mine`, "checkout", "-q", "--detach");
  const short = await gitIn(h.repo.root, "rev-parse", "--short", "HEAD");
  const detached = await new SandboxService(h.deps, `${h.repo.dir}/wt-mine`).spawn({});
  assertEquals(detached.name, `tachikoma-myapp-${short}`);
  assertEquals(await gitIn(detached.worktree.path, "branch", "--show-current"), short);

  // Hostile but valid branch name: one path component, exact branch.
  const hostile = "fé/$(touch${IFS}pwned)`id`'\"";
  const r = await h.service.spawn({ branch: hostile });
  assertEquals(r.record.branch, hostile);
  assertEquals(await gitIn(r.worktree.path, "branch", "--show-current"), hostile);
  assertEquals(r.worktree.path.slice(h.repo.dir.length + 1).includes("/"), false);
  assertEquals(await exists(`${h.repo.dir}/pwned`), false);
  assertEquals(await exists(`${h.repo.root}/pwned`), false);
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("spawn: a stopping sandbox is waited for, then started; another backend's record is replaced", async () => {
  await using h = await harness();
  const { name } = await h.service.spawn({ branch: "st" });
  await h.backend.mutate(name, (sb) => void (sb.state = "stopping"));
  let gets = 0;
  h.backend.configure({
    onCall: async (method) => {
      if (method === "get" && ++gets === 3) {
        await h.backend.mutate(name, (sb) => void (sb.state = "stopped"));
      }
    },
  });
  const started = await h.service.spawn({ branch: "st" });
  assertEquals(started.action, "started");
  assert(gets >= 3, "polled until stopped");

  await h.store.update((s) => void (s.vms[0].backend = "tart"));
  await h.backend.vanish(name);
  const moved = await h.service.spawn({ branch: "st" });
  assertEquals(moved.action, "created");
  assert(
    h.reporter.events.some((e) => e.includes("was on the tart backend")),
    h.reporter.events.join("\n"),
  );
  assertEquals((await h.store.get(name))?.backend, "memory");
});

Deno.test("spawn: reconnecting to a current sandbox does not load the provisioner", async () => {
  await using h = await harness();
  let loads = 0;
  h.deps.provisioner = () => {
    loads++;
    return Promise.resolve(h.provisioner);
  };
  h.deps.provisionerVersion = 3;
  const service = new SandboxService(h.deps, h.repo.root);
  await service.spawn({ branch: "fast" });
  assertEquals(loads, 1, "a new sandbox is provisioned");
  await service.spawn({ branch: "fast" });
  assertEquals(loads, 1, "complete at the current recipe: not loaded");
  // A newer recipe (the cached version says 4): loaded, and everything re-run.
  h.deps.provisionerVersion = 4;
  h.provisioner.version = 4;
  const again = await new SandboxService(h.deps, h.repo.root).spawn({ branch: "fast" });
  assertEquals(loads, 2);
  assertEquals(again.provisioning.reason, "outdated");
});
