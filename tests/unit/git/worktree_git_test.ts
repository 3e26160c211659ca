/**
 * Host git never follows what a sandbox can write: the worktree's `.git` file, its admin dir's
 * `gitdir`/`commondir`, `config.worktree`, include targets inside shared paths. Each trick is
 * planted in a real repository (as a sandbox would through its shares); host git must run
 * nothing and name the problem, and the link files are put back.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import {
  checkConfigOrigins,
  gitInWorktree,
  repairWorktreeLinks,
  resolveWorktreeGit,
  safeWorktreeGit,
  WorktreeGitError,
} from "../../../src/git/worktree_git.ts";
import { openRepo, openRepoFast } from "../../../src/git/repo.ts";
import { removeWorktree } from "../../../src/git/worktree.ts";
import { defaultRunner } from "../../../src/lib/process.ts";
import { UsageError } from "../../../src/lib/errors.ts";
import { gitIn, makeRepo } from "../core/helpers.ts";

const runner = defaultRunner;

async function fixture() {
  const repo = await makeRepo("app");
  const wt = `${repo.dir}/app-feat`;
  await gitIn(repo.root, "worktree", "add", "-q", "-b", "feat", wt);
  const marker = `${repo.dir}/PWNED`;
  return {
    repo,
    wt,
    marker,
    common: `${repo.root}/.git`,
    admin: `${repo.root}/.git/worktrees/app-feat`,
  };
}

async function exists(path: string): Promise<boolean> {
  return await Deno.lstat(path).then(() => true, () => false);
}

Deno.test("resolveWorktreeGit: from the main checkout, never from the .git file", async () => {
  const f = await fixture();
  await using _ = f.repo;
  const w = await resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt });
  assertEquals(w, { commonDir: f.common, gitDir: f.admin, workTree: f.wt });
  // The sandbox points its .git file elsewhere: the answer does not change.
  await Deno.writeTextFile(`${f.wt}/.git`, `gitdir: ${f.wt}/evil\n`);
  assertEquals(await resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt }), w);
  // Another entry claiming the same worktree (a sandbox rewrote its own gitdir): refused.
  await gitIn(f.repo.root, "worktree", "add", "-q", "-b", "other", `${f.repo.dir}/other`);
  await Deno.writeTextFile(`${f.common}/worktrees/other/gitdir`, `${f.wt}/.git\n`);
  await assertRejects(
    () => resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt }),
    WorktreeGitError,
    "more than one worktree entry",
  );
  // The main checkout itself is never a sandbox's worktree.
  await assertRejects(
    () => resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.repo.root }),
    WorktreeGitError,
    "is the main checkout",
  );
});

Deno.test("resolveWorktreeGit: no git process for a plain main checkout, git's answer exactly, even through a symlink", async () => {
  const f = await fixture();
  await using _ = f.repo;
  const calls: string[][] = [];
  const recording = {
    run: (cmd: string, args: string[], options?: Parameters<typeof runner.run>[2]) => {
      calls.push([cmd, ...args]);
      return runner.run(cmd, args, options);
    },
  };
  // The main checkout named through a symlink: git answers real paths, and wrote the real one
  // into the worktree's .git file (the guest's git dir link is made at that path).
  const via = `${f.repo.dir}/via`;
  await Deno.symlink(f.repo.root, via);
  const asked = await gitIn(via, "rev-parse", "--path-format=absolute", "--git-common-dir");
  const w = await resolveWorktreeGit({ runner: recording, mainRoot: via, workTree: f.wt });
  assertEquals(calls, []);
  assertEquals(w.commonDir, asked.trim());
  assertEquals(`gitdir: ${w.gitDir}\n`, await Deno.readTextFile(`${f.wt}/.git`));
  // A variable that moves the repository: git decides.
  Deno.env.set("GIT_DIR", `${f.common}`);
  try {
    await resolveWorktreeGit({ runner: recording, mainRoot: via, workTree: f.wt });
  } finally {
    Deno.env.delete("GIT_DIR");
  }
  assertEquals(calls.length, 1, JSON.stringify(calls));
  // So does a main checkout git would not take as it is (a commondir file).
  await Deno.writeTextFile(`${f.common}/commondir`, ".\n");
  await resolveWorktreeGit({ runner: recording, mainRoot: via, workTree: f.wt }).catch(() => {});
  assertEquals(calls.length, 2, JSON.stringify(calls));
  assert(calls.every((c) => c.includes("--git-common-dir")), JSON.stringify(calls));
});

Deno.test("repairWorktreeLinks: a rewritten, replaced or removed link file is put back", async () => {
  const f = await fixture();
  await using _ = f.repo;
  const w = await resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt });
  assertEquals(await repairWorktreeLinks(w), [], "nothing to do on a fresh worktree");
  const dotGit = await Deno.readTextFile(`${f.wt}/.git`);
  const commondir = await Deno.readTextFile(`${f.admin}/commondir`);
  const gitdir = await Deno.readTextFile(`${f.admin}/gitdir`);
  // A crafted repository in the worktree, pointed at by every link the sandbox can write.
  await Deno.mkdir(`${f.wt}/evil`);
  await Deno.writeTextFile(`${f.wt}/evil/config`, `[core]\n\tfsmonitor = touch ${f.marker}\n`);
  await Deno.remove(`${f.wt}/.git`);
  await Deno.mkdir(`${f.wt}/.git`); // a directory instead of the file
  await Deno.writeTextFile(`${f.wt}/.git/config`, `[core]\n\tfsmonitor = touch ${f.marker}\n`);
  await Deno.writeTextFile(`${f.admin}/commondir`, `${f.wt}/evil\n`);
  await Deno.remove(`${f.admin}/gitdir`);
  await Deno.symlink("/etc/passwd", `${f.admin}/gitdir`);
  const repaired = await repairWorktreeLinks(w);
  assertEquals(
    repaired.sort(),
    [`${f.admin}/commondir`, `${f.admin}/gitdir`, `${f.wt}/.git`].sort(),
  );
  assertEquals(await Deno.readTextFile(`${f.wt}/.git`), dotGit);
  assertEquals(await Deno.readTextFile(`${f.admin}/commondir`), commondir);
  assertEquals(await Deno.readTextFile(`${f.admin}/gitdir`), gitdir);
  assert((await Deno.lstat(`${f.admin}/gitdir`)).isFile);
  // The user's own git in the worktree works again and ran nothing.
  assertEquals(await gitIn(f.wt, "rev-parse", "--abbrev-ref", "HEAD"), "feat");
  assertEquals(await exists(f.marker), false);
});

Deno.test("host git pins its dirs: a crafted .git file and commondir are never followed", async () => {
  const f = await fixture();
  await using _ = f.repo;
  const w = await resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt });
  await Deno.mkdir(`${f.wt}/evil/hooks`, { recursive: true });
  await Deno.writeTextFile(
    `${f.wt}/evil/config`,
    `[core]\n\tfsmonitor = touch ${f.marker}\n\thooksPath = ${f.wt}/evil/hooks\n` +
      `[filter "x"]\n\tclean = touch ${f.marker}\n`,
  );
  await Deno.writeTextFile(`${f.wt}/.gitattributes`, "* filter=x\n");
  await Deno.writeTextFile(`${f.wt}/.git`, `gitdir: ${f.wt}/evil\n`);
  await Deno.writeTextFile(`${f.admin}/commondir`, `${f.wt}/evil\n`);
  const r = await gitInWorktree({ runner }, w, ["status", "--porcelain"]);
  assertEquals(r.code, 0, r.stderr);
  const a = await gitInWorktree({ runner }, w, ["add", "-A"]);
  assertEquals(a.code, 0, a.stderr);
  assertEquals(await exists(f.marker), false, "nothing the sandbox planted ran");
});

Deno.test("checkConfigOrigins: config the sandbox can write stops host git", async () => {
  const f = await fixture();
  await using _ = f.repo;
  const w = await resolveWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt });
  await checkConfigOrigins(runner, w); // clean repo: fine
  // config.worktree in the sandbox's admin dir, read once the repo enables worktreeConfig.
  await gitIn(f.repo.root, "config", "extensions.worktreeConfig", "true");
  await Deno.writeTextFile(
    `${f.admin}/config.worktree`,
    `[core]\n\tsshCommand = touch ${f.marker}\n`,
  );
  const e1 = await assertRejects(() => checkConfigOrigins(runner, w), WorktreeGitError);
  assertStringIncludes(e1.message, "core.sshcommand");
  assertStringIncludes(e1.message, "the sandbox can write");
  await Deno.remove(`${f.admin}/config.worktree`);
  await gitIn(f.repo.root, "config", "--unset", "extensions.worktreeConfig");
  // An include (the user's own config) whose target lies in the worktree.
  await gitIn(f.repo.root, "config", "include.path", `${f.wt}/inc.cfg`);
  await Deno.writeTextFile(`${f.wt}/inc.cfg`, `[credential]\n\thelper = !touch ${f.marker}\n`);
  const e2 = await assertRejects(
    () => safeWorktreeGit({ runner, mainRoot: f.repo.root, workTree: f.wt }),
    WorktreeGitError,
  );
  assertStringIncludes(e2.message, `${f.wt}/inc.cfg`);
  assertEquals(await exists(f.marker), false);
});

Deno.test("openRepo: a worktree whose .git file names another repository is refused", async () => {
  const f = await fixture();
  await using _ = f.repo;
  await using other = await makeRepo("other");
  await gitIn(other.root, "worktree", "add", "-q", "-b", "x", `${other.dir}/other-x`);
  // Honest: both ways agree.
  assertEquals((await openRepo(runner, f.wt)).mainRoot, f.repo.root);
  assertEquals((await openRepoFast(runner, f.wt)).mainRoot, f.repo.root);
  for (
    const target of [
      `${other.root}/.git/worktrees/other-x`, // another repo's real worktree entry
      `${f.wt}/crafted/.git/worktrees/app-feat`, // a repository crafted inside the worktree
    ]
  ) {
    await Deno.mkdir(`${f.wt}/crafted/.git/worktrees/app-feat`, { recursive: true });
    await Deno.mkdir(`${f.wt}/crafted/.git/objects`, { recursive: true });
    await Deno.mkdir(`${f.wt}/crafted/.git/refs`, { recursive: true });
    await Deno.writeTextFile(`${f.wt}/crafted/.git/HEAD`, "ref: refs/heads/main\n");
    await Deno.writeTextFile(
      `${f.wt}/crafted/.git/worktrees/app-feat/HEAD`,
      "ref: refs/heads/feat\n",
    );
    await Deno.writeTextFile(`${f.wt}/crafted/.git/worktrees/app-feat/commondir`, "../..\n");
    await Deno.writeTextFile(`${f.wt}/crafted/.git/worktrees/app-feat/gitdir`, `${f.wt}/.git\n`);
    await Deno.writeTextFile(`${f.wt}/.git`, `gitdir: ${target}\n`);
    await assertRejects(() => openRepo(runner, f.wt), UsageError, "does not know it");
    await assertRejects(() => openRepoFast(runner, f.wt), UsageError, "does not know it");
  }
});

Deno.test("removeWorktree: a clean worktree goes, without following its .git file", async () => {
  const f = await fixture();
  await using _ = f.repo;
  await Deno.mkdir(`${f.wt}/evil`);
  await Deno.writeTextFile(`${f.wt}/evil/config`, `[core]\n\tfsmonitor = touch ${f.marker}\n`);
  await Deno.writeTextFile(`${f.wt}/.git`, `gitdir: ${f.wt}/evil\n`);
  // Untracked dir: kept (dirty).
  const kept = await removeWorktree(runner, f.repo.root, f.wt);
  assertEquals(kept.removed, false);
  assertStringIncludes(kept.reason ?? "", "uncommitted change");
  await Deno.remove(`${f.wt}/evil`, { recursive: true });
  const gone = await removeWorktree(runner, f.repo.root, f.wt);
  assertEquals(gone, { removed: true, reason: null });
  assertEquals(await exists(f.wt), false);
  assertEquals(await exists(f.admin), false);
  assertEquals(
    await gitIn(f.repo.root, "worktree", "list", "--porcelain").then((t) => t.includes(f.wt)),
    false,
  );
  assertEquals(await exists(f.marker), false);
});
