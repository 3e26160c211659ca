/**
 * Where the repo configuration (`.tachikoma.toml`, `.tachikoma.local.toml`) of a directory is
 * read from: the MAIN checkout only, never a linked worktree — a sandbox's guest writes its
 * worktree (the whole tree, its `.git` file included) and the repository's `.git` directory, so
 * nothing found there may decide which files configure the host.
 *
 * How the main checkout is found, without trusting anything the guest can write:
 *
 * 1. A worktree tachikoma manages: the state file (`state.json`, in the config directory, which
 *    no guest can write) has a record whose `worktree_path` contains the directory; its
 *    `repo_root` is the main checkout. (Read here as data: the state layer sits above config.)
 * 2. The main checkout itself (`.git` is a directory): that checkout.
 * 3. Another linked worktree: the path in its `.git` file must have git's own shape,
 *    `<main>/.git/worktrees/<id>` (or `<main>/.bare/worktrees/<id>`); the `commondir` file inside
 *    (which lives in the shared, guest-writable `.git`) is never read. That git dir's `gitdir`
 *    file must point back at this worktree — a guest cannot write another repository's `.git`,
 *    so it cannot redirect a worktree to a checkout whose config the user trusted — and the
 *    main checkout must lie outside the worktree, outside any `.git` and outside every managed
 *    worktree. Otherwise no repo config is read, with a warning.
 *
 * `git rev-parse --git-common-dir` is deliberately not used: it reads the same guest-writable
 * `.git` file and `commondir`, and runs git with the shared `.git/config`.
 *
 * @module
 */
import { findRepo, type RepoLocation } from "./repo_root.ts";
import { basename, dirname, realPathOr, resolvePath } from "../lib/paths.ts";

/** The repo config files' names, in layer order. */
export const REPO_CONFIG_NAMES = [".tachikoma.toml", ".tachikoma.local.toml"] as const;

/** Where the repo configuration of a directory comes from. */
export interface RepoConfigPlace {
  /** The checkout around the directory (as {@link findRepo} finds it), or null outside a repo. */
  location: RepoLocation | null;
  /** The main checkout whose repo config files are read, or null (none are read). */
  root: string | null;
  /** How `root` was found. */
  via: "checkout" | "state" | "git_file" | null;
  /** The top of the linked worktree around the directory, or null when not in one. */
  worktree: string | null;
  /** Why no repo config is read although the directory is in a repo (warned about), or null. */
  problem: string | null;
}

/** A worktree tachikoma manages, from the state file. */
export interface ManagedWorktree {
  worktreePath: string;
  repoRoot: string | null;
}

/** `path` with its symlinks resolved, else normalised. */
function realPath(path: string): string {
  return realPathOr(path, resolvePath("/", path));
}

/** True when `path` is `dir` or inside it. */
export function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

/**
 * The worktrees tachikoma manages, read from `state.json` (only `vms[].worktree_path` and
 * `vms[].repo_root`). A missing or unreadable file means none.
 */
export function managedWorktrees(stateFile: string): ManagedWorktree[] {
  let doc: unknown;
  try {
    doc = JSON.parse(Deno.readTextFileSync(stateFile));
  } catch {
    return [];
  }
  const vms = (doc as { vms?: unknown })?.vms;
  if (!Array.isArray(vms)) return [];
  const out: ManagedWorktree[] = [];
  for (const vm of vms) {
    const wt = (vm as { worktree_path?: unknown })?.worktree_path;
    const root = (vm as { repo_root?: unknown })?.repo_root;
    if (typeof wt !== "string" || !wt.startsWith("/")) continue;
    out.push({
      worktreePath: wt,
      repoRoot: typeof root === "string" && root.startsWith("/") ? root : null,
    });
  }
  return out;
}

/**
 * The top of managed worktree `m` when `path` (a real path) is inside it, else null. Its
 * recorded path is compared as it is, then resolved through symlinks — only when its last
 * component (the worktree directory git created, never a symlink itself) is one of `path`'s,
 * so a state file with a thousand records costs no thousand `realpath` calls.
 */
function topContaining(path: string, m: ManagedWorktree): string | null {
  const raw = resolvePath("/", m.worktreePath);
  if (within(path, raw)) return raw;
  if (!path.split("/").includes(basename(raw))) return null;
  const real = realPath(raw);
  return within(path, real) ? real : null;
}

