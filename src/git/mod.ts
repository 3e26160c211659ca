/**
 * Git on the host: the repository around a directory, its worktrees, and the git runner.
 * Every call goes through the injectable `CommandRunner`.
 *
 * @module
 */
export * from "./run.ts";
export * from "./repo.ts";
export * from "./worktree.ts";
