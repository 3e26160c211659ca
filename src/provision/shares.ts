/**
 * The host directories a sandbox gets, mounted again on every start under `/mnt/tachikoma/`
 * (the same list `backend.start` gets and provisioning mounts and finds in the guest):
 *
 * | share | host path | mode | when |
 * |---|---|---|---|
 * | `code` | the worktree | rw | always |
 * | `dotgit` | the main repo's `.git` directory | rw | it exists |
 * | `claude-<d>` | `~/.claude/<d>` for each `share_claude_dirs` entry | ro | it is a directory |
 * | `claude-memory` | `~/.claude/projects/<path_slug(repo_root)>/memory` | ro | it is a directory |
 *
 * @module
 */
import type { Share } from "../backends/backend.ts";

/** Where every share appears in the guest. */
export const GUEST_SHARE_ROOT = "/mnt/tachikoma";
/** The worktree in the guest. */
export const GUEST_CODE_DIR = `${GUEST_SHARE_ROOT}/code`;

/** tachikoma's `path_slug`: every `/` becomes `-`, nothing else changes. */
export function pathSlug(path: string): string {
  return path.replaceAll("/", "-");
}

/** Inputs of {@link buildShares}. */
export interface ShareInputs {
  /** The sandbox's worktree (host). */
  worktreePath: string;
  /** The main repo's common git dir (`<main>/.git`). */
  gitCommonDir: string;
  /** The main checkout's root (host), for the Claude memory slug. */
  repoRoot: string;
  /** The user's home directory. */
  home: string;
  /** `share_claude_dirs`. */
  claudeDirs: readonly string[];
  /** Whether a path is an existing directory (injectable for tests). */
  isDir?: (path: string) => Promise<boolean>;
}

/** Computes the share list for a start. */
export async function buildShares(inputs: ShareInputs): Promise<Share[]> {
  const isDir = inputs.isDir ?? isDirectory;
  const share = (name: string, hostPath: string, readOnly: boolean): Share => ({
    name,
    hostPath,
    guestPath: `${GUEST_SHARE_ROOT}/${name}`,
    readOnly,
  });
  const shares: Share[] = [share("code", inputs.worktreePath, false)];
  const candidates: Array<Promise<Share | null>> = [
    isDir(inputs.gitCommonDir).then((ok) =>
      ok ? share("dotgit", inputs.gitCommonDir, false) : null
    ),
  ];
  const seen = new Set<string>();
  for (const dir of inputs.claudeDirs) {
    // Config validation allows only [A-Za-z0-9_-]; share names must be [a-z0-9-].
    if (!/^[A-Za-z0-9_-]+$/.test(dir)) continue;
    const name = `claude-${dir.toLowerCase().replaceAll("_", "-")}`;
    if (seen.has(name)) continue;
    seen.add(name);
    const path = `${inputs.home}/.claude/${dir}`;
    candidates.push(isDir(path).then((ok) => ok ? share(name, path, true) : null));
  }
  const memory = `${inputs.home}/.claude/projects/${pathSlug(inputs.repoRoot)}/memory`;
  candidates.push(isDir(memory).then((ok) => ok ? share("claude-memory", memory, true) : null));
  for (const s of await Promise.all(candidates)) if (s) shares.push(s);
  return shares;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** The repo's `.git` in the guest. */
export const GUEST_DOTGIT_DIR = `${GUEST_SHARE_ROOT}/dotgit`;
/** The Claude project memory share in the guest. */
export const GUEST_MEMORY_DIR = `${GUEST_SHARE_ROOT}/claude-memory`;
/** Claude's project directory name for the guest code dir (`-mnt-tachikoma-code`). */
export const GUEST_PROJECT_SLUG = pathSlug(GUEST_CODE_DIR);

/** The share name of `~/.claude/<dir>` (`claude-<dir>`, lower-cased, `_` → `-`, as core names it). */
export function claudeShareName(dir: string): string {
  return `claude-${dir.toLowerCase().replaceAll("_", "-")}`;
}
