/**
 * `tachikoma prune [--days D] [--dry-run]`: destroy sandboxes unused for D days (default
 * `prune_after_days`) and drop state entries whose sandbox is gone. Worktrees are left alone.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { log } from "../lib/log.ts";

/** Runs prune. */
export async function run(
  ctx: CommandContext,
  opts: { days?: number; dryRun: boolean },
): Promise<void> {
  const service = await ctx.app.service();
  const result = await service.prune({ days: opts.days, dryRun: opts.dryRun });
  for (const warning of result.warnings) log.warn(warning);
  ctx.out.result(result, () => {
    if (result.pruned.length === 0) return `Nothing to prune (unused for ${result.days} days)`;
    const verb = result.dry_run ? "Would prune" : "Pruned";
    return result.pruned.map((p) =>
      `${verb}: ${p.name} (${
        p.reason === "missing" ? "sandbox gone, state entry" : `last used ${p.last_used}`
      })`
    ).join("\n");
  });
}
