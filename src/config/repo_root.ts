/**
 * Finding the git repository around a directory without running git (startup speed): walk up
 * looking for `.git` (a directory, or a file `gitdir: <path>` in linked worktrees and
 * submodules).
 *
 * @module
 */
import { basename, dirname, realPathOr, resolvePath } from "../lib/paths.ts";

/** The repository around a directory. */
export interface RepoLocation {
  /**
   * Top of the checkout containing the directory: the main checkout, or a linked worktree's
   * own top. The repo config files (`.tachikoma.toml`, `.tachikoma.local.toml`) live here.
   */
  root: string;
  /**
   * The main checkout. Equal to `root` except inside a linked worktree, where it is the
   * checkout owning the shared git directory (for a bare repo kept in `<dir>/.bare` or
   * `<dir>/.git`, that `<dir>`; for another bare repo, the bare directory itself).
   */
  mainRoot: string;
  /** The git directory of this checkout (`<root>/.git`, or where the `.git` file points). */
  gitDir: string;
  /** The shared git directory (differs from gitDir only in linked worktrees). */
  commonDir: string;
  /** True inside a linked worktree. */
  linkedWorktree: boolean;
}

function readFirstLine(path: string): string | null {
  try {
    return Deno.readTextFileSync(path).split(/\r?\n/)[0].trim();
  } catch {
    return null;
  }
}

/**
 * The repository containing `cwd`, or null outside one. `cwd` is resolved through symlinks
 * first (as `git rev-parse --show-toplevel` does).
 */
export function findRepo(cwd: string): RepoLocation | null {
  let dir = resolvePath("/", realPathOr(cwd));
  for (;;) {
    const dotGit = `${dir}/.git`;
    let info: Deno.FileInfo | null = null;
    try {
      info = Deno.statSync(dotGit);
    } catch {
      info = null;
    }
    if (info?.isDirectory) {
      return { root: dir, mainRoot: dir, gitDir: dotGit, commonDir: dotGit, linkedWorktree: false };
    }
    if (info?.isFile) return fromGitFile(dir, dotGit);
    if (dir === "/") return null;
    dir = dirname(dir);
  }
}

/** A checkout whose `.git` is a file: a linked worktree or a submodule. */
function fromGitFile(root: string, dotGit: string): RepoLocation {
  const line = readFirstLine(dotGit);
  const match = line?.match(/^gitdir:\s*(.+)$/);
  if (!match) {
    return { root, mainRoot: root, gitDir: dotGit, commonDir: dotGit, linkedWorktree: false };
  }
  const gitDir = resolvePath(root, match[1]);
  const common = readFirstLine(`${gitDir}/commondir`);
  if (!common) {
    // A submodule (or a plain `gitdir:` indirection): its own repository.
    return { root, mainRoot: root, gitDir, commonDir: gitDir, linkedWorktree: false };
  }
  const commonDir = resolvePath(gitDir, common);
  const name = basename(commonDir);
  const mainRoot = name === ".git" || name === ".bare" ? dirname(commonDir) : commonDir;
  return { root, mainRoot, gitDir, commonDir, linkedWorktree: true };
}
