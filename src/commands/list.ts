/**
 * `tachikoma list|ls [--repo R] [--all]`: sandboxes with their live status. Default scope: the
 * current repo inside one, else every repo. Never fails because the backend is unreachable:
 * the status is then `unknown` and a warning says why (on stderr).
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { renderTable } from "../lib/table.ts";
import { type SandboxView, shortTime, syncText } from "../core/inventory.ts";
import { log } from "../lib/log.ts";

/** Runs list. */
export async function run(
  ctx: CommandContext,
  opts: { repo?: string; all: boolean },
): Promise<void> {
  const result = await ctx.app.listSandboxes({ repo: opts.repo, all: opts.all });
  for (const warning of result.warnings) log.warn(warning);
  ctx.out.result({ sandboxes: result.sandboxes }, () => {
    if (result.sandboxes.length === 0) return "No sandboxes.";
    // The SYNC column (ahead/behind as last recorded) only when a sandbox has its code by git.
    const sync = result.sandboxes.some((s) => s.code_sync)
      ? [{ header: "SYNC", value: (s: SandboxView) => syncText(s.code_sync) }]
      : [];
    return renderTable<SandboxView>([
      { header: "NAME", value: (s) => s.name },
      { header: "REPO", value: (s) => s.repo },
      { header: "BRANCH", value: (s) => s.branch },
      // What the MCP daemon's reaper did shows next to the status it left.
      { header: "STATUS", value: (s) => s.reaped ? `${s.status} (reaper)` : s.status },
      { header: "IP", value: (s) => s.ip },
      ...sync,
      { header: "LAST USED", value: (s) => shortTime(s.last_used) },
    ], result.sandboxes);
  });
}
