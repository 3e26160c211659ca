/**
 * The host directories a sandbox gets, mounted again on every start under `/mnt/tachikoma/`
 * (the same list `backend.start` gets and provisioning mounts and finds in the guest):
 *
 * | share | host path | guest path | mode |
 * |---|---|---|---|
 * | `code` | the worktree | `code` | rw |
 * | `git` | the repo's common `.git` | `git` | **ro** |
 * | `git-objects` | `.git/objects` | `git/objects` | rw |
 * | `git-refs` | `.git/refs` | `git/refs` | rw |
 * | `git-logs` | `.git/logs` | `git/logs` | rw |
 * | `git-worktree` | `.git/worktrees/<id>` | `git/worktrees/<id>` | rw |
 * | `claude-<d>` | `~/.claude/<d>` (`share_claude_dirs`, when a directory) | `claude-<d>` | ro |
 * | `claude-memory` | `~/.claude/projects/<path_slug(repo_root)>/memory` (when a directory) | `claude-memory` | ro |
 *
 * The repository's `.git` is read-only as a whole — `config`, `hooks/`, `info/`, `HEAD`,
 * `packed-refs`, `modules/`, every other worktree's entry — and only the data git writes when
 * committing, branching, stashing, fetching or rebasing in this worktree is shared read-write,
 * each part as its own share mounted over the read-only one. Unmounting a read-write part from
 * inside the guest only uncovers the read-only directory beneath it, so nothing the guest does
 * makes `.git` writable (the engine enforces read-only shares: guest root cannot remount them).
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

/** The repo's `.git` in the guest (read-only, with the read-write parts mounted over it). */
export const GUEST_GIT_DIR = `${GUEST_SHARE_ROOT}/git`;

/** The read-write parts of `.git`: share name → directory under `.git`. */
export const GIT_RW_PARTS: readonly (readonly [string, string])[] = [
  ["git-objects", "objects"],
  ["git-refs", "refs"],
  ["git-logs", "logs"],
];

/** Inputs of {@link buildShares}. */
export interface ShareInputs {
  /** The sandbox's worktree (host). */
  worktreePath: string;
  /** The repo's common git dir (`<main>/.git`). */
  gitCommonDir: string;
  /** The worktree's administrative dir (`<common>/worktrees/<id>`). */
  worktreeGitDir: string;
  /** The main checkout's root (host), for the Claude memory slug. */
  repoRoot: string;
  /** The user's home directory. */
  home: string;
  /** `share_claude_dirs`. */
  claudeDirs: readonly string[];
  /** Whether a path is an existing directory (injectable for tests). */
  isDir?: (path: string) => Promise<boolean>;
}

/** The guest path of a worktree's administrative dir (`/mnt/tachikoma/git/worktrees/<id>`). */
export function guestWorktreeGitDir(worktreeGitDir: string): string {
  return `${GUEST_GIT_DIR}/worktrees/${worktreeGitDir.slice(worktreeGitDir.lastIndexOf("/") + 1)}`;
}

/** Computes the share list for a start. */
export async function buildShares(inputs: ShareInputs): Promise<Share[]> {
  const isDir = inputs.isDir ?? isDirectory;
  // A share under the share root unless its guest path is given.
  const share = (
    name: string,
    hostPath: string,
    at: { readOnly: boolean; guestPath?: string },
  ): Share => ({
    name,
    hostPath,
    guestPath: at.guestPath ?? `${GUEST_SHARE_ROOT}/${name}`,
    readOnly: at.readOnly,
  });
  const common = inputs.gitCommonDir;
  const shares: Share[] = [
    share("code", inputs.worktreePath, { readOnly: false }),
    share("git", common, { readOnly: true, guestPath: GUEST_GIT_DIR }),
    ...GIT_RW_PARTS.map(([name, part]) =>
      share(name, `${common}/${part}`, { readOnly: false, guestPath: `${GUEST_GIT_DIR}/${part}` })
    ),
    share("git-worktree", inputs.worktreeGitDir, {
      readOnly: false,
      guestPath: guestWorktreeGitDir(inputs.worktreeGitDir),
    }),
  ];
  const candidates: Array<Promise<Share | null>> = [];
  const seen = new Set<string>();
  for (const dir of inputs.claudeDirs) {
    // Config validation allows only [A-Za-z0-9_-]; share names must be [a-z0-9-].
    if (!/^[A-Za-z0-9_-]+$/.test(dir)) continue;
    const name = claudeShareName(dir);
    if (seen.has(name)) continue;
    seen.add(name);
    const path = `${inputs.home}/.claude/${dir}`;
    candidates.push(isDir(path).then((ok) => ok ? share(name, path, { readOnly: true }) : null));
  }
  const memory = `${inputs.home}/.claude/projects/${pathSlug(inputs.repoRoot)}/memory`;
  candidates.push(
    isDir(memory).then((ok) => ok ? share("claude-memory", memory, { readOnly: true }) : null),
  );
  for (const s of await Promise.all(candidates)) if (s) shares.push(s);
  return shares;
}

/**
 * Creates the parts of `.git` a share needs that git creates lazily (`logs/` in a repo whose
 * reflogs were never written), so every read-write part exists before the start.
 */
export async function ensureGitParts(gitCommonDir: string): Promise<void> {
  for (const [, part] of GIT_RW_PARTS) {
    await Deno.mkdir(`${gitCommonDir}/${part}`, { recursive: true });
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

/** The Claude project memory share in the guest. */
export const GUEST_MEMORY_DIR = `${GUEST_SHARE_ROOT}/claude-memory`;
/** Claude's project directory name for the guest code dir (`-mnt-tachikoma-code`). */
export const GUEST_PROJECT_SLUG = pathSlug(GUEST_CODE_DIR);

/** The share name of `~/.claude/<dir>` (`claude-<dir>`, lower-cased, `_` → `-`, as core names it). */
export function claudeShareName(dir: string): string {
  return `claude-${dir.toLowerCase().replaceAll("_", "-")}`;
}
