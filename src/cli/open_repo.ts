/**
 * The repository around a command's directory for `list`'s default scope, as the sandbox
 * service finds it (`SandboxService.repo`): null outside a repository.
 *
 * @module
 */
import { openRepoHere } from "../core/repo_here.ts";
import type { RepoScope } from "../core/inventory.ts";
import { UsageError } from "../lib/errors.ts";
import { defaultRunner } from "../lib/process.ts";
import type { StateStore } from "../state/store.ts";

/** The repo around `cwd` (healing a sandbox worktree's links, like the service), or null. */
export async function repoAround(store: StateStore, cwd: string): Promise<RepoScope | null> {
  try {
    return await openRepoHere({ runner: defaultRunner, store }, cwd);
  } catch (error) {
    if (error instanceof UsageError) return null;
    throw error;
  }
}
