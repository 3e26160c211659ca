/**
 * A sandbox's worktree as host git must see it — taken from tachikoma's own knowledge (the main
 * checkout and the worktree path in state), never from what the sandbox can write.
 *
 * The sandbox writes the worktree (so its `.git` file) and its own administrative directory
 * `<common>/worktrees/<id>` (so the `gitdir`, `commondir` and `config.worktree` files there).
 * Host git is therefore always run with `GIT_DIR`, `GIT_COMMON_DIR` and `GIT_WORK_TREE` set
 * ({@link worktreeEnv}): it never follows the `.git` file or the `commondir` file. Before host
 * git touches a worktree, {@link repairWorktreeLinks} puts those three link files back the way
 * git made them (so the user's own git in the worktree is not redirected either, at least right
 * after every tachikoma command), and {@link checkConfigOrigins} refuses to go on when git would
 * read configuration from a file the sandbox can write.
 *
 * @module
 */
import type { CommandRunner, RunResult } from "../lib/process.ts";
import { RuntimeError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { git, GIT_ENV, SAFE_GIT_ARGS } from "./run.ts";
import { basename, realPathOr } from "../lib/paths.ts";

/** Where a linked worktree's git data lives on the host. */
export interface WorktreeGit {
  /** The repository's common git dir (`<main>/.git`). */
  commonDir: string;
  /** The worktree's administrative dir (`<common>/worktrees/<id>`). */
  gitDir: string;
  /** The worktree (its files; shared read-write with the sandbox). */
  workTree: string;
}

/** The environment that pins host git to `w`, whatever the sandbox wrote. */
export function worktreeEnv(w: WorktreeGit): Record<string, string> {
  return { GIT_DIR: w.gitDir, GIT_COMMON_DIR: w.commonDir, GIT_WORK_TREE: w.workTree };
}

/** What runs host git: the runner, and a signal that kills git when aborted. */
export interface GitRunner {
  runner: CommandRunner;
  /** Kills the running git when aborted. */
  signal?: AbortSignal;
}

/** Runs host git on a sandbox's worktree: safe settings, pinned dirs, cwd = the worktree. */
export function gitInWorktree(
  run: GitRunner,
  w: WorktreeGit,
  args: string[],
): Promise<RunResult> {
  return run.runner.run("git", [...SAFE_GIT_ARGS, ...args], {
    cwd: w.workTree,
    env: { ...GIT_ENV, ...worktreeEnv(w) },
    signal: run.signal,
  });
}

/** A worktree's git data could not be established safely. */
export class WorktreeGitError extends RuntimeError {
  constructor(message: string, hint?: string) {
    super("worktree_git", message, { hint });
  }
}

/** Inputs of {@link resolveWorktreeGit}. */
export interface ResolveWorktreeOptions {
  runner: CommandRunner;
  /** The main checkout (from state or from the repo tachikoma was run in). */
  mainRoot: string;
  /** The worktree (from state). */
  workTree: string;
}

/** True when a variable in tachikoma's environment can change where git finds a repository. */
export function gitLocationEnvSet(): boolean {
  return ["GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR"].some((name) => !!Deno.env.get(name));
}

/**
 * `<mainRoot>/.git`, as the real path git gives, when git run in `mainRoot` would certainly
 * answer it as the common dir: no `GIT_*` variable that moves the repository, a directory that is
 * a git dir (`HEAD`, `objects/`, `refs/`) and no `commondir` file pointing elsewhere. Else
 * undefined, and git is asked. A sandbox cannot change any of it: the main checkout's `.git` is
 * shared read-only, but for its data parts. Saves a git process each time a worktree's git data
 * is resolved (every command run in a sandbox's worktree, each start's shares, the code step).
 */
function plainCommonDir(mainRoot: string): string | undefined {
  if (gitLocationEnvSet()) return undefined;
  const dir = `${mainRoot}/.git`;
  try {
    if (!Deno.statSync(dir).isDirectory) return undefined;
    if (!Deno.statSync(`${dir}/HEAD`).isFile) return undefined;
    if (!Deno.statSync(`${dir}/objects`).isDirectory) return undefined;
    if (!Deno.statSync(`${dir}/refs`).isDirectory) return undefined;
  } catch {
    return undefined;
  }
  try {
    Deno.lstatSync(`${dir}/commondir`);
    return undefined;
  } catch {
    // git answers the real path (and writes it into a worktree's `.git` file).
    return realPathOr(dir, "") || undefined;
  }
}

/**
 * Finds a worktree's git data from the main checkout: the common dir by asking git there (the
 * main checkout's configuration is out of every sandbox's reach; {@link plainCommonDir} when it
 * is certain of git's answer), the administrative dir as the
 * one entry of `<common>/worktrees/` whose `gitdir` file names this worktree. A sandbox can
 * rewrite its own entry's `gitdir` to name another worktree, so more than one match is refused.
 */
export async function resolveWorktreeGit(options: ResolveWorktreeOptions): Promise<WorktreeGit> {
  const plain = plainCommonDir(options.mainRoot);
  const r = plain === undefined
    ? await git(options.runner, options.mainRoot, [
      "rev-parse",
      "--path-format=absolute",
      "--git-common-dir",
    ])
    : { code: 0, stdout: plain, stderr: "" };
  const commonDir = r.code === 0 ? r.stdout.trim() : "";
  if (!commonDir.startsWith("/")) {
    throw new WorktreeGitError(
      `cannot find the git directory of ${options.mainRoot}: ${r.stderr.trim() || "no output"}`,
    );
  }
  const workTree = realPathOr(options.workTree);
  if (workTree === realPathOr(options.mainRoot)) {
    throw new WorktreeGitError(
      `${workTree} is the main checkout: sandboxes get linked worktrees only`,
      "spawn the sandbox for another branch (tachikoma <branch>)",
    );
  }
  const matches = await adminDirsNaming(commonDir, `${workTree}/.git`);
  if (matches.length !== 1) {
    throw new WorktreeGitError(
      matches.length === 0
        ? `${workTree} is not a worktree of ${options.mainRoot}`
        : `more than one worktree entry of ${options.mainRoot} claims ${workTree}: ` +
          matches.join(", "),
      matches.length === 0
        ? "recreate it: tachikoma destroy --worktree, then tachikoma <branch>"
        : "a sandbox rewrote a gitdir file; remove the stray entries under .git/worktrees/",
    );
  }
  return { commonDir, gitDir: matches[0], workTree };
}

async function adminDirsNaming(commonDir: string, dotGit: string): Promise<string[]> {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(`${commonDir}/worktrees`));
  } catch {
    return out;
  }
  for (const e of entries) {
    if (!e.isDirectory) continue;
    const dir = `${commonDir}/worktrees/${e.name}`;
    let text: string;
    try {
      text = await Deno.readTextFile(`${dir}/gitdir`);
    } catch {
      continue;
    }
    const path = text.replace(/\r?\n$/, "");
    if (path === dotGit || realPathOr(path) === dotGit) out.push(dir);
  }
  return out.sort();
}