/** The managed worktree containing `path` (a real path), the innermost when nested. */
function managedAround(path: string, managed: ManagedWorktree[]): ManagedWorktree | null {
  let best: { m: ManagedWorktree; top: string } | null = null;
  for (const m of managed) {
    const top = topContaining(path, m);
    if (top !== null && (best === null || top.length > best.top.length)) best = { m, top };
  }
  return best ? { ...best.m, worktreePath: best.top } : null;
}

function readFirstLine(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).split(/\r?\n/)[0].trim();
  } catch {
    return null;
  }
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The main checkout of a linked worktree, from the shape of the path in its `.git` file;
 * a string problem when it cannot be told safely.
 */
function mainOfLinked(
  loc: RepoLocation,
  managed: ManagedWorktree[],
): { root: string } | { problem: string } {
  const worktreesDir = dirname(loc.gitDir);
  const common = dirname(worktreesDir);
  const kind = basename(common);
  if (basename(worktreesDir) !== "worktrees" || (kind !== ".git" && kind !== ".bare")) {
    return {
      problem: `${loc.root}/.git does not point into <main checkout>/.git/worktrees/ ` +
        `(it points to ${JSON.stringify(loc.gitDir)})`,
    };
  }
  const root = realPath(dirname(common));
  const back = readFirstLine(`${loc.gitDir}/gitdir`);
  if (back === null || realPath(resolvePath(loc.gitDir, back)) !== realPath(`${loc.root}/.git`)) {
    return { problem: `${loc.gitDir}/gitdir does not point back at ${loc.root}` };
  }
  const inGitDir = root.split("/").some((p) => p === ".git" || p === ".bare");
  if (within(root, loc.root) || inGitDir || !isDir(`${root}/${kind}`)) {
    return { problem: `${root} is not a main checkout` };
  }
  const holder = managed.find((m) => topContaining(root, m) !== null);
  if (holder) return { problem: `${root} is inside the sandbox worktree ${holder.worktreePath}` };
  return { root };
}

/** Options of {@link repoConfigPlace}. */
export interface RepoConfigPlaceOptions {
  /** tachikoma's state file (`<config dir>/state.json`). */
  stateFile: string;
}

/** What the `.git` at the top of a checkout says it is. */
function kindOf(loc: RepoLocation): "main" | "linked" | "own" | "garbage" {
  const dotGit = `${loc.root}/.git`;
  if (isDir(dotGit)) return "main";
  if (loc.gitDir === dotGit) return "garbage"; // a `.git` file without a `gitdir:` line
  // By the path's shape, not by `commondir` (which lives in the shared, guest-writable .git).
  return basename(dirname(loc.gitDir)) === "worktrees" ? "linked" : "own";
}

/** Where the repo configuration for `cwd` comes from (see the module documentation). */
export function repoConfigPlace(cwd: string, options: RepoConfigPlaceOptions): RepoConfigPlace {
  const location = findRepo(cwd);
  if (!location) return { location, root: null, via: null, worktree: null, problem: null };
  const managed = managedWorktrees(options.stateFile);
  const mine = managedAround(realPath(cwd), managed);
  const kind = kindOf(location);
  const none = (worktree: string | null, problem: string): RepoConfigPlace => ({
    location,
    root: null,
    via: null,
    worktree,
    problem,
  });
  if (mine?.repoRoot) {
    return {
      location,
      root: realPath(mine.repoRoot),
      via: "state",
      worktree: mine.worktreePath,
      problem: null,
    };
  }
  if (mine && (kind !== "linked" || location.root !== mine.worktreePath)) {
    // A record from tachikoma 0.2 (no repo_root) and not its worktree's own top: nested.
    return none(
      mine.worktreePath,
      `${mine.worktreePath} is a sandbox worktree whose state record has no repo_root`,
    );
  }
  switch (kind) {
    case "main":
    case "own": // a submodule, or a checkout with a separate git dir: its own repository
      return { location, root: location.root, via: "checkout", worktree: null, problem: null };
    case "garbage":
      return none(location.root, `${location.root}/.git names no git directory`);
    case "linked": {
      const found = mainOfLinked(location, managed);
      if ("problem" in found) return none(location.root, found.problem);
      return {
        location,
        root: found.root,
        via: "git_file",
        worktree: location.root,
        problem: null,
      };
    }
  }
}
