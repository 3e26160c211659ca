/**
 * Git worktrees: listing (`git worktree list --porcelain -z`), ensuring one per branch for a
 * sandbox, and removing a clean one. The main checkout is never handed to a sandbox and its
 * files are never touched.
 *
 * @module
 */
import type { CommandRunner } from "../lib/process.ts";
import { ConflictError, UsageError } from "../lib/errors.ts";
import { quote } from "../lib/shell.ts";
import { git, GitError, gitOk } from "./run.ts";
import { gitInWorktree, safeWorktreeGit, type WorktreeGit } from "./worktree_git.ts";
import { branchExists, remoteBranches, type RepoContext, validateBranchName } from "./repo.ts";
import { dirname, resolvePath } from "../lib/paths.ts";

/** One record of `git worktree list --porcelain`. */
export interface WorktreeEntry {
  path: string;
  /** Commit checked out, null for a bare entry. */
  head: string | null;
  /** Short branch name, null when detached or bare. */
  branch: string | null;
  detached: boolean;
  bare: boolean;
  /** Lock reason ("" without a reason), null when not locked. */
  locked: string | null;
  /** Why git considers it prunable (its directory is gone), null otherwise. */
  prunable: string | null;
  /** The first record: the main checkout. */
  main: boolean;
}

/** Parses `git worktree list --porcelain -z` output. */
export function parseWorktreeList(text: string): WorktreeEntry[] {
  const entries: WorktreeEntry[] = [];
  let current: WorktreeEntry | null = null;
  for (const field of text.split("\0")) {
    if (field === "") {
      current = null;
      continue;
    }
    const space = field.indexOf(" ");
    const key = space === -1 ? field : field.slice(0, space);
    const value = space === -1 ? "" : field.slice(space + 1);
    if (key === "worktree") {
      current = {
        path: value,
        head: null,
        branch: null,
        detached: false,
        bare: false,
        locked: null,
        prunable: null,
        main: entries.length === 0,
      };
      entries.push(current);
      continue;
    }
    if (!current) continue;
    switch (key) {
      case "HEAD":
        current.head = value;
        break;
      case "branch":
        current.branch = value.startsWith("refs/heads/") ? value.slice(11) : value;
        break;
      case "detached":
        current.detached = true;
        break;
      case "bare":
        current.bare = true;
        break;
      case "locked":
        current.locked = value;
        break;
      case "prunable":
        current.prunable = value;
        break;
    }
  }
  return entries;
}

/** Lists the repo's worktrees (main checkout first). */
export async function listWorktrees(runner: CommandRunner, cwd: string): Promise<WorktreeEntry[]> {
  const r = await git(runner, cwd, ["worktree", "list", "--porcelain", "-z"]);
  if (r.code !== 0) throw new GitError(["worktree", "list"], r);
  return parseWorktreeList(r.stdout);
}

/** What {@link ensureWorktree} did. */
export interface EnsuredWorktree {
  path: string;
  /** `reused`: an existing worktree on the branch; `created`: a new one. */
  action: "reused" | "created";
  /** The branch did not exist and was created from HEAD. */
  branchCreated: boolean;
  /** Short commit the new branch starts at (when `branchCreated`). */
  base: string | null;
  /** Remote-tracking branch a new local branch tracks (`origin/x`), when git set one up. */
  tracking: string | null;
  /** Lock reason of a reused locked worktree, else null. */
  locked: string | null;
}

/** Options for {@link ensureWorktree}. */
export interface EnsureWorktreeOptions {
  repo: RepoContext;
  branch: string;
  /** Directory name of a new worktree (`<repo>-<branch-slug>`). */
  dirName: string;
  /** `worktree_dir` from the config (default: beside the main checkout). */
  worktreeDir?: string;
  /** Home directory, for a `~/…` worktree_dir. */
  home?: string;
  /** Already listed worktrees (saves a git call). */
  entries?: WorktreeEntry[];
  /** Used to check that paths exist (injectable for tests). */
  exists?: (path: string) => Promise<boolean>;
}

/**
 * Returns the worktree for `branch`, creating it when needed: reuses a linked worktree already
 * on the branch, else runs `git worktree add` into `worktree_dir/<dirName>`; a branch that
 * exists nowhere is created from the current HEAD. Refuses (with a way out) to use the main
 * checkout, a worktree whose directory is gone, or a target path already taken.
 */
