/**
 * `tachikoma pr`: turn a sandbox's worktree into a pull request, on the host, with the host's
 * git identity and credentials. In the worktree:
 *
 * 1. checks: the worktree exists and is on the sandbox's branch, `origin` exists, `gh` runs;
 * 2. when anything changed (tracked or untracked): `git add -A` and one commit
 *    `chore: changes on <branch>` whose body lists the files (`git status --short`);
 * 3. when HEAD has commits origin lacks: `git push --set-upstream origin <branch>`;
 * 4. `gh pr create --fill [--draft] [--title T] [--base B]`; when a pull request for the
 *    branch is already open, its URL (`gh pr view --json url,state`) instead.
 *
 * Nothing to commit and nothing to push refuses, unless origin already has the branch (then
 * only step 4 runs: re-running `pr` shows the open pull request). Nothing is ever undone or
 * forced: a failed push keeps the commit, and the next run does not commit twice.
 *
 * The worktree's `.git` is shared read-write with the sandbox, so the sandbox could plant git
 * hooks or an fsmonitor command there: every git call here (and gh's) runs with
 * `core.hooksPath=/dev/null` and `core.fsmonitor=false`, so nothing the guest wrote runs on the
 * host. Every program runs through the {@link CommandRunner} with an argv (never a shell).
 *
 * @module
 */
import type { SandboxRecord } from "../state/schema.ts";
import type { CommandRunner, RunResult } from "../lib/process.ts";
import type { Reporter } from "../lib/progress.ts";
import { detail, lastUrl, parseJson, Runner, unmergedPaths } from "./pr_git.ts";
import { openRepo } from "../git/repo.ts";
import { safeWorktreeGit } from "../git/worktree_git.ts";
import {
  ConflictError,
  errorMessage,
  NotFoundError,
  RuntimeError,
  UnreachableError,
  UsageError,
} from "../lib/errors.ts";

export { scrub, unmergedPaths } from "./pr_git.ts";
export { SAFE_GIT_CONFIG } from "../git/run.ts";

/** What {@link openPullRequest} needs. */
export interface PrDeps {
  runner: CommandRunner;
  reporter: Reporter;
  /** The GitHub CLI program (default `gh`, looked up on PATH). */
  gh?: string;
  /** Aborted on Ctrl-C (kills the running git or gh). */
  signal?: AbortSignal;
}

/** Options of `tachikoma pr`. */
export interface PrOptions {
  draft?: boolean;
  /** PR title (default: gh's `--fill`, from the commits). */
  title?: string;
  /** Branch to merge into (default: the repository's default branch). */
  base?: string;
}

/** The `--json` document of `tachikoma pr` (see docs/json.md). */
export interface PrResult {
  name: string;
  branch: string;
  /** Full commit id of the branch head that the pull request shows. */
  commit: string;
  /** Whether this run made a commit. */
  committed: boolean;
  /** Files in that commit (`git status --short` lines), empty when none was made. */
  files: string[];
  /** Whether this run pushed. */
  pushed: boolean;
  url: string;
  /** False when the pull request already existed. */
  created: boolean;
}

/** Most file lines in the commit body; more are summarised. */
export const MAX_BODY_FILES = 200;

const GH_INSTALL_HINT = "install the GitHub CLI from https://cli.github.com (macOS: " +
  "`brew install gh`; Debian/Ubuntu: `apt install gh`), run `gh auth login`, then " +
  "`tachikoma pr` again; or push the branch and open the pull request by hand";

/** The commit subject for a branch. */
export function commitSubject(branch: string): string {
  return `chore: changes on ${branch}`;
}

/** The whole commit message: subject, blank line, the changed files (capped). */
export function commitMessage(branch: string, files: readonly string[]): string {
  const shown = files.slice(0, MAX_BODY_FILES);
  const more = files.length - shown.length;
  const body = more > 0 ? [...shown, `… and ${more} more`] : shown;
  return `${commitSubject(branch)}\n\n${body.join("\n")}\n`;
}

