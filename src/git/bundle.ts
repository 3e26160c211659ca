/**
 * Host git for "code by git" (engines that cannot mount the host): the branch goes into the
 * guest as a git bundle, and the guest's commits come back as one. Every call runs through
 * {@link gitInWorktree} (hooks off, no fsmonitor, no `ext::`, the worktree's git dirs pinned).
 *
 * A bundle from the guest is hostile input. It is verified (`git bundle verify`: a bundle, whose
 * prerequisites the host has), and exactly one ref is taken from it — `refs/heads/<branch>`,
 * named by the host, never by the bundle — into a private ref ({@link privateRef}) with
 * `transfer.fsckObjects` on and no tags. Nothing else the bundle names (other branches, tags,
 * `refs/remotes/…`, odd names) is ever written; the branch itself moves only by a fast-forward
 * the host decides ({@link fastForward}).
 *
 * @module
 */
import type { RunResult } from "../lib/process.ts";
import { ConflictError, RuntimeError } from "../lib/errors.ts";
import { gitInWorktree, type GitRunner, type WorktreeGit } from "./worktree_git.ts";

/** A full commit id (SHA-1 or SHA-256). */
export const COMMIT_ID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;

/** Settings of every fetch from a guest's bundle. */
const FETCH_SAFE = [
  "-c",
  "transfer.fsckObjects=true",
  "-c",
  "fetch.fsckObjects=true",
  "-c",
  "fetch.recurseSubmodules=false",
  "-c",
  "protocol.allow=never",
  "-c",
  "protocol.file.allow=always",
];

/** A bundle from the guest was refused. */
export class BundleError extends RuntimeError {
  constructor(message: string, hint?: string) {
    super("bundle", message, { hint });
  }
}

/** The private ref a sandbox's pulled branch lands in (`refs/tachikoma/pull/<sandbox>`). */
export function privateRef(sandbox: string): string {
  const safe = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/.test(sandbox)
    ? sandbox
    : Array.from(new TextEncoder().encode(sandbox), (b) => b.toString(16).padStart(2, "0"))
      .join("").slice(0, 200);
  return `refs/tachikoma/pull/${safe}`;
}

async function ok(run: GitRunner, w: WorktreeGit, args: string[]): Promise<string> {
  const r = await gitInWorktree(run, w, args);
  if (r.code !== 0) throw failure(args[0], r);
  return r.stdout.replace(/\n$/, "");
}

function failure(what: string, r: RunResult): RuntimeError {
  const text = firstLines(r.stderr || r.stdout);
  return new RuntimeError("git", `git ${what} failed (exit ${r.code})${text ? `: ${text}` : ""}`);
}

/** At most 3 non-empty lines, at most 300 characters, control characters shown escaped. */
export function firstLines(text: string): string {
  const lines = text.slice(0, 4096).split("\n").map((l) => l.trim()).filter((l) => l !== "");
  // deno-lint-ignore no-control-regex
  return lines.slice(0, 3).join(" / ").replace(/[\x00-\x1f\x7f]/g, "?").slice(0, 300);
}

/** The commit `ref` points at, or null when there is none. */
export async function commitOf(
  run: GitRunner,
  w: WorktreeGit,
  ref: string,
): Promise<string | null> {
  const r = await gitInWorktree(run, w, [
    "rev-parse",
    "--verify",
    "--quiet",
    "--end-of-options",
    `${ref}^{commit}`,
  ]);
  const id = r.stdout.trim();
  return r.code === 0 && COMMIT_ID.test(id) ? id : null;
}

/** Writes a bundle of `refs/heads/<branch>` (all of its history) to `path`; returns its head. */
export async function createBranchBundle(
  run: GitRunner,
  w: WorktreeGit,
  options: { branch: string; path: string },
): Promise<string> {
  const ref = `refs/heads/${options.branch}`;
  const head = await commitOf(run, w, ref);
  if (!head) throw new RuntimeError("git", `the branch '${options.branch}' has no commit`);
  await ok(run, w, ["bundle", "create", "-q", options.path, ref]);
  return head;
}

/** One `<id> <ref>` line of `git bundle list-heads`. */
export interface BundleHead {
  id: string;
  ref: string;
}

/** Parses `git bundle list-heads` output (lines that are not `<id> <ref>` are dropped). */
export function parseHeads(text: string): BundleHead[] {
  const out: BundleHead[] = [];
  for (const line of text.split("\n")) {
    const m = /^([0-9a-f]{40}|[0-9a-f]{64}) (.+)$/.exec(line);
    if (m) out.push({ id: m[1], ref: m[2] });
  }
  return out;
}

