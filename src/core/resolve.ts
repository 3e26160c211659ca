/**
 * `[name]` resolution for enter/exec/halt/suspend/destroy/status/cd: the full sandbox name, a
 * branch of the current repo, or a unique prefix (of a name, of a name without the
 * `tachikoma-` prefix, or of a branch of the current repo). No name: the current branch's
 * sandbox. Ambiguity is a {@link UsageError} listing the matches; no match is a
 * {@link NotFoundError} (exit 3).
 *
 * @module
 */
import type { SandboxRecord } from "../state/schema.ts";
import type { RepoContext } from "../git/repo.ts";
import { NotFoundError, UsageError } from "../lib/errors.ts";
import { detachedBranchName, isSameSandbox } from "../lib/naming.ts";

/** The current repo as name resolution sees it (null outside a repo). */
export type RepoView = Pick<RepoContext, "name" | "mainRoot" | "branch" | "detachedAt">;

/** The branch a repo view stands for: its branch, or the detached commit's label. */
export function currentBranch(repo: RepoView): string {
  if (repo.branch) return repo.branch;
  return detachedBranchName(repo.detachedAt ?? "");
}

function inRepo(record: SandboxRecord, repo: RepoView): boolean {
  if (record.repo_root) return record.repo_root === repo.mainRoot;
  return record.repo === repo.name;
}

/** Finds the record `name` designates (see the module doc). */
export function resolveRecord(
  records: readonly SandboxRecord[],
  name: string | undefined,
  repo: RepoView | null,
): SandboxRecord {
  if (name === undefined || name === "") {
    if (!repo) {
      throw new UsageError("not inside a git repository: name the sandbox", {
        hint: "see `tachikoma list --all` for the names",
      });
    }
    const branch = currentBranch(repo);
    const own = records.find((r) =>
      isSameSandbox(r, { repo: repo.name, repoRoot: repo.mainRoot, branch })
    );
    if (own) return own;
    throw new NotFoundError(`no sandbox for branch '${branch}' of ${repo.name}`, {
      hint: "`tachikoma spawn` creates it; `tachikoma list` shows the others",
    });
  }
  const exact = records.find((r) => r.name === name);
  if (exact) return exact;
  if (repo) {
    const byBranch = records.filter((r) => r.branch === name && inRepo(r, repo));
    if (byBranch.length === 1) return byBranch[0];
  }
  const matches = new Map<string, SandboxRecord>();
  for (const r of records) {
    if (r.name.startsWith(name) || r.name.startsWith(`tachikoma-${name}`)) matches.set(r.name, r);
    else if (repo && inRepo(r, repo) && r.branch.startsWith(name)) matches.set(r.name, r);
  }
  if (matches.size === 1) return [...matches.values()][0];
  if (matches.size > 1) {
    const list = [...matches.values()].map((r) => `${r.name} (${r.branch})`).sort();
    throw new UsageError(`'${name}' matches ${matches.size} sandboxes: ${list.join(", ")}`, {
      hint: "give more of the name",
    });
  }
  throw new NotFoundError(`no sandbox matches '${name}'`, {
    hint: repo
      ? "see `tachikoma list` (this repo) or `tachikoma list --all`"
      : "see `tachikoma list --all`",
  });
}
