import { assert, assertEquals, assertRejects } from "@std/assert";
import { defaultRunner } from "../../../src/lib/process.ts";
import { ConflictError, UsageError } from "../../../src/lib/errors.ts";
import {
  ensureWorktree,
  isWorktreeOnBranch,
  listWorktrees,
  openRepo,
  openRepoFast,
  parseWorktreeList,
  removeWorktree,
  resolveWorktreeDir,
  validateBranchName,
} from "../../../src/git/mod.ts";
import { gitIn, makeRepo } from "../core/helpers.ts";

const run = defaultRunner;

Deno.test("git: openRepo in the main checkout, a linked worktree, detached, unborn, outside", async () => {
  await using repo = await makeRepo("my app");
  const main = await openRepo(run, repo.root);
  assertEquals(main.mainRoot, repo.root);
  assertEquals(main.toplevel, repo.root);
  assertEquals(main.commonDir, `${repo.root}/.git`);
  assertEquals(main.name, "my app");
  assertEquals(main.branch, "main");
  assertEquals(main.linked, false);

  await gitIn(repo.root, "worktree", "add", "-q", "-b", "feat/x", `${repo.dir}/wt`);
  await Deno.mkdir(`${repo.dir}/wt/sub`);
  const linked = await openRepo(run, `${repo.dir}/wt/sub`);
  assertEquals(linked.mainRoot, repo.root, "the repo is the main one, not the worktree");
  assertEquals(linked.name, "my app");
  assertEquals(linked.commonDir, `${repo.root}/.git`);
  assertEquals(linked.toplevel, `${repo.dir}/wt`);
  assertEquals(linked.branch, "feat/x");
  assertEquals(linked.linked, true);

  await gitIn(`${repo.dir}/wt`, "checkout", "-q", "--detach");
  const detached = await openRepo(run, `${repo.dir}/wt`);
  assertEquals(detached.branch, null);
  assertEquals(detached.detachedAt, await gitIn(repo.root, "rev-parse", "--short", "HEAD"));

  const unborn = `${repo.dir}/unborn`;
  await Deno.mkdir(unborn);
  await gitIn(unborn, "init", "-q", "-b", "trunk");
  assertEquals((await openRepo(run, unborn)).branch, "trunk");

  const outside = await Deno.makeTempDir();
  try {
    await assertRejects(() => openRepo(run, outside), UsageError, "not inside a git work tree");
  } finally {
    await Deno.remove(outside);
  }
});

Deno.test("git: branch names are validated by git, hostile but valid names pass", async () => {
  await using repo = await makeRepo();
  for (const bad of ["-x", "a b", "a..b", "x\ny", "@{-1}", ""]) {
    await assertRejects(
      () => validateBranchName(run, repo.root, bad),
      UsageError,
      "invalid branch",
    );
  }
  for (const ok of ["feat/x", "fé/$(x)`y`", "it's", 'a"b']) {
    await validateBranchName(run, repo.root, ok);
  }
});

Deno.test("git: porcelain -z parsing: locked, prunable, detached, bare", () => {
  const text = [
    "worktree /r",
    "HEAD abc",
    "branch refs/heads/main",
    "",
    "worktree /r-d",
    "HEAD abc",
    "detached",
    "locked my reason",
    "",
    "worktree /r-gone\nwith newline",
    "HEAD abc",
    "branch refs/heads/gone",
    "prunable gitdir file points to non-existent location",
    "",
    "",
  ].join("\0");
  const entries = parseWorktreeList(text);
  assertEquals(entries.length, 3);
  assertEquals(entries[0], {
    path: "/r",
    head: "abc",
    branch: "main",
    detached: false,
    bare: false,
    locked: null,
    prunable: null,
    main: true,
  });
  assertEquals(entries[1].locked, "my reason");
  assertEquals(entries[1].detached, true);
  assertEquals(entries[2].path, "/r-gone\nwith newline");
  assertEquals(entries[2].prunable, "gitdir file points to non-existent location");
});

