/**
 * The git repository around a directory: its main checkout, common git dir, current branch
 * or detached commit. Run from inside a linked worktree, the repo is still the main one (its
 * name, root and `.git`), never the worktree (tachikoma's [BUG?] in spec §2.2 is fixed here).
 *
 * @module
 */
import type { CommandRunner } from "../lib/process.ts";
import { UsageError } from "../lib/errors.ts";
import { findRepo } from "../config/repo_root.ts";
import { git, GitError, gitOk } from "./run.ts";
import { gitLocationEnvSet, resolveWorktreeGit } from "./worktree_git.ts";
import { basename, dirname, realPathOr, resolvePath } from "../lib/paths.ts";

/** The repository around a directory. */
export interface RepoContext {
  /** Top level of the checkout containing the directory (a linked worktree or the main one). */
  toplevel: string;
  /** Root of the main checkout (where the common `.git` lives). */
  mainRoot: string;
  /** The common git directory (`<main>/.git`), shared into sandboxes as `dotgit`. */
  commonDir: string;
  /** Repo name: the main checkout's directory name (not slugified). */
  name: string;
  /** Current branch, or null when HEAD is detached. */
  branch: string | null;
  /** Short commit of a detached HEAD, else null. */
  detachedAt: string | null;
  /** True when the directory is inside a linked worktree, not the main checkout. */
  linked: boolean;
}

/**
 * Finds the repository around `cwd`. Throws {@link UsageError} outside a work tree.
 * Two git calls in the common case (one more when HEAD is detached or unborn).
 */
export async function openRepo(runner: CommandRunner, cwd: string): Promise<RepoContext> {
  const args = [
    "rev-parse",
    "--path-format=absolute",
    "--show-toplevel",
    "--git-common-dir",
    "--symbolic-full-name",
    "HEAD",
  ];
  let result = await git(runner, cwd, args);
  let headRef: string | null = null;
  if (result.code === 0) {
    const lines = result.stdout.split("\n");
    headRef = lines[2] ?? null;
  } else if (/ambiguous argument 'HEAD'|unknown revision/.test(result.stderr)) {
    // Unborn branch (no commit yet): ask without HEAD, then read the symbolic ref.
    result = await git(runner, cwd, args.slice(0, 4));
    if (result.code === 0) {
      const sym = await git(runner, cwd, ["symbolic-ref", "-q", "HEAD"]);
      headRef = sym.code === 0 ? sym.stdout.trim() : "HEAD";
    }
  }
  if (result.code !== 0) {
    if (/not a git repository|must be run in a work tree/.test(result.stderr)) {
      throw new UsageError(`not inside a git work tree: ${cwd}`, {
        hint: "run tachikoma inside a git repository, or name a sandbox (see `tachikoma list`)",
      });
    }
    throw new GitError(args, result);
  }
  const [toplevel, commonDir] = result.stdout.split("\n");
  const mainRoot = await mainRootOf(runner, toplevel, commonDir);
  if (toplevel !== mainRoot) await verifyLinked(runner, { toplevel, mainRoot, commonDir });
  let branch: string | null = null;
  let detachedAt: string | null = null;
  if (headRef && headRef.startsWith("refs/heads/")) {
    branch = headRef.slice("refs/heads/".length);
  } else {
    detachedAt = await gitOk(runner, toplevel, ["rev-parse", "--short", "HEAD"]);
  }
  return {
    toplevel,
    mainRoot,
    commonDir,
    name: basename(mainRoot),
    branch,
    detachedAt,
    linked: toplevel !== mainRoot,
  };
}

/**
 * {@link openRepo} without running git in the common case: the checkout is found by walking up
 * to `.git` (as git does) and the branch read from `HEAD`. Anything unusual — `GIT_DIR` or
 * `GIT_WORK_TREE` set, a detached or unborn HEAD, a reftable repo, a common dir not named
 * `.git`, a directory inside `.git` — falls back to {@link openRepo}, so the answer is always
 * git's. Saves two process spawns on every spawn/enter/exec.
 */
export async function openRepoFast(runner: CommandRunner, cwd: string): Promise<RepoContext> {
  if (gitLocationEnvSet()) return await openRepo(runner, cwd);
  const loc = findRepo(cwd);
  if (!loc || basename(loc.commonDir) !== ".git") return await openRepo(runner, cwd);
  const real = realPathOr(cwd);
  if (real === loc.gitDir || real.startsWith(loc.gitDir + "/")) return await openRepo(runner, cwd);
  let head: string;
  try {
    head = await Deno.readTextFile(`${loc.gitDir}/HEAD`);
  } catch {
    return await openRepo(runner, cwd);
  }
  const match = /^ref: refs\/heads\/([^\n]+)\n?$/.exec(head);
  if (!match || match[1] === ".invalid") return await openRepo(runner, cwd);
  if (loc.linkedWorktree) {
    await verifyLinked(runner, {
      toplevel: loc.root,
      mainRoot: loc.mainRoot,
      commonDir: loc.commonDir,
    });
  }
  // An unborn branch is fine too: its name is in HEAD either way.
  return {
    toplevel: loc.root,
    mainRoot: loc.mainRoot,
    commonDir: loc.commonDir,
    name: basename(loc.mainRoot),
    branch: match[1],
    detachedAt: null,
    linked: loc.linkedWorktree,
  };
}

