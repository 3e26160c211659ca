/**
 * Running git through the injectable {@link CommandRunner}, with a stable environment
 * (C locale for parseable messages, no prompts, no pager).
 *
 * @module
 */
import type { CommandRunner, RunResult } from "../lib/process.ts";
import { RuntimeError } from "../lib/errors.ts";

/** Environment every git call gets. */
export const GIT_ENV: Record<string, string> = {
  LC_ALL: "C",
  GIT_TERMINAL_PROMPT: "0",
  GIT_PAGER: "cat",
  GIT_OPTIONAL_LOCKS: "0",
};

/**
 * Settings every host git call gets: no hooks, no fsmonitor command, no `ext::` remote helper.
 * tachikoma's host git never needs them, and a sandbox must not be able to make host git run
 * anything (the first line of defence is that host git reads no configuration a sandbox can
 * write: see `worktree_git.ts`).
 */
export const SAFE_GIT_CONFIG: ReadonlyArray<readonly [string, string]> = [
  ["core.hooksPath", "/dev/null"],
  ["core.fsmonitor", "false"],
  ["protocol.ext.allow", "never"],
];

/** `-c key=value` arguments for {@link SAFE_GIT_CONFIG}. */
export const SAFE_GIT_ARGS: readonly string[] = SAFE_GIT_CONFIG.flatMap(([k, v]) => [
  "-c",
  `${k}=${v}`,
]);

/** Runs `git <args>` in `cwd` with the safe settings; never throws for a non-zero exit. */
export function git(runner: CommandRunner, cwd: string, args: string[]): Promise<RunResult> {
  return runner.run("git", [...SAFE_GIT_ARGS, ...args], { cwd, env: GIT_ENV });
}

/** Runs `git <args>` in `cwd` and returns trimmed stdout; throws {@link GitError} on failure. */
export async function gitOk(runner: CommandRunner, cwd: string, args: string[]): Promise<string> {
  const result = await git(runner, cwd, args);
  if (result.code !== 0) throw new GitError(args, result);
  return result.stdout.replace(/\n$/, "");
}

/** A git command failed. The message carries git's own (trimmed) stderr. */
export class GitError extends RuntimeError {
  /** git's stderr, trimmed. */
  readonly stderr: string;
  /** git's exit code. */
  readonly gitCode: number;

  constructor(args: string[], result: RunResult, hint?: string) {
    const stderr = result.stderr.trim();
    super(
      "git",
      `git ${args[0]} failed (exit ${result.code})${stderr ? `: ${firstLines(stderr)}` : ""}`,
      { hint },
    );
    this.stderr = stderr;
    this.gitCode = result.code;
  }
}

function firstLines(text: string): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  return lines.slice(0, 3).join(" / ");
}
