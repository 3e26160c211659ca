/**
 * `tachikoma pull [name]`: bring a code-by-git sandbox's commits on its branch back to the host
 * branch (fast-forward; a clear refusal when they diverged). A sandbox that mounts the host
 * worktree has nothing to pull: a notice, exit 0. See `src/core/code_sync.ts`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { type PullResult, pullSandbox } from "../core/code_sync.ts";
import { log } from "../lib/log.ts";

/** Human text of a pull. */
export function pullText(r: PullResult): string {
  switch (r.action) {
    case "fast_forward":
      return `${r.branch}: ${r.from?.slice(0, 12)}..${r.to?.slice(0, 12)} (${r.commits} ` +
        `commit${r.commits === 1 ? "" : "s"} from ${r.name}` +
        `${r.worktree_updated ? ", worktree updated" : ""})`;
    case "up_to_date":
      return `${r.branch}: up to date with ${r.name} (${r.to?.slice(0, 12)})`;
    case "behind":
      return `${r.branch}: nothing to pull from ${r.name} (the host is ahead)`;
    default:
      return `${r.name}: nothing to pull (the worktree is shared)`;
  }
}

/** Runs pull. */
export async function run(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const record = await service.resolve(opts.name);
  const result = await pullSandbox(service.deps, record);
  await service.touch(record.name);
  if (result.notice) log.info(result.notice);
  ctx.out.result(result, () => pullText(result));
}