Deno.test("git: ensureWorktree creates beside the repo, new branch from HEAD, main untouched", async () => {
  await using repo = await makeRepo();
  const status = () => gitIn(repo.root, "status", "--porcelain");
  const ctx = await openRepo(run, repo.root);
  const head = await gitIn(repo.root, "rev-parse", "--short", "HEAD");
  const created = await ensureWorktree(run, {
    repo: ctx,
    branch: "feature/new",
    dirName: "myapp-feature-new",
  });
  assertEquals(created.path, `${repo.dir}/myapp-feature-new`);
  assertEquals(created.action, "created");
  assertEquals(created.branchCreated, true);
  assertEquals(created.base, head);
  assertEquals(await gitIn(created.path, "branch", "--show-current"), "feature/new");
  assertEquals(await status(), "", "main checkout untouched");
  assertEquals(await gitIn(repo.root, "branch", "--show-current"), "main");

  // Reused on the next call, wherever it is.
  const again = await ensureWorktree(run, {
    repo: ctx,
    branch: "feature/new",
    dirName: "ignored",
  });
  assertEquals(again, { ...created, action: "reused", branchCreated: false, base: null });

  // An existing branch gets a worktree without creating anything.
  await gitIn(repo.root, "branch", "existing");
  const existing = await ensureWorktree(run, {
    repo: ctx,
    branch: "existing",
    dirName: "wt-existing",
    worktreeDir: "../elsewhere",
  });
  assertEquals(existing.path, `${repo.dir}/elsewhere/wt-existing`);
  assertEquals(existing.branchCreated, false);
  assertEquals(await status(), "");
});

Deno.test("git: the branch of the main checkout is refused with a way out", async () => {
  await using repo = await makeRepo();
  const ctx = await openRepo(run, repo.root);
  const error = await assertRejects(
    () => ensureWorktree(run, { repo: ctx, branch: "main", dirName: "myapp-main" }),
    ConflictError,
    "checked out in the main checkout",
  );
  assert(error.hint?.includes("switch"), error.hint);
  assertEquals((await listWorktrees(run, repo.root)).length, 1, "nothing created");
});

Deno.test("git: missing, locked-missing and occupied targets get clear messages", async () => {
  await using repo = await makeRepo();
  const ctx = await openRepo(run, repo.root);
  await gitIn(repo.root, "worktree", "add", "-q", "-b", "gone", `${repo.dir}/wt-gone`);
  await Deno.remove(`${repo.dir}/wt-gone`, { recursive: true });
  const missing = await assertRejects(
    () => ensureWorktree(run, { repo: ctx, branch: "gone", dirName: "x" }),
    ConflictError,
    "is missing",
  );
  assert(missing.hint?.includes("worktree prune"), missing.hint);

  await gitIn(repo.root, "worktree", "add", "-q", "-b", "usb", `${repo.dir}/wt-usb`);
  await gitIn(repo.root, "worktree", "lock", "--reason", "on a usb disk", `${repo.dir}/wt-usb`);
  await Deno.remove(`${repo.dir}/wt-usb`, { recursive: true });
  const locked = await assertRejects(
    () => ensureWorktree(run, { repo: ctx, branch: "usb", dirName: "x" }),
    ConflictError,
    "missing and locked (on a usb disk)",
  );
  assert(locked.hint?.includes("worktree unlock"), locked.hint);

  await Deno.mkdir(`${repo.dir}/occupied`);
  await Deno.writeTextFile(`${repo.dir}/occupied/file`, "mine");
  await assertRejects(
    () => ensureWorktree(run, { repo: ctx, branch: "new", dirName: "occupied" }),
    ConflictError,
    "already exists and is not a worktree",
  );
  assertEquals(await Deno.readTextFile(`${repo.dir}/occupied/file`), "mine");

  // After `git worktree prune` (the way out), the branch gets a fresh worktree.
  await gitIn(repo.root, "worktree", "prune");
  const fresh = await ensureWorktree(run, { repo: ctx, branch: "gone", dirName: "wt-gone2" });
  assertEquals(fresh.action, "created");
  assertEquals(fresh.branchCreated, false);
});

