/**
 * The README's quick start, verbatim: `tachikoma` in the main checkout. Its branch (usually
 * `main`) never gets a sandbox — the main checkout is never handed to one — so on a terminal
 * spawn offers a new branch instead: it suggests a name, validates the answer as a git branch
 * name (hostile names are normal input: git decides, an argument never becomes an option) and
 * spawns that branch, which gets its own worktree from the current HEAD. Without a prompt
 * (no terminal, `--json`) nothing is offered and spawn refuses with its hint as before.
 *
 * @module
 */
import type { CommandRunner } from "../lib/process.ts";
import { git } from "../git/run.ts";
import type { RepoContext } from "../git/repo.ts";
import { openRepoHere } from "./repo_here.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import { UsageError } from "../lib/errors.ts";

/** Asks the user for a branch name (a terminal in the CLI; a script in tests). */
export interface BranchPrompt {
  /**
   * Shows `message` and asks for a name, `suggestion` being the default; returns the answer as
   * typed (empty for the default) or null when the user gives up (end of input).
   */
  ask(question: { message: string; suggestion: string }): Promise<string | null>;
  /** Tells the user why an answer was refused (then {@link BranchPrompt.ask} runs again). */
  refuse(reason: string): Promise<void>;
}

/** How many refused answers before giving up. */
export const MAX_ATTEMPTS = 5;

/** A new branch chosen at the prompt. */
export interface QuickStartChoice {
  /** The branch to spawn. */
  branch: string;
  /** The main checkout's branch it was chosen instead of. */
  instead: string;
}

/**
 * When `cwd` is the main checkout on a branch and a prompt is given, asks for the branch to
 * spawn instead; null when there is nothing to offer (a linked worktree, a detached HEAD, no
 * prompt) or when the user gave up — spawn then goes on as without the offer. Throws
 * {@link UsageError} when the branch has no commit yet (a new branch could not start from it).
 */
export async function offerNewBranch(
  deps: Pick<LifecycleDeps, "runner" | "store">,
  options: { cwd: string; prompt: BranchPrompt | null },
): Promise<QuickStartChoice | null> {
  if (!options.prompt) return null;
  const repo = await openRepoHere(deps, options.cwd);
  if (repo.linked || !repo.branch) return null;
  const current = repo.branch;
  const head = await git(deps.runner, repo.mainRoot, ["rev-parse", "--verify", "--quiet", "HEAD"]);
  if (head.code !== 0) {
    // A new branch starts at a commit: asking for a name first would only fail afterwards.
    throw new UsageError(
      `'${current}' has no commit yet: a sandbox's branch starts from a commit of it`,
      {
        hint: "commit something first (git commit --allow-empty -m init), then run tachikoma again",
      },
    );
  }
  const taken = await localBranches(deps.runner, repo);
  const suggestion = suggestBranch(taken);
  const message = `'${current}' is checked out in the main checkout ${repo.mainRoot}, which ` +
    "tachikoma never hands to a sandbox.\nEach sandbox gets a branch and worktree of its own: " +
    `a new branch starts at ${current}'s HEAD.`;
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const answer = await options.prompt.ask({ message: attempt === 0 ? message : "", suggestion });
    if (answer === null) return null;
    const name = answer === "" ? suggestion : answer;
    const problem = await branchNameProblem(deps.runner, repo, name);
    if (problem === null) return { branch: name, instead: current };
    await options.prompt.refuse(problem);
  }
  return null;
}

/**
 * Why `name` cannot be the new branch (null when it can): git's own rules for branch names
 * (`git check-ref-format --branch`), no leading dash, no `@{…}` shorthand, not `@` or `HEAD`,
 * and not the branch
 * the main checkout has checked out.
 */
export async function branchNameProblem(
  runner: CommandRunner,
  repo: Pick<RepoContext, "mainRoot" | "branch">,
  name: string,
): Promise<string | null> {
  const shown = JSON.stringify(name);
  if (name.trim() === "") return "the branch name is empty";
  if (name.startsWith("-")) return `${shown} is not a valid branch name (it starts with '-')`;
  if (name === "@" || name === "HEAD") return `${shown} is not a valid branch name`;
  if (name.includes("@{")) return `${shown} is not a valid branch name (it contains '@{')`;
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    return `${shown} is not a valid branch name (it contains control characters)`;
  }
  const r = await git(runner, repo.mainRoot, ["check-ref-format", "--branch", name]);
  if (r.code !== 0 || r.stdout.trim() !== name) {
    return `${shown} is not a valid branch name (see git check-ref-format)`;
  }
  if (name === repo.branch) {
    return `'${name}' is the main checkout's branch: choose another name`;
  }
  return null;
}

/** The first of `work-1`, `work-2`… that is not a local branch yet. */
export function suggestBranch(taken: ReadonlySet<string>): string {
  for (let n = 1;; n++) {
    const name = `work-${n}`;
    if (!taken.has(name)) return name;
  }
}

async function localBranches(runner: CommandRunner, repo: RepoContext): Promise<Set<string>> {
  const r = await git(runner, repo.mainRoot, [
    "for-each-ref",
    "--format=%(refname:lstrip=2)",
    "refs/heads/",
  ]);
  return new Set(r.code === 0 ? r.stdout.split("\n").filter((l) => l !== "") : []);
}
