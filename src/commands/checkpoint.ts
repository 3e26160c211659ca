/**
 * `tachikoma checkpoint|cp create [name] [--label L]`, `list [name]`,
 * `restore <name> <label>`, `delete <name> <label>`: snapshots of a sandbox's own disk (not
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