Deno.test("git: removeWorktree removes clean worktrees only, never the main checkout", async () => {
  await using repo = await makeRepo();
  const ctx = await openRepo(run, repo.root);
  const a = await ensureWorktree(run, { repo: ctx, branch: "a", dirName: "wt-a" });
  const b = await ensureWorktree(run, { repo: ctx, branch: "b", dirName: "wt-b" });
  await Deno.writeTextFile(`${b.path}/work.txt`, "unsaved");
  assertEquals(await removeWorktree(run, repo.root, a.path), { removed: true, reason: null });
  assert(!(await exists(a.path)));
  const kept = await removeWorktree(run, repo.root, b.path);
  assertEquals(kept.removed, false);
  assertEquals(kept.reason, "it has 1 uncommitted change");
  assertEquals(await Deno.readTextFile(`${b.path}/work.txt`), "unsaved");
  assertEquals((await removeWorktree(run, repo.root, repo.root)).reason, "it is the main checkout");
  assertEquals(await gitIn(repo.root, "branch", "--list", "a"), "a", "the branch is kept");
});

Deno.test("git: worktree_dir resolution", () => {
  assertEquals(resolveWorktreeDir("/src/app"), "/src");
  assertEquals(resolveWorktreeDir("/src/app", "~/wt", "/home/u"), "/home/u/wt");
  assertEquals(resolveWorktreeDir("/src/app", "../trees/"), "/src/trees");
  assertEquals(resolveWorktreeDir("/src/app", "/abs"), "/abs");
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

Deno.test("git: isWorktreeOnBranch (spawn's no-process fast path) agrees with git", async () => {
  await using repo = await makeRepo();
  await using other = await makeRepo("other");
  const ctx = await openRepo(run, repo.root);
  const wt = await ensureWorktree(run, { repo: ctx, branch: "f/x", dirName: "wt-fx" });
  const common = `${repo.root}/.git`;
  assertEquals(await isWorktreeOnBranch(wt.path, "f/x", common), true);
  assertEquals(await isWorktreeOnBranch(wt.path, "f", common), false);
  assertEquals(await isWorktreeOnBranch(wt.path, "f/x", `${other.root}/.git`), false);
  assertEquals(
    await isWorktreeOnBranch(repo.root, "main", common),
    false,
    "never the main checkout",
  );
  assertEquals(await isWorktreeOnBranch(`${repo.dir}/nope`, "f/x", common), false);
  await gitIn(wt.path, "switch", "-q", "-c", "moved");
  assertEquals(await isWorktreeOnBranch(wt.path, "f/x", common), false, "switched away");
});

Deno.test("git: openRepoFast answers exactly like openRepo (main, linked, subdir, detached, unborn)", async () => {
  await using repo = await makeRepo();
  await gitIn(repo.root, "worktree", "add", "-q", "-b", "side", `${repo.dir}/wt-side`);
  await Deno.mkdir(`${repo.dir}/wt-side/deep/er`, { recursive: true });
  await gitIn(repo.root, "worktree", "add", "-q", "--detach", `${repo.dir}/wt-det`);
  const unborn = `${repo.dir}/unborn`;
  await Deno.mkdir(unborn);
  await gitIn(unborn, "init", "-q", "-b", "fresh");
  for (const cwd of [repo.root, `${repo.dir}/wt-side/deep/er`, `${repo.dir}/wt-det`, unborn]) {
    assertEquals(await openRepoFast(run, cwd), await openRepo(run, cwd), cwd);
  }
  await assertRejects(() => openRepoFast(run, `${repo.root}/.git`), UsageError);
  await assertRejects(() => openRepoFast(run, repo.dir), UsageError);
});

Deno.test("git: openRepoFast in a linked worktree runs no git when the main checkout is plain", async () => {
  await using repo = await makeRepo();
  await gitIn(repo.root, "worktree", "add", "-q", "-b", "side", `${repo.dir}/wt-side`);
  const calls: string[][] = [];
  const recording = {
    run: (cmd: string, args: string[], options?: Parameters<typeof run.run>[2]) => {
      calls.push([cmd, ...args]);
      return run.run(cmd, args, options);
    },
  };
  const wt = `${repo.dir}/wt-side`;
  assertEquals(await openRepoFast(recording, wt), await openRepo(run, wt));
  assertEquals(calls, []);
  // A main checkout whose .git git would not take as it is (here: a commondir file): git decides.
  await Deno.writeTextFile(`${repo.root}/.git/commondir`, ".\n");
  await openRepoFast(recording, wt).catch(() => {});
  assert(calls.some((c) => c.includes("--git-common-dir")), JSON.stringify(calls));
});
