/**
 * Auto-start for `enter` and `exec`: a sandbox that is stopped or suspended (or failed and
 * stopped) is started the way `spawn` starts it — shares, boot wait, provisioning resumed where
 * it stopped — with a notice on stderr; with `--no-start` it is refused in one line instead.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { ConflictError, NotFoundError } from "../lib/errors.ts";
import { isNotFound, type LifecycleDeps } from "./lifecycle.ts";

/** What to do with a sandbox that is not running. */
export interface StartPolicy {
  /** Start it (with a notice); false: refuse. */
  start: boolean;
  /** The flag that said not to start (`--no-start`), named in the refusal. */
  flag?: string;
}

/** Live states auto-start acts on. */
const STARTABLE = new Set(["stopped", "suspended", "stopping"]);

/**
 * Returns the record of a running sandbox: as it is when it runs, after starting it when it is
 * stopped or suspended and `policy.start`; otherwise throws (NotFoundError when the engine no
 * longer has it, ConflictError naming its state).
 */
export async function ensureRunning(
  deps: LifecycleDeps,
  sandbox: { backend: Backend; record: SandboxRecord },
  policy: StartPolicy,
): Promise<SandboxRecord> {
  const { backend, record } = sandbox;
  let state: string;
  try {
    state = (await backend.get(record.name)).state;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw new NotFoundError(`sandbox ${record.name} no longer exists in ${backend.name}`, {
      hint: `\`tachikoma spawn ${record.branch}\` creates it again; ` +
        "`tachikoma prune` drops the stale entry",
    });
  }
  if (state === "running") return record;
  const why = record.status === "failed" && record.failure ? ` (it failed: ${record.failure})` : "";
  if (!STARTABLE.has(state)) {
    throw new ConflictError(`sandbox ${record.name} is ${state}${why}`, {
      hint: `try again when it has settled, or \`tachikoma spawn ${record.branch} --no-attach\``,
    });
  }
  if (!policy.start) {
    const by = policy.flag ? ` and ${policy.flag} was given` : "";
    throw new ConflictError(`sandbox ${record.name} is ${state}${by}${why}`, {
      hint: `start it with \`tachikoma spawn ${record.branch} --no-attach\`` +
        (policy.flag ? `, or leave out ${policy.flag}` : ""),
    });
  }
  deps.reporter.note(`sandbox ${record.name} is ${state}: starting it (--no-start refuses)`);
  const { spawnSandbox } = await import("./spawn.ts");
  const spawned = await spawnSandbox(deps, {
    cwd: record.repo_root ?? record.worktree_path,
    branch: record.branch,
  });
  if (spawned.name !== record.name) {
    throw new ConflictError(
      `starting ${record.name} reached ${spawned.name} instead (its repository or branch moved)`,
      { hint: `\`tachikoma spawn ${record.branch} --no-attach\` in its repository` },
    );
  }
  return spawned.record;
}
