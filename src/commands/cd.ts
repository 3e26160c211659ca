/**
 * `tachikoma cd [name]`: print a sandbox's worktree path (use: `cd "$(tachikoma cd)"`).
 *
 * @module
 */
import type { CommandContext } from "./context.ts";

/** Runs cd. */
export async function run(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const record = await service.resolve(opts.name);
  ctx.out.result(
    { name: record.name, worktree_path: record.worktree_path },
    () => record.worktree_path,
  );
}