/**
 * Puts back the link files git made for a linked worktree — `<worktree>/.git`
 * (`gitdir: <admin dir>`), `<admin>/gitdir` and `<admin>/commondir` — when the sandbox changed,
 * replaced (by a directory or symlink) or removed them. Returns the paths it repaired.
 */
export async function repairWorktreeLinks(w: WorktreeGit): Promise<string[]> {
  const repaired: string[] = [];
  const want: [string, string][] = [
    [`${w.workTree}/.git`, `gitdir: ${w.gitDir}\n`],
    [`${w.gitDir}/gitdir`, `${w.workTree}/.git\n`],
    [`${w.gitDir}/commondir`, relativeCommonDir(w)],
  ];
  for (const [path, content] of want) {
    if (await isFileWith(path, content)) continue;
    await Deno.remove(path, { recursive: true }).catch(() => {});
    await Deno.writeTextFile(path, content, { createNew: true });
    repaired.push(path);
  }
  if (repaired.length) {
    log.warn(
      `the sandbox of ${w.workTree} had changed git's link files; restored ${repaired.join(", ")}`,
    );
  }
  return repaired;
}

function relativeCommonDir(w: WorktreeGit): string {
  // git writes `../..` when the admin dir is `<common>/worktrees/<id>`.
  return w.gitDir === `${w.commonDir}/worktrees/${basename(w.gitDir)}`
    ? "../..\n"
    : `${w.commonDir}\n`;
}

