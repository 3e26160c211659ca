/**
 * The shares a start of a sandbox gets (spawn and checkpoint restore compute them the same way):
 * the worktree's git data resolved from the main checkout (never from what the sandbox wrote),
 * git's link files repaired, the read-write parts of `.git` created, then the layout of
 * `src/provision/shares.ts`.
 *
 * @module
 */
import type { Share } from "../backends/backend.ts";
import { repairWorktreeLinks, resolveWorktreeGit } from "../git/worktree_git.ts";
import type { CommandRunner } from "../lib/process.ts";
import { buildShares, ensureGitParts } from "../provision/shares.ts";

/** Inputs of {@link sandboxShares}. */
export interface SandboxSharesOptions {
  runner: CommandRunner;
  /** The main checkout. */
  mainRoot: string;
  /** The sandbox's worktree. */
  worktreePath: string;
  /** The user's home (Claude directories). */
  home: string;
  /** `share_claude_dirs`. */
  claudeDirs: readonly string[];
  /** `capabilities.mountHost` of the engine: false shares nothing (code by git). */
  mountHost?: boolean;
}

/** Computes a sandbox's shares for a start. */
export async function sandboxShares(options: SandboxSharesOptions): Promise<Share[]> {
  if (options.mountHost === false) return [];
  const w = await resolveWorktreeGit({
    runner: options.runner,
    mainRoot: options.mainRoot,
    workTree: options.worktreePath,
  });
  await repairWorktreeLinks(w);
  await ensureGitParts(w.commonDir);
  return await buildShares({
    worktreePath: w.workTree,
    gitCommonDir: w.commonDir,
    worktreeGitDir: w.gitDir,
    repoRoot: options.mainRoot,
    home: options.home,
    claudeDirs: options.claudeDirs,
  });
}