export async function ensureWorktree(
  runner: CommandRunner,
  options: EnsureWorktreeOptions,
): Promise<EnsuredWorktree> {
  const { repo, branch } = options;
  const exists = options.exists ?? pathExists;
  const entries = options.entries ?? await listWorktrees(runner, repo.toplevel);
  const onBranch = entries.find((e) => e.branch === branch);
  const prune = pruneCommand(repo);
  if (onBranch) {
    if (onBranch.main || onBranch.path === repo.mainRoot) {
      throw new ConflictError(
        `branch '${branch}' is checked out in the main checkout ${onBranch.path}; ` +
          "tachikoma never hands the main checkout to a sandbox",
        {
          hint:
            `switch the main checkout to another branch (git -C ${
              shellWord(repo.mainRoot)
            } switch <other>) and run again to give '${branch}' its own worktree, ` +
            "or spawn a new branch: tachikoma spawn <new-branch>",
        },
      );
    }
    const present = await exists(onBranch.path);
    if (!present || onBranch.prunable !== null) {
      if (onBranch.locked !== null) {
        throw new ConflictError(
          `the worktree of branch '${branch}' at ${onBranch.path} is missing and locked` +
            (onBranch.locked ? ` (${onBranch.locked})` : ""),
          {
            hint: `reattach the disk that holds it, or: git -C ${
              shellWord(repo.mainRoot)
            } worktree unlock ${shellWord(onBranch.path)} && ${prune}`,
          },
        );
      }
      throw new ConflictError(
        `the worktree of branch '${branch}' at ${onBranch.path} is missing (prunable)`,
        { hint: `run \`${prune}\` and spawn again to get a fresh worktree` },
      );
    }
    return {
      path: onBranch.path,
      action: "reused",
      branchCreated: false,
      base: null,
      tracking: null,
      locked: onBranch.locked,
    };
  }

  const parent = resolveWorktreeDir(repo.mainRoot, options.worktreeDir, options.home);
  const target = `${parent}/${options.dirName}`;
  const atTarget = entries.find((e) => e.path === target);
  if (atTarget) {
    if (atTarget.prunable !== null || !(await exists(target))) {
      throw new ConflictError(
        `${target} is registered as a worktree but its directory is gone`,
        { hint: `run \`${prune}\` and spawn again` },
      );
    }
    const what = atTarget.branch ? `branch '${atTarget.branch}'` : "a detached HEAD";
    throw new ConflictError(`${target} is already a worktree, on ${what}`, {
      hint: "remove it (git worktree remove), or set worktree_dir to another directory",
    });
  }
  if (await exists(target) && !(await isEmptyDir(target))) {
    throw new ConflictError(`${target} already exists and is not a worktree of this repo`, {
      hint: "move it away, or set worktree_dir to another directory",
    });
  }

  // What decides how the worktree is made: four reads of the repo, asked at once (a git
  // process each). Those a branch that exists does not need are settled and dropped.
  const known = branchExists(runner, repo.toplevel, branch);
  const valid = settledLater(validateBranchName(runner, repo.toplevel, branch));
  const remotes = settledLater(remoteBranches(runner, repo.toplevel, branch));
  const head = settledLater(
    git(runner, repo.toplevel, ["rev-parse", "--verify", "--quiet", "HEAD"]),
  );
  if (await known) {
    await addWorktree(runner, repo, ["worktree", "add", "--", target, branch]);
    return {
      path: target,
      action: "created",
      branchCreated: false,
      base: null,
      tracking: null,
      locked: null,
    };
  }
  // A branch that exists nowhere yet: git decides whether its name is valid.
  await valid;
  const tracked = await remotes;
  if (tracked.length === 1) {
    await addWorktree(
      runner,
      repo,
      ["worktree", "add", "--track", "-b", branch, "--", target, tracked[0]],
    );
    return {
      path: target,
      action: "created",
      branchCreated: true,
      base: await gitOk(runner, target, ["rev-parse", "--short", "HEAD"]),
      tracking: tracked[0],
      locked: null,
    };
  }
  const resolved = await head;
  if (resolved.code !== 0) {
    throw new UsageError(`cannot create branch '${branch}': the repo has no commit yet`, {
      hint: "commit something first (git commit --allow-empty -m init)",
    });
  }
  const sha = resolved.stdout.trim();
  // The short name of the base is asked for while the worktree is made.
  const short = settledLater(gitOk(runner, repo.toplevel, ["rev-parse", "--short", sha]));
  await addWorktree(runner, repo, ["worktree", "add", "-b", branch, "--", target, sha]);
  return {
    path: target,
    action: "created",
    branchCreated: true,
    base: await short,
    tracking: null,
    locked: null,
  };
}