async function isFileWith(path: string, content: string): Promise<boolean> {
  try {
    const info = await Deno.lstat(path);
    if (!info.isFile) return false;
    return (await Deno.readTextFile(path)) === content;
  } catch {
    return false;
  }
}

/** Scopes and files of the configuration git would read; see {@link checkConfigOrigins}. */
export interface ConfigOrigin {
  scope: string;
  origin: string;
  key: string;
}

/** Parses `git config --list --show-scope --show-origin -z`. */
export function parseConfigOrigins(text: string): ConfigOrigin[] {
  const fields = text.split("\0");
  const out: ConfigOrigin[] = [];
  for (let i = 0; i + 2 < fields.length; i += 3) {
    const scope = fields[i];
    const origin = fields[i + 1];
    const kv = fields[i + 2];
    const nl = kv.indexOf("\n");
    out.push({ scope, origin, key: nl === -1 ? kv : kv.slice(0, nl) });
  }
  return out;
}

/**
 * Refuses when the configuration host git would read for `w` comes from a place the sandbox can
 * write: the `worktree` scope (`config.worktree`, read when the repo enables
 * `extensions.worktreeConfig`), or any file (an `include.path` target…) inside the worktree or
 * the shared parts of `.git`. The main checkout's `.git/config` is read-only to sandboxes.
 */
export async function checkConfigOrigins(runner: CommandRunner, w: WorktreeGit): Promise<void> {
  const r = await gitInWorktree({ runner }, w, [
    "config",
    "--list",
    "--show-scope",
    "--show-origin",
    "-z",
  ]);
  if (r.code !== 0) {
    throw new WorktreeGitError(
      `cannot read the git configuration of ${w.workTree}: ${r.stderr.trim()}`,
    );
  }
  const writable = [w.workTree, w.gitDir, ...SHARED_GIT_PARTS.map((p) => `${w.commonDir}/${p}`)];
  for (const o of parseConfigOrigins(r.stdout)) {
    const file = o.origin.startsWith("file:") ? o.origin.slice(5) : "";
    const inside = file !== "" &&
      writable.some((d) => realPathOr(file) === d || realPathOr(file).startsWith(d + "/"));
    if (o.scope === "worktree" || inside) {
      throw new WorktreeGitError(
        `git would read ${o.key} from ${file || o.origin}, which the sandbox can write`,
        "remove it (and extensions.worktreeConfig from .git/config if you do not use it), " +
          "then run the command again",
      );
    }
  }
}

/** The parts of the common git dir a sandbox may write (see `src/provision/shares.ts`). */
export const SHARED_GIT_PARTS: readonly string[] = ["objects", "refs", "logs"];

/**
 * Everything a host command needs before it runs git on a sandbox's worktree: the pinned dirs,
 * the link files repaired, the configuration checked.
 */
export async function safeWorktreeGit(options: ResolveWorktreeOptions): Promise<WorktreeGit> {
  const w = await resolveWorktreeGit(options);
  await repairWorktreeLinks(w);
  await checkConfigOrigins(options.runner, w);
  return w;
}