/**
 * Takes `refs/heads/<branch>` from the guest's bundle at `path` into `into` (a private ref) and
 * returns the commit. Refuses a file that is not a bundle, one whose prerequisites the host
 * lacks, one without that branch, and one whose branch is not a commit.
 */
export async function fetchBundleBranch(
  run: GitRunner,
  w: WorktreeGit,
  options: { path: string; branch: string; into: string; sandbox: string },
): Promise<string> {
  const want = `refs/heads/${options.branch}`;
  const verified = await gitInWorktree(run, w, ["bundle", "verify", "-q", options.path]);
  if (verified.code !== 0) {
    throw new BundleError(
      `the bundle from ${options.sandbox} does not verify: ${firstLines(verified.stderr)}`,
      "nothing was changed on the host; check the repository in the sandbox",
    );
  }
  const heads = parseHeads(await ok(run, w, ["bundle", "list-heads", options.path]));
  if (!heads.some((h) => h.ref === want)) {
    throw new BundleError(
      `the bundle from ${options.sandbox} has no branch '${options.branch}'`,
      "nothing was changed on the host",
    );
  }
  const fetched = await gitInWorktree(run, w, [
    ...FETCH_SAFE,
    "fetch",
    "--quiet",
    "--no-tags",
    "--no-write-fetch-head",
    "--no-recurse-submodules",
    "--no-auto-gc",
    "--end-of-options",
    options.path,
    `+${want}:${options.into}`,
  ]);
  if (fetched.code !== 0) {
    throw new BundleError(
      `taking '${options.branch}' from the bundle of ${options.sandbox} failed: ` +
        firstLines(fetched.stderr),
      "nothing was changed on the host branch",
    );
  }
  const id = await commitOf(run, w, options.into);
  const type = id ? await ok(run, w, ["cat-file", "-t", id]) : "";
  const at = await gitInWorktree(run, w, ["rev-parse", "--verify", "--quiet", options.into]);
  if (!id || type !== "commit" || at.stdout.trim() !== id) {
    await gitInWorktree(run, w, ["update-ref", "-d", options.into]);
    throw new BundleError(
      `the branch '${options.branch}' in the bundle of ${options.sandbox} is not a commit`,
      "nothing was changed on the host",
    );
  }
  return id;
}

/** How two commits relate. */
export type Relation = "same" | "ahead" | "behind" | "diverged";

/** How `theirs` relates to `ours`: `ahead` = theirs has commits ours lacks, and only those. */
export async function relate(
  run: GitRunner,
  w: WorktreeGit,
  options: { ours: string; theirs: string },
): Promise<Relation> {
  if (options.ours === options.theirs) return "same";
  const ancestor = async (a: string, b: string) => {
    const r = await gitInWorktree(run, w, ["merge-base", "--is-ancestor", a, b]);
    if (r.code > 1) throw failure("merge-base", r);
    return r.code === 0;
  };
  if (await ancestor(options.ours, options.theirs)) return "ahead";
  if (await ancestor(options.theirs, options.ours)) return "behind";
  return "diverged";
}

/** Commits reachable from `to` but not from `from`. */
export async function countBetween(
  run: GitRunner,
  w: WorktreeGit,
  options: { from: string; to: string },
): Promise<number> {
  const out = await ok(run, w, ["rev-list", "--count", options.to, "--not", options.from]);
  return Number(out.trim());
}

/**
 * Moves `refs/heads/<branch>` from `from` to `to` (a descendant). When the worktree has the
 * branch checked out, with `git merge --ff-only` (which refuses when local changes would be
 * overwritten: a {@link ConflictError} naming them); otherwise the ref alone, only if it still
 * points at `from`.
 */
export async function fastForward(
  run: GitRunner,
  w: WorktreeGit,
  options: { branch: string; from: string; to: string },
): Promise<"worktree" | "ref"> {
  const ref = `refs/heads/${options.branch}`;
  const head = await gitInWorktree(run, w, ["symbolic-ref", "--quiet", "HEAD"]);
  if (head.code === 0 && head.stdout.trim() === ref) {
    const r = await gitInWorktree(run, w, [
      "-c",
      "merge.verifySignatures=false",
      "merge",
      "--ff-only",
      "--quiet",
      "--no-edit",
      options.to,
    ]);
    if (r.code !== 0) {
      throw new ConflictError(
        `cannot fast-forward ${w.workTree} to ${options.to.slice(0, 12)}: ` +
          firstLines(r.stderr || r.stdout),
        {
          hint: "commit or stash the changes there that the sandbox's commits touch, then " +
            "`tachikoma pull` again",
        },
      );
    }
    return "worktree";
  }
  await ok(run, w, ["update-ref", "-m", "tachikoma pull", ref, options.to, options.from]);
  return "ref";
}