/** `p`, with its rejection marked handled: it is awaited later, or not at all. */
function settledLater<T>(p: Promise<T>): Promise<T> {
  p.catch(() => {});
  return p;
}

/** The command that prunes the stale worktree records of `repo`, for hints. */
function pruneCommand(repo: RepoContext): string {
  return `git -C ${shellWord(repo.mainRoot)} worktree prune`;
}

async function addWorktree(
  runner: CommandRunner,
  repo: RepoContext,
  args: string[],
): Promise<void> {
  const r = await git(runner, repo.toplevel, args);
  if (r.code === 0) return;
  let hint: string | undefined;
  if (/missing but (already registered|locked) worktree/.test(r.stderr)) {
    hint = `run \`${
      pruneCommand(repo)
    }\` (and \`git worktree unlock\` if it is locked), then spawn again`;
  } else if (/already checked out|already used by worktree/.test(r.stderr)) {
    hint = "the branch is checked out in another worktree; see `git worktree list`";
  }
  throw new GitError(args, r, hint);
}

/** The directory new worktrees go in: `worktree_dir` (`~` and relative paths resolved against
 * home and the main checkout), else the main checkout's parent. */
export function resolveWorktreeDir(mainRoot: string, worktreeDir?: string, home?: string): string {
  if (!worktreeDir) return dirname(mainRoot);
  let dir = worktreeDir;
  if ((dir === "~" || dir.startsWith("~/")) && home) dir = home + dir.slice(1);
  if (!dir.startsWith("/")) dir = `${mainRoot}/${dir}`;
  return resolvePath("/", dir);
}

/** Result of {@link removeWorktree}. */
export interface RemovedWorktree {
  removed: boolean;
  /** Why it was kept. */
  reason: string | null;
}

/**
 * Removes a linked worktree when it is clean (no uncommitted or untracked changes). Never the
 * main checkout, never with force. The branch is kept.
 */
export async function removeWorktree(
  runner: CommandRunner,
  mainRoot: string,
  path: string,
): Promise<RemovedWorktree> {
  let entries: WorktreeEntry[];
  try {
    entries = await listWorktrees(runner, mainRoot);
  } catch (error) {
    return { removed: false, reason: `cannot list worktrees: ${(error as Error).message}` };
  }
  const entry = entries.find((e) => e.path === path);
  if (!entry) return { removed: false, reason: "not a worktree of this repo" };
  if (entry.main) return { removed: false, reason: "it is the main checkout" };
  if (entry.locked !== null) {
    return { removed: false, reason: `it is locked${entry.locked ? ` (${entry.locked})` : ""}` };
  }
  if (entry.prunable !== null || !(await pathExists(path))) {
    const r = await git(runner, mainRoot, ["worktree", "prune"]);
    return r.code === 0
      ? { removed: true, reason: null }
      : { removed: false, reason: r.stderr.trim() };
  }
  // Host git on the worktree with its directories pinned (never through the worktree's own
  // .git file, which the sandbox can write), and without `git worktree remove`, whose
  // cleanliness check runs git with GIT_DIR=<worktree>/.git.
  let w: WorktreeGit;
  try {
    w = await safeWorktreeGit({ runner, mainRoot, workTree: path });
  } catch (error) {
    return { removed: false, reason: (error as Error).message };
  }
  const status = await gitInWorktree({ runner }, w, [
    "status",
    "--porcelain",
    "--untracked-files=normal",
  ]);
  if (status.code !== 0) return { removed: false, reason: status.stderr.trim() };
  const dirty = status.stdout.split("\n").filter((l) => l !== "");
  if (dirty.length > 0) {
    return {
      removed: false,
      reason: `it has ${dirty.length} uncommitted change${dirty.length === 1 ? "" : "s"}`,
    };
  }
  await Deno.remove(w.workTree, { recursive: true });
  await Deno.remove(w.gitDir, { recursive: true });
  return { removed: true, reason: null };
}

/** True when the path exists (file, directory or symlink target). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function isEmptyDir(path: string): Promise<boolean> {
  try {
    for await (const _ of Deno.readDir(path)) return false;
    return true;
  } catch {
    return false;
  }
}

/** A path quoted for a hint the user may paste into a shell. */
function shellWord(path: string): string {
  return /^[A-Za-z0-9_./:@%+-]+$/.test(path) ? path : quote(path);
}
