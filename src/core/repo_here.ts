/**
 * The repository around the directory a command runs in. When that directory is a sandbox's
 * worktree whose link files the sandbox changed (git then refuses it, or it names another
 * repository), tachikoma's state knows the main checkout: the links are put back from there
 * (`repairWorktreeLinks`) and the repository is opened again.
 *
 * @module
 */
import { openRepoFast, type RepoContext } from "../git/repo.ts";
import { repairWorktreeLinks, resolveWorktreeGit } from "../git/worktree_git.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import { realPathOr } from "../lib/paths.ts";

/** Opens the repo around `cwd`, healing a sandbox worktree's link files once if needed. */
export async function openRepoHere(
  deps: Pick<LifecycleDeps, "runner" | "store">,
  cwd: string,
): Promise<RepoContext> {
  try {
    return await openRepoFast(deps.runner, cwd);
  } catch (error) {
    const here = realPathOr(cwd);
    const record = (await deps.store.read()).vms.find((r) => {
      const wt = realPathOr(r.worktree_path);
      return r.repo_root && (here === wt || here.startsWith(wt + "/"));
    });
    if (!record?.repo_root) throw error;
    const w = await resolveWorktreeGit({
      runner: deps.runner,
      mainRoot: record.repo_root,
      workTree: record.worktree_path,
    }).catch(() => null);
    if (!w || (await repairWorktreeLinks(w)).length === 0) throw error;
    return await openRepoFast(deps.runner, cwd);
  }
}