/** Commits, pushes and opens (or finds) the pull request of a sandbox's branch. */
export async function openPullRequest(
  deps: PrDeps,
  record: SandboxRecord,
  options: PrOptions = {},
): Promise<PrResult> {
  const dir = record.worktree_path;
  const branch = record.branch;
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new Deno.errors.NotFound(dir);
  } catch {
    throw new NotFoundError(`the worktree of ${record.name} is gone: ${dir}`, {
      hint: `\`tachikoma spawn ${record.branch}\` makes it again`,
    });
  }
  const mainRoot = record.repo_root ?? (await openRepo(deps.runner, dir)).mainRoot;
  const run = new Runner(
    deps,
    await safeWorktreeGit({ runner: deps.runner, mainRoot, workTree: dir }),
  );

  await checkWorktree(run, record);
  await run.gitOk("remote", ["remote", "get-url", "origin"], {
    fail: () =>
      new ConflictError(`the repository of ${dir} has no 'origin' remote to push to`, {
        hint: "add one (`git remote add origin <url>`), then run `tachikoma pr` again",
      }),
  });
  await checkGh(run);

  // 1. Commit what changed.
  const porcelain = await run.gitOk("status", [
    "status",
    "--porcelain=v1",
    "-z",
    "--untracked-files=all",
  ]);
  const conflicted = unmergedPaths(porcelain);
  if (conflicted.length > 0) {
    const shown = conflicted.slice(0, 5).map((p) => JSON.stringify(p)).join(", ");
    const more = conflicted.length > 5 ? ` and ${conflicted.length - 5} more` : "";
    throw new ConflictError(
      `${dir} has unresolved merge conflicts (${shown}${more}): nothing was committed`,
      { hint: "resolve them (or `git merge --abort`), then run `tachikoma pr` again" },
    );
  }
  let committed = false;
  let files: string[] = [];
  if (porcelain !== "") {
    const step = deps.reporter.step("committing the worktree's changes");
    try {
      await run.gitOk("add", ["add", "-A"]);
      const staged = await run.git(["diff", "--cached", "--quiet"]);
      if (staged.code === 1) {
        files = (await run.gitOk("status", ["-c", "core.quotePath=false", "status", "--short"]))
          .split("\n").filter((l) => l !== "");
        await run.gitOk("commit", ["commit", "-q", "-m", commitMessage(branch, files)], {
          hint: "git needs your identity: `git config --global user.name …` and `user.email …`",
          match: /tell me who you are|unable to auto-detect email/i,
        });
        committed = true;
      } else if (staged.code !== 0) {
        throw run.failure("diff", staged);
      }
      step.done(committed ? `${files.length} file${files.length === 1 ? "" : "s"}` : "nothing");
    } catch (error) {
      step.fail(errorMessage(error));
      throw error;
    }
  }
  const commit = await run.gitOk("rev-parse", ["rev-parse", "--verify", "HEAD"]);

  // 2. Push what origin lacks.
  const remoteRef = `refs/remotes/origin/${branch}`;
  const onRemote =
    (await run.git(["rev-parse", "--verify", "--quiet", "--end-of-options", remoteRef]))
      .code === 0;
  const unpushed = Number(
    await run.gitOk(
      "rev-list",
      onRemote
        ? ["rev-list", "--count", "HEAD", "--not", remoteRef]
        : ["rev-list", "--count", "HEAD", "--not", "--remotes=origin"],
    ),
  );
  if (!committed && unpushed === 0 && !onRemote) {
    throw new ConflictError(
      `nothing to commit and nothing to push on '${branch}': ${dir} is clean and origin ` +
        "already has every commit of the branch",
      { hint: "make changes in the sandbox first" },
    );
  }
  let pushed = false;
  if (unpushed > 0) {
    const step = deps.reporter.step(`pushing ${branch} to origin`);
    try {
      await run.gitOk("push", [
        "push",
        "--set-upstream",
        "origin",
        `refs/heads/${branch}:refs/heads/${branch}`,
      ], {
        hint: "nothing was undone" +
          (committed ? ` (the commit ${commit.slice(0, 12)} stays in ${dir})` : "") +
          "; fix the cause and run `tachikoma pr` again (it does not commit twice)",
      });
      pushed = true;
      step.done(`${unpushed} commit${unpushed === 1 ? "" : "s"}`);
    } catch (error) {
      step.fail(errorMessage(error));
      throw error;
    }
  }

  // 3. The pull request.
  const step = deps.reporter.step("opening the pull request");
  try {
    const found = await createOrFind(run, branch, options);
    step.done(found.created ? found.url : `already open: ${found.url}`);
    return {
      name: record.name,
      branch,
      commit,
      committed,
      files,
      pushed,
      url: found.url,
      created: found.created,
    };
  } catch (error) {
    step.fail(errorMessage(error));
    throw error;
  }
}

