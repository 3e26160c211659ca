/**
 * `tachikoma pull` and the ahead/behind of code-by-git sandboxes (engines that cannot mount the
 * host: `capabilities.mountHost` false). The guest's branch comes back as a bundle
 * (`src/provision/code_git.ts`), is checked and taken into a private ref on the host
 * (`src/git/bundle.ts`), and the host branch moves only by a fast-forward; when the two
 * diverged, nothing moves and one refusal names both commits. A sandbox that mounts the host
 * shares its worktree: there is nothing to pull (a notice, exit 0).
 *
 * Where the branch stands is recorded in the sandbox's state (`code_sync`) by spawn, pull and
 * status, so `list` shows it without asking the guest.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { CodeSyncRecord, SandboxRecord } from "../state/schema.ts";
import { openRepo } from "../git/repo.ts";
import { withSandboxLock } from "../state/lock.ts";
import { safeWorktreeGit, type WorktreeGit } from "../git/worktree_git.ts";
import {
  commitOf,
  countBetween,
  fastForward,
  fetchBundleBranch,
  privateRef,
  relate,
} from "../git/bundle.ts";
import { guestBranchState, takeBranchOut } from "../provision/code_git.ts";
import { Guest } from "../provision/guest.ts";
import { ConflictError, NotFoundError, RuntimeError } from "../lib/errors.ts";
import { iso, type LifecycleDeps, patchRecord } from "./lifecycle.ts";

/** What `tachikoma pull` did (the `--json` document, see docs/json.md). */
export interface PullResult {
  name: string;
  branch: string;
  /** `share`: the engine mounts the worktree (nothing to pull); `git`: code by git. */
  mode: "share" | "git";
  /**
   * `shared`: nothing to pull; `up_to_date`: the guest has nothing new; `fast_forward`: the
   * host branch moved to the guest's head; `behind`: the host has commits the guest lacks.
   */
  action: "shared" | "up_to_date" | "fast_forward" | "behind";
  /** Host branch head before and after (null for `shared`). */
  from: string | null;
  to: string | null;
  /** The guest's branch head (null for `shared`). */
  guest_head: string | null;
  /** Commits the host branch gained. */
  commits: number;
  /** Whether the worktree's files were updated (it has the branch checked out). */
  worktree_updated: boolean;
  /** The private ref holding the guest's branch on the host (null: none taken). */
  ref: string | null;
  notice: string | null;
}

/** A pull that moved nothing: `fields` over no commits, no ref, no worktree update. */
function nothingPulled(
  record: SandboxRecord,
  fields: Pick<PullResult, "mode" | "action"> & Partial<PullResult>,
): PullResult {
  return {
    name: record.name,
    branch: record.branch,
    from: null,
    to: null,
    guest_head: null,
    commits: 0,
    worktree_updated: false,
    ref: null,
    notice: null,
    ...fields,
  };
}

/** Options of {@link pullSandbox}. */
export interface PullOptions {
  /** The code dir in the guest (default `/mnt/tachikoma/code`). */
  guestDir?: string;
  /** Largest bundle taken (default 512 MiB). */
  maxBytes?: number;
}

/** True when `backend` brings code in by git (it cannot mount the host). */
export function codeByGit(backend: Backend): boolean {
  return backend.capabilities.mountHost === false;
}

async function hostGit(deps: LifecycleDeps, record: SandboxRecord): Promise<WorktreeGit> {
  const dir = record.worktree_path;
  try {
    if (!(await Deno.stat(dir)).isDirectory) throw new Error();
  } catch {
    throw new NotFoundError(`the worktree of ${record.name} is gone: ${dir}`, {
      hint: `\`tachikoma spawn ${record.branch}\` makes it again`,
    });
  }
  const mainRoot = record.repo_root ?? (await openRepo(deps.runner, dir)).mainRoot;
  return await safeWorktreeGit({ runner: deps.runner, mainRoot, workTree: dir });
}

/**
 * Brings the guest's commits on the sandbox's branch back to the host branch (under the
 * sandbox's lock: a spawn or another pull of it waits).
 */
