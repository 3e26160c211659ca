/**
 * Code by git on the memory double with `mountHost: false` and a guest on disk (real git on
 * both sides): spawn shares nothing and brings the branch in as a repository of the guest's
 * own; `pull` fast-forwards the host branch and its worktree, refuses a dirty worktree that
 * blocks it and diverged histories; `list` shows the recorded ahead/behind, `status` asks the
 * guest; `pr` pulls first; a sandbox that mounts the host has nothing to pull.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { gitIn, harness } from "./helpers.ts";
import { gitHarness, guestGit, HOSTILE_BRANCH } from "./disk_guest.ts";
import { pullFirst, pullSandbox } from "../../../src/core/code_sync.ts";
import { ConflictError } from "../../../src/lib/errors.ts";

Deno.test("code by git: spawn brings the branch in, the guest commits, pull fast-forwards", async () => {
  const { h, guest, service } = await gitHarness();
  await using _ = h;
  const spawned = await service.spawn({ branch: HOSTILE_BRANCH });
  // Nothing shared: the engine got no share, mounted none.
  const starts = (await guest.calls()).filter((c) => c.method === "start");
  assertEquals(starts.map((c) => c.detail?.shares), [[]]);
  // A repository of the guest's own, on the branch, the same commit as the host.
  const host = await gitIn(spawned.worktree.path, "rev-parse", "HEAD");
  assertEquals(await guestGit(guest, "rev-parse", "HEAD"), host);
  assertEquals(await guestGit(guest, "symbolic-ref", "--short", "HEAD"), HOSTILE_BRANCH);
  assertEquals(await guestGit(guest, "remote"), "");
  assert((await Deno.stat(`${guest.codeDir}/.git`)).isDirectory, "a .git of its own");
  // spawn recorded where it stands
  const record = (await h.store.get(spawned.name))!;
  assertEquals(record.code_sync?.ahead, 0);
  assertEquals(record.code_sync?.behind, 0);
  assertEquals(record.code_sync?.guest_head, host);

  // A commit in the guest, then pull.
  await Deno.writeTextFile(`${guest.codeDir}/from-guest.txt`, "made in the guest\n");
  await guestGit(guest, "add", "from-guest.txt");
  await guestGit(guest, "commit", "-q", "-m", "guest commit");
  const made = await guestGit(guest, "rev-parse", "HEAD");
  // status asks the guest live; list shows what was recorded then
  const status = await service.status(spawned.name);
  assertEquals([status.sandbox.code_sync?.ahead, status.sandbox.code_sync?.behind], [1, 0]);
  const listed = await service.list({ all: true });
  assertEquals(listed.sandboxes[0].code_sync?.ahead, 1);

  const pulled = await pullSandbox(service.deps, record);
  assertEquals(pulled.action, "fast_forward");
  assertEquals([pulled.from, pulled.to, pulled.commits], [host, made, 1]);
  assertEquals(pulled.worktree_updated, true);
  assertEquals(await gitIn(spawned.worktree.path, "rev-parse", "HEAD"), made);
  assertEquals(
    await Deno.readTextFile(`${spawned.worktree.path}/from-guest.txt`),
    "made in the guest\n",
  );
  assertEquals((await h.store.get(spawned.name))?.code_sync?.ahead, 0);
  // Again: nothing new.
  assertEquals((await pullSandbox(service.deps, record)).action, "up_to_date");

  // spawn again (reconnect + --reprovision): the guest's work is left alone.
  await Deno.writeTextFile(`${guest.codeDir}/wip.txt`, "uncommitted\n");
  await service.spawn({ branch: HOSTILE_BRANCH, reprovision: true });
  assertEquals(await Deno.readTextFile(`${guest.codeDir}/wip.txt`), "uncommitted\n");
});

Deno.test("code by git: a dirty worktree that blocks the fast-forward is refused, nothing moves", async () => {
  const { h, guest, service } = await gitHarness();
  await using _ = h;
  const spawned = await service.spawn({ branch: "feat/dirty" });
  const before = await gitIn(spawned.worktree.path, "rev-parse", "HEAD");
  await Deno.writeTextFile(`${guest.codeDir}/README`, "guest version\n");
  await guestGit(guest, "commit", "-q", "-am", "guest edits README");
  await Deno.writeTextFile(`${spawned.worktree.path}/README`, "host edit, not committed\n");
  const error = await assertRejects(
    () => pullSandbox(service.deps, spawned.record),
    ConflictError,
  );
  assertStringIncludes(error.message, "cannot fast-forward");
  assertEquals(await gitIn(spawned.worktree.path, "rev-parse", "HEAD"), before);
  assertEquals(
    await Deno.readTextFile(`${spawned.worktree.path}/README`),
    "host edit, not committed\n",
  );
});

Deno.test("code by git: diverged histories are refused naming both commits", async () => {
  const { h, guest, service } = await gitHarness();
  await using _ = h;
  const spawned = await service.spawn({ branch: "feat/div" });
  await Deno.writeTextFile(`${guest.codeDir}/g.txt`, "g\n");
  await guestGit(guest, "add", "g.txt");
  await guestGit(guest, "commit", "-q", "-m", "guest side");
  const theirs = await guestGit(guest, "rev-parse", "HEAD");
  await Deno.writeTextFile(`${spawned.worktree.path}/h.txt`, "h\n");
  await gitIn(spawned.worktree.path, "add", "h.txt");
  await gitIn(spawned.worktree.path, "commit", "-q", "-m", "host side");
  const ours = await gitIn(spawned.worktree.path, "rev-parse", "HEAD");
  const error = await assertRejects(
    () => pullSandbox(service.deps, spawned.record),
    ConflictError,
  );
  assertStringIncludes(error.message, "diverged");
  assertStringIncludes(error.message, theirs.slice(0, 12));
  assertStringIncludes(error.message, ours.slice(0, 12));
  assertStringIncludes(error.hint ?? "", "refs/tachikoma/pull/");
  assertEquals(await gitIn(spawned.worktree.path, "rev-parse", "HEAD"), ours);
  const sync = (await h.store.get(spawned.name))?.code_sync;
  assertEquals([sync?.ahead, sync?.behind], [1, 1]);
});

Deno.test("code by git: pr pulls first; a stopped sandbox is not asked (a notice)", async () => {
  const { h, guest, service } = await gitHarness();
  await using _ = h;
  const spawned = await service.spawn({ branch: "feat/pr" });
  await Deno.writeTextFile(`${guest.codeDir}/p.txt`, "p\n");
  await guestGit(guest, "add", "p.txt");
  await guestGit(guest, "commit", "-q", "-m", "for the pr");
  const made = await guestGit(guest, "rev-parse", "HEAD");
  const first = await pullFirst(service, spawned.record);
  assertEquals(first?.action, "fast_forward");
  assertEquals(await gitIn(spawned.worktree.path, "rev-parse", "HEAD"), made);
  await guest.stop(spawned.name);
  const stopped = await pullFirst(service, spawned.record);
  assertStringIncludes(stopped?.notice ?? "", "cannot be pulled");
});

Deno.test("pull on a sandbox that mounts the host: nothing to pull, a notice", async () => {
  await using h = await harness();
  const spawned = await h.service.spawn({ branch: "feat/shared" });
  const result = await pullSandbox(h.deps, spawned.record);
  assertEquals([result.mode, result.action], ["share", "shared"]);
  assertStringIncludes(result.notice ?? "", "nothing to pull");
  assertEquals(await pullFirst(h.service, spawned.record), null);
  assertEquals((await h.service.list({ all: true })).sandboxes[0].code_sync, null);
});