async function checkWorktree(run: Runner, record: SandboxRecord): Promise<void> {
  const dir = record.worktree_path;
  const head = await run.git(["symbolic-ref", "--quiet", "HEAD"]);
  if (head.code !== 0 && head.code !== 1) {
    if (/not a git repository/i.test(head.stderr)) {
      throw new NotFoundError(`${dir} (the worktree of ${record.name}) is not a git worktree`, {
        hint: `\`tachikoma destroy ${record.name}\`, then spawn the branch again`,
      });
    }
    throw run.failure("symbolic-ref", head);
  }
  const ref = head.code === 0 ? head.stdout.replace(/\n$/, "") : null;
  if (ref !== `refs/heads/${record.branch}`) {
    const now = ref === null
      ? "has a detached HEAD"
      : `is on ${JSON.stringify(ref.replace(/^refs\/heads\//, ""))}`;
    throw new ConflictError(
      `the worktree ${dir} ${now}, not on ${JSON.stringify(record.branch)} (the branch of ` +
        `${record.name})`,
      { hint: `check out ${JSON.stringify(record.branch)} there, then run \`tachikoma pr\` again` },
    );
  }
}

async function checkGh(run: Runner): Promise<void> {
  let result: RunResult;
  try {
    result = await run.gh(["--version"]);
  } catch (error) {
    if (error instanceof UnreachableError) {
      throw new UnreachableError("the GitHub CLI (gh) is not installed or not on PATH", {
        hint: GH_INSTALL_HINT,
        cause: error,
      });
    }
    throw error;
  }
  if (result.code !== 0) {
    throw new UnreachableError(
      `the GitHub CLI (gh) does not run: \`gh --version\` exited ${result.code}` +
        detail(result.stderr),
      { hint: GH_INSTALL_HINT },
    );
  }
}

async function createOrFind(
  run: Runner,
  branch: string,
  options: PrOptions,
): Promise<{ url: string; created: boolean }> {
  const args = ["pr", "create", "--fill"];
  if (options.draft) args.push("--draft");
  // `--flag=value`: a value starting with '-' can never be read as another flag.
  if (options.title !== undefined) args.push(`--title=${options.title}`);
  if (options.base !== undefined) args.push(`--base=${options.base}`);
  const created = await run.gh(args);
  if (created.code === 0) {
    const url = lastUrl(created.stdout);
    if (url) return { url, created: true };
    throw new RuntimeError(
      "gh",
      `gh pr create printed no pull request URL${detail(created.stdout)}`,
    );
  }
  // Already open? (gh refuses a second pull request for the same branch.)
  const viewed = await run.gh(["pr", "view", "--json", "url,state"]);
  if (viewed.code === 0) {
    const doc = parseJson(viewed.stdout);
    if (doc && doc.state === "OPEN" && typeof doc.url === "string") {
      return { url: doc.url, created: false };
    }
  }
  if (/already exists/i.test(created.stderr)) {
    const url = lastUrl(created.stderr);
    if (url) return { url, created: false };
  }
  throw new RuntimeError(
    "gh",
    `gh pr create failed (exit ${created.code})${detail(created.stderr || created.stdout)}`,
    {
      hint: `the branch '${branch}' is on origin; fix the cause (\`gh auth status\`) and run ` +
        "`tachikoma pr` again, or open the pull request on GitHub",
    },
  );
}

/** Checks a `--title` / `--base` value from the command line. */
export function checkPrOptions(options: PrOptions): void {
  if (options.title !== undefined && options.title.trim() === "") {
    throw new UsageError("--title must not be empty");
  }
  if (options.base !== undefined && (options.base.trim() === "" || options.base.startsWith("-"))) {
    throw new UsageError(`invalid --base ${JSON.stringify(options.base)}: give a branch name`);
  }
}
