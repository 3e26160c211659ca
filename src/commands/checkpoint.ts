/**
 * `tachikoma checkpoint|cp create [name] [--label L]`, `list [name]`,
 * `restore <name> <label>`, `delete <name> <label>`, `fork <name>:<label> <branch>`: snapshots of a sandbox's own disk (not
 * of the worktree, which stays on the host). See `src/core/checkpoints.ts`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import {
  createCheckpoint,
  deleteCheckpoint,
  formatDuration,
  formatSize,
  listCheckpoints,
  restoreCheckpoint,
} from "../core/checkpoints.ts";
import { shortTime } from "../core/inventory.ts";
import { renderTable } from "../lib/table.ts";
import { UsageError } from "../lib/errors.ts";

/** `checkpoint create [name] [--label L]`. */
export async function create(
  ctx: CommandContext,
  opts: { name?: string; label?: string },
): Promise<void> {
  const result = await createCheckpoint(await ctx.app.service(), opts);
  ctx.out.result(result, () => `Checkpoint "${result.label}" created for ${result.name}`);
}

/** `checkpoint list [name]`. */
export async function list(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const result = await listCheckpoints(await ctx.app.service(), opts);
  ctx.out.result(
    result,
    () =>
      result.checkpoints.length === 0 ? `No checkpoints for ${result.name}.` : renderTable([
        { header: "LABEL", value: (c) => c.label },
        { header: "CREATED", value: (c) => shortTime(c.created_at) },
        { header: "SIZE", value: (c) => formatSize(c.size_bytes) },
      ], result.checkpoints),
  );
}

/** `checkpoint restore <name> <label>`. */
export async function restore(
  ctx: CommandContext,
  opts: { name: string; label: string },
): Promise<void> {
  const result = await restoreCheckpoint(await ctx.app.service(), opts);
  ctx.out.result(
    result,
    () =>
      `Restored ${result.name} to "${result.label}" in ${formatDuration(result.elapsed_ms)}` +
      ` (ready at ${result.ip}; open a shell: tachikoma enter ${result.name})`,
  );
}

/** `checkpoint delete <name> <label>`. */
export async function remove(
  ctx: CommandContext,
  opts: { name: string; label: string },
): Promise<void> {
  const result = await deleteCheckpoint(await ctx.app.service(), opts);
  ctx.out.result(result, () => `Deleted checkpoint "${result.label}" of ${result.name}`);
}

/**
 * `checkpoint fork <name>:<label> <branch>`: a new branch of the sandbox's repo gets its own
 * sandbox cloned from the checkpoint (as `spawn <branch> --from <name>:<label> --no-attach`).
 */
export async function fork(
  ctx: CommandContext,
  opts: { source: string; branch: string },
): Promise<void> {
  const colon = opts.source.lastIndexOf(":");
  if (colon <= 0 || colon === opts.source.length - 1) {
    throw new UsageError(`expected <sandbox>:<label>, got ${JSON.stringify(opts.source)}`, {
      hint: "see `tachikoma checkpoint list <sandbox>` for the labels",
    });
  }
  const deps = await ctx.app.lifecycleDeps();
  const { resolveRecord } = await import("../core/resolve.ts");
  const record = resolveRecord((await deps.store.read()).vms, opts.source.slice(0, colon), null);
  const { spawnSandbox } = await import("../core/spawn.ts");
  const { spawnDocument } = await import("./spawn.ts");
  const result = await spawnSandbox(deps, {
    cwd: record.repo_root ?? ctx.cwd,
    branch: opts.branch,
    from: `${record.name}:${opts.source.slice(colon + 1)}`,
  });
  ctx.out.result(
    spawnDocument(result, false),
    () =>
      `Forked ${record.name}:${opts.source.slice(colon + 1)} into ${result.name} ` +
      `(branch ${result.record.branch}), ready at ${result.address}\nworktree: ${result.worktree.path}`,
  );
}
