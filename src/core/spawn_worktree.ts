/**
 * Spawn's first step: the branch's worktree — the recorded one when it is still on the branch
 * (no git process), else made or found by `git worktree` in the configured directory, under a
 * directory name no other branch's worktree or foreign path holds.
 *
 * @module
 */
import type { SandboxRecord } from "../state/schema.ts";
import { isWorktreeOnBranch, type RepoContext } from "../git/repo.ts";
import type { EnsuredWorktree } from "../git/worktree.ts";
import { worktreeDirName } from "../lib/naming.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import { step } from "./step.ts";

/** Whose worktree {@link prepareWorktree} prepares. */
export interface WorktreeFor {
  repo: RepoContext;
  branch: string;
  /** The sandbox's record, when it has one (its recorded worktree). */
  existing: SandboxRecord | undefined;
}

/** The branch's worktree, reused or made (a progress step). */
export async function prepareWorktree(
  deps: LifecycleDeps,
  target: WorktreeFor,
): Promise<EnsuredWorktree> {
  const { repo, branch, existing } = target;
  const config = deps.config;
  const report = {
    label: "preparing worktree",
    detail: (w: EnsuredWorktree) => `${w.action} ${w.path}`,
  };
  return await step(deps, report, async (): Promise<EnsuredWorktree> => {
    // Fast path: the recorded worktree is still on the branch (no git process).
    if (
      existing?.worktree_path &&
      await isWorktreeOnBranch(existing.worktree_path, branch, repo.commonDir)
    ) {
      return {
        path: existing.worktree_path,
        action: "reused" as const,
        branchCreated: false,
        base: null,
        tracking: null,
        locked: null,
      };
    }
    const { ensureWorktree, listWorktrees, resolveWorktreeDir } = await import(
      "../git/worktree.ts"
    );
    const entries = await listWorktrees(deps.runner, repo.toplevel);
    const parent = resolveWorktreeDir(repo.mainRoot, config.worktree_dir, deps.home);
    // A directory name is taken when another branch's worktree or a foreign path holds it.
    const taken = (dir: string) => {
      const path = `${parent}/${dir}`;
      const entry = entries.find((e) => e.path === path);
      return entry ? entry.branch !== branch : occupied(path);
    };
    return ensureWorktree(deps.runner, {
      repo,
      branch,
      dirName: worktreeDirName(repo.name, branch, { repoRoot: repo.mainRoot, taken }),
      worktreeDir: config.worktree_dir,
      home: deps.home,
      entries,
    });
  });
}

/** True when something other than an empty directory is at `path`. */
function occupied(path: string): boolean {
  try {
    const stat = Deno.lstatSync(path);
    if (!stat.isDirectory) return true;
    for (const _ of Deno.readDirSync(path)) return true;
    return false;
  } catch {
    return false;
  }
}
