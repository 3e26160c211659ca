/**
 * The plumbing of `tachikoma pr` (`pr.ts`): git and gh in a worktree through the
 * {@link CommandRunner} with the settings that keep whatever the sandbox wrote into the shared
 * `.git` (hooks, an fsmonitor command) from running on the host, and the parsing and masking of
 * their output.
 *
 * @module
 */
import type { CommandRunner, RunResult } from "../lib/process.ts";
import { GIT_ENV, SAFE_GIT_CONFIG } from "../git/run.ts";
import { gitInWorktree, worktreeEnv, type WorktreeGit } from "../git/worktree_git.ts";
import { RuntimeError } from "../lib/errors.ts";
import { redact } from "../lib/redact.ts";

/** Masks secrets in git/gh output: registered ones and `user:password@` in URLs. */
export function scrub(text: string): string {
  return redact(text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s@'"]+@/gi, "$1[REDACTED]@"));
}

/** Paths with unresolved conflicts in `git status --porcelain=v1 -z` output. */
export function unmergedPaths(porcelain: string): string[] {
  const fields = porcelain.split("\0");
  const paths: string[] = [];
  for (let i = 0; i < fields.length; i++) {
    const entry = fields[i];
    if (entry.length < 4) continue;
    const xy = entry.slice(0, 2);
    if (xy[0] === "R" || xy[0] === "C") i++; // the original path follows
    if (xy.includes("U") || xy === "AA" || xy === "DD") paths.push(entry.slice(3));
  }
  return paths;
}

/** The JSON object in `text`, or null. */
export function parseJson(text: string): Record<string, unknown> | null {
  try {
    const doc = JSON.parse(text);
    return doc && typeof doc === "object" ? doc as Record<string, unknown> : null;
  } catch {
    return null;
  }
}

/** The last line of `text` that is an http(s) URL, or null. */
export function lastUrl(text: string): string | null {
  const urls = text.split("\n").map((l) => l.trim()).filter((l) => /^https?:\/\/\S+$/.test(l));
  return urls.length ? urls[urls.length - 1] : null;
}

/** `: <output>` with git's `hint:` lines dropped, at most 8 lines, secrets masked. */
export function detail(output: string): string {
  const lines = output.split("\n").map((l) => l.trimEnd())
    .filter((l) => l.trim() !== "" && !/^hint:/.test(l));
  if (lines.length === 0) return "";
  const shown = lines.slice(0, 8);
  if (lines.length > shown.length) shown.push(`… (${lines.length - shown.length} more lines)`);
  return `:\n  ${scrub(shown.join("\n  "))}`;
}

/** What a {@link Runner} runs programs with. */
export interface RunnerDeps {
  runner: CommandRunner;
  /** The GitHub CLI program (default `gh`, looked up on PATH). */
  gh?: string;
  /** Kills the running program when aborted. */
  signal?: AbortSignal;
}

/**
 * Runs git and gh in one sandbox worktree with the safe settings, git's directories pinned to
 * the ones tachikoma knows ({@link WorktreeGit}: never what the sandbox wrote in the `.git`
 * file), for gh's own git calls too.
 */
export class Runner {
  readonly #deps: RunnerDeps;
  readonly #w: WorktreeGit;
  readonly #dir: string;

  /** A runner for the worktree `w`. */
  constructor(deps: RunnerDeps, w: WorktreeGit) {
    this.#deps = deps;
    this.#w = w;
    this.#dir = w.workTree;
  }

  /** `git <args>`; never throws for a non-zero exit. */
  git(args: string[]): Promise<RunResult> {
    return gitInWorktree(this.#deps, this.#w, args);
  }

  /**
   * `git <args>`, stdout without its last newline; a non-zero exit throws `fail(result)` or a
   * {@link RuntimeError} naming `step` with git's output (and `hint`, when `match` matches it).
   */
  async gitOk(
    step: string,
    args: string[],
    options: { hint?: string; match?: RegExp; fail?: (r: RunResult) => Error } = {},
  ): Promise<string> {
    const result = await this.git(args);
    if (result.code === 0) return result.stdout.replace(/\n$/, "");
    if (options.fail) throw options.fail(result);
    const hint = options.match && !options.match.test(result.stderr) ? undefined : options.hint;
    throw this.failure(step, result, hint);
  }

  /** The error of a failed git step, with git's output (no `hint:` lines, secrets masked). */
  failure(step: string, result: RunResult, hint?: string): RuntimeError {
    return new RuntimeError(
      "git",
      `git ${step} failed in ${this.#dir} (exit ${result.code})${detail(result.stderr)}`,
      { hint },
    );
  }

  /** `gh <args>` with {@link ghEnv}; throws UnreachableError when gh cannot be found. */
  gh(args: string[]): Promise<RunResult> {
    return this.#deps.runner.run(this.#deps.gh ?? "gh", args, {
      cwd: this.#dir,
      env: { ...ghEnv(), ...GIT_ENV, ...worktreeEnv(this.#w) },
      signal: this.#deps.signal,
    });
  }
}

/** gh's environment: no prompts, no update check, and the safe git settings for its git calls. */
export function ghEnv(): Record<string, string> {
  const env: Record<string, string> = {
    GH_PROMPT_DISABLED: "1",
    GH_NO_UPDATE_NOTIFIER: "1",
    GH_SPINNER_DISABLED: "1",
    NO_COLOR: "1",
  };
  // Appended after any GIT_CONFIG_COUNT entries the user's environment already has.
  const existing = Number(Deno.env.get("GIT_CONFIG_COUNT") ?? "0");
  const base = Number.isInteger(existing) && existing > 0 ? existing : 0;
  SAFE_GIT_CONFIG.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${base + i}`] = k;
    env[`GIT_CONFIG_VALUE_${base + i}`] = v;
  });
  env.GIT_CONFIG_COUNT = String(base + SAFE_GIT_CONFIG.length);
  return env;
}