/**
 * A linked worktree's `.git` file (and everything else in it) may have been written by a
 * sandbox, so the repository it names is believed only when the main checkout agrees: its
 * common dir lies outside the worktree and has exactly one worktree entry naming this worktree
 * (`worktree_git.ts`). Anything else is refused, so a crafted `.git` file cannot point tachikoma
 * at another directory of the host.
 */
async function verifyLinked(
  runner: CommandRunner,
  link: { toplevel: string; mainRoot: string; commonDir: string },
): Promise<void> {
  const { toplevel, mainRoot, commonDir } = link;
  const top = realPathOr(toplevel);
  const common = realPathOr(commonDir);
  let ok = common !== top && !common.startsWith(top + "/");
  if (ok) {
    try {
      const w = await resolveWorktreeGit({ runner, mainRoot, workTree: toplevel });
      ok = realPathOr(w.commonDir) === common;
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new UsageError(
      `${toplevel} says it is a worktree of ${mainRoot}, but that repository does not know it`,
      {
        hint: "its .git file was changed (a sandbox can write it); run tachikoma in the main " +
          "checkout, or restore the file: gitdir: <main>/.git/worktrees/<name>",
      },
    );
  }
}

async function mainRootOf(
  runner: CommandRunner,
  toplevel: string,
  commonDir: string,
): Promise<string> {
  if (basename(commonDir) === ".git") return dirname(commonDir);
  // A separate git dir (`git init --separate-git-dir`): the first worktree record is the main one.
  const text = await gitOk(runner, toplevel, ["worktree", "list", "--porcelain"]);
  const first = text.split("\n").find((l) => l.startsWith("worktree "));
  return first ? first.slice("worktree ".length) : toplevel;
}

/** Short (abbreviated) commit of a revision. */
export function shortCommit(runner: CommandRunner, cwd: string, rev = "HEAD"): Promise<string> {
  return gitOk(runner, cwd, ["rev-parse", "--short", "--verify", "--end-of-options", rev]);
}

/** True when the local branch exists. */
export async function branchExists(
  runner: CommandRunner,
  cwd: string,
  branch: string,
): Promise<boolean> {
  const r = await git(runner, cwd, ["show-ref", "--verify", "--quiet", `refs/heads/${branch}`]);
  return r.code === 0;
}

/** Remote-tracking refs named `<remote>/<branch>`. */
export async function remoteBranches(
  runner: CommandRunner,
  cwd: string,
  branch: string,
): Promise<string[]> {
  const out = await gitOk(runner, cwd, [
    "for-each-ref",
    "--format=%(refname:short)",
    `refs/remotes/*/${branch}`,
  ]);
  return out.split("\n").filter((l) => l !== "");
}

/**
 * Checks that `name` is a valid branch name (`git check-ref-format --branch`). Throws a
 * {@link UsageError} naming the value.
 */
export async function validateBranchName(
  runner: CommandRunner,
  cwd: string,
  name: string,
): Promise<void> {
  const bad = () =>
    new UsageError(`invalid branch name ${JSON.stringify(name)}`, {
      hint: "see `git check-ref-format --help` for the rules",
    });
  if (name === "" || name.startsWith("-") || name.includes("\n") || name.includes("\0")) {
    throw bad();
  }
  const r = await git(runner, cwd, ["check-ref-format", "--branch", name]);
  if (r.code !== 0 || r.stdout.trim() !== name) throw bad();
}

/** Files with uncommitted changes (porcelain lines); empty when clean. */
export async function dirtyFiles(runner: CommandRunner, dir: string): Promise<string[]> {
  const out = await gitOk(runner, dir, ["status", "--porcelain", "--untracked-files=normal"]);
  return out.split("\n").filter((l) => l !== "");
}

/**
 * The fast check spawn uses before listing worktrees: is `path` a linked worktree of the repo
 * whose common git dir is `commonDir`, with `branch` checked out? Reads `<path>/.git`, its
 * gitdir's `HEAD` and `commondir` — no git process. False means "not sure": ask git
 * (`ensureWorktree` in worktree.ts).
 */
export async function isWorktreeOnBranch(
  path: string,
  branch: string,
  commonDir: string,
): Promise<boolean> {
  try {
    const dotGit = await Deno.readTextFile(`${path}/.git`);
    const gitdir = /^gitdir: ([^\n]+)\n?$/.exec(dotGit)?.[1];
    if (!gitdir) return false;
    const gitDir = gitdir.startsWith("/") ? gitdir : resolvePath("/", `${path}/${gitdir}`);
    const [head, common] = await Promise.all([
      Deno.readTextFile(`${gitDir}/HEAD`),
      Deno.readTextFile(`${gitDir}/commondir`),
    ]);
    if (head !== `ref: refs/heads/${branch}\n` && head !== `ref: refs/heads/${branch}`) {
      return false;
    }
    const commonPath = common.trim().startsWith("/")
      ? common.trim()
      : resolvePath("/", `${gitDir}/${common.trim()}`);
    const [a, b] = await Promise.all([Deno.realPath(commonPath), Deno.realPath(commonDir)]);
    return a === b;
  } catch {
    return false;
  }
}