export async function pullSandbox(
  deps: LifecycleDeps,
  record: SandboxRecord,
  options: PullOptions = {},
): Promise<PullResult> {
  const lock = { dir: deps.stateDir, name: record.name, signal: deps.signal, clock: deps.clock };
  return await withSandboxLock(lock, () => pullLocked(deps, record, options));
}

async function pullLocked(
  deps: LifecycleDeps,
  record: SandboxRecord,
  options: PullOptions,
): Promise<PullResult> {
  const backend = await deps.backend();
  if (!codeByGit(backend)) {
    return nothingPulled(record, {
      mode: "share",
      action: "shared",
      notice: `${record.name} shares its worktree with the host (${backend.name}): nothing to pull`,
    });
  }
  const w = await hostGit(deps, record);
  const run = { runner: deps.runner, signal: deps.signal };
  const branchRef = `refs/heads/${record.branch}`;
  const host = await commitOf(run, w, branchRef);
  if (!host) throw new NotFoundError(`the host has no branch '${record.branch}'`);
  const live = await backend.get(record.name).then((i) => i.state, (e) => {
    if (e instanceof NotFoundError) return "missing";
    throw e;
  });
  if (live !== "running") {
    throw new ConflictError(`${record.name} is ${live}: its commits cannot be pulled`, {
      hint: live === "missing"
        ? `it is gone from ${backend.name}; \`tachikoma destroy ${record.name}\` forgets it`
        : `start it (\`tachikoma spawn ${record.branch}\`), then \`tachikoma pull\` again`,
    });
  }
  const guest = new Guest(backend, record.name, {
    user: deps.config.ssh_user,
    signal: deps.signal,
  });
  const step = deps.reporter.step(`taking '${record.branch}' out of ${record.name}`);
  let out: Awaited<ReturnType<typeof takeBranchOut>>;
  try {
    out = await takeBranchOut({
      guest,
      branch: record.branch,
      dir: options.guestDir,
      basis: host,
      maxBytes: options.maxBytes,
    });
    step.done(out.kind === "bundle" ? `${out.bundle.length} bytes` : out.kind);
  } catch (error) {
    step.fail(error instanceof Error ? error.message : String(error));
    throw error;
  }
  if (out.kind === "missing") {
    throw new NotFoundError(
      out.why === "norepo"
        ? `${record.name} has no repository at its code dir`
        : `${record.name}'s repository has no branch '${record.branch}'`,
      { hint: `\`tachikoma spawn --reprovision ${record.branch}\` brings the branch in again` },
    );
  }
  const result = (action: PullResult["action"], extra: Partial<PullResult>): PullResult =>
    nothingPulled(record, {
      mode: "git",
      action,
      from: host,
      to: host,
      guest_head: out.head,
      ...extra,
    });
  if (out.kind === "same") {
    await recordSync(deps, record.name, { guest_head: host, ahead: 0, behind: 0 });
    return result("up_to_date", { notice: `${record.name} has nothing new on '${record.branch}'` });
  }
  const temp = await Deno.makeTempDir({ prefix: "tachikoma-pull-" });
  let theirs: string;
  const ref = privateRef(record.name);
  try {
    const path = `${temp}/guest.bundle`;
    await Deno.writeFile(path, out.bundle, { mode: 0o600 });
    theirs = await fetchBundleBranch(run, w, {
      path,
      branch: record.branch,
      into: ref,
      sandbox: record.name,
    });
  } finally {
    await Deno.remove(temp, { recursive: true }).catch(() => {});
  }
  const relation = await relate(run, w, { ours: host, theirs });
  if (relation === "same") {
    await recordSync(deps, record.name, { guest_head: theirs, ahead: 0, behind: 0 });
    return result("up_to_date", { guest_head: theirs, ref });
  }
  if (relation === "behind") {
    const behind = await countBetween(run, w, { from: theirs, to: host });
    await recordSync(deps, record.name, { guest_head: theirs, ahead: 0, behind });
    return result("behind", {
      guest_head: theirs,
      ref,
      notice: `the host branch has ${behind} commit${behind === 1 ? "" : "s"} ` +
        `${record.name} lacks; nothing to pull`,
    });
  }
  const ahead = await countBetween(run, w, { from: host, to: theirs });
  if (relation === "diverged") {
    const behind = await countBetween(run, w, { from: theirs, to: host });
    await recordSync(deps, record.name, { guest_head: theirs, ahead, behind });
    throw new ConflictError(
      `'${record.branch}' diverged: the sandbox is at ${theirs.slice(0, 12)} (${ahead} ` +
        `commit${ahead === 1 ? "" : "s"} the host lacks), the host at ${host.slice(0, 12)} ` +
        `(${behind} the sandbox lacks); nothing was changed`,
      {
        hint: `the sandbox's commits are in ${ref} on the host: merge or rebase them there ` +
          `(\`git merge ${ref}\` in ${record.worktree_path}), or rebase in the sandbox, then ` +
          "`tachikoma pull` again",
      },
    );
  }
  const moved = await fastForward(run, w, { branch: record.branch, from: host, to: theirs });
  const now = await commitOf(run, w, branchRef);
  if (now !== theirs) {
    throw new RuntimeError("pull", `the host branch '${record.branch}' did not move to ${theirs}`);
  }
  await recordSync(deps, record.name, { guest_head: theirs, ahead: 0, behind: 0 });
  return result("fast_forward", {
    to: theirs,
    guest_head: theirs,
    commits: ahead,
    worktree_updated: moved === "worktree",
    ref,
  });
}

/** Records where a code-by-git sandbox's branch stands. */
async function recordSync(
  deps: LifecycleDeps,
  name: string,
  sync: Omit<CodeSyncRecord, "mode" | "checked_at">,
): Promise<CodeSyncRecord> {
  const value: CodeSyncRecord = { mode: "git", ...sync, checked_at: iso(deps.clock.now()) };
  await patchRecord(deps.store, name, (r) => void (r.code_sync = value));
  return value;
}

/**
 * Asks a running code-by-git sandbox where its branch stands against the host branch and
 * records it (spawn, status). Counts the host can compute itself (it has the guest's head) come
 * from host git; otherwise from the guest's validated answer.
 */
export async function refreshCodeSync(
  deps: LifecycleDeps,
  sandbox: { backend: Backend; record: SandboxRecord; guestDir?: string },
): Promise<CodeSyncRecord> {
  const { backend, record } = sandbox;
  const w = await hostGit(deps, record);
  const run = { runner: deps.runner, signal: deps.signal };
  const host = await commitOf(run, w, `refs/heads/${record.branch}`);
  const guest = new Guest(backend, record.name, {
    user: deps.config.ssh_user,
    signal: deps.signal,
  });
  const state = await guestBranchState({
    guest,
    branch: record.branch,
    dir: sandbox.guestDir,
    basis: host,
  });
  let { ahead, behind } = state;
  if (state.head && host && await commitOf(run, w, state.head) === state.head) {
    ahead = await countBetween(run, w, { from: host, to: state.head });
    behind = await countBetween(run, w, { from: state.head, to: host });
  }
  return await recordSync(deps, record.name, { guest_head: state.head, ahead, behind });
}

/**
 * What `pr` does first: a code-by-git sandbox that runs is pulled (a divergence stops `pr`); one
 * that does not run cannot be asked (a notice: the host branch is used as it is). Null for a
 * sandbox that shares its worktree.
 */
export async function pullFirst(
  service: { deps: LifecycleDeps; backend: () => Promise<Backend> },
  record: SandboxRecord,
): Promise<PullResult | null> {
  const backend = await service.backend();
  if (!codeByGit(backend)) return null;
  const state = await backend.get(record.name).then((i) => i.state, () => "missing");
  if (state !== "running") {
    return nothingPulled(record, {
      mode: "git",
      action: "up_to_date",
      notice: `${record.name} is ${state}: its commits cannot be pulled; the pull request ` +
        "has the host branch as it is (`tachikoma pull` once it runs)",
    });
  }
  return await pullSandbox(service.deps, record);
}
