/**
 * `tachikoma status [name]`: one sandbox, its record merged with the live status.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { type SandboxView, shortTime } from "../core/inventory.ts";
import { log } from "../lib/log.ts";

/** Human text of a sandbox (values start at column 14). */
export function statusText(s: SandboxView): string {
  const p = s.provisioned;
  const provisioned = !p
    ? "unknown"
    : p.complete
    ? `complete (recipe v${p.version})`
    : `incomplete (last step: ${p.last_step ?? "none"})`;
  const lines: [string, string][] = [
    ["Name", s.name],
    ["Repo", s.repo],
    ["Branch", s.branch],
    ["Status", s.status],
    ["IP", s.ip ?? "-"],
    ["Worktree", s.worktree_path],
    ["Backend", s.backend],
    ["Created", shortTime(s.created_at)],
    ["Last used", shortTime(s.last_used)],
    ["Provisioned", provisioned],
  ];
  if (s.failure) lines.push(["Failure", s.failure]);
  if (s.code_sync) {
    const c = s.code_sync;
    lines.push([
      "Code",
      `by git: ${c.ahead ?? "?"} ahead, ${c.behind ?? "?"} behind the host branch ` +
      `(guest at ${c.guest_head?.slice(0, 12) ?? "?"}, checked ${shortTime(c.checked_at)})`,
    ]);
  }
  if (s.created_by === "mcp") lines.push(["Made by", "MCP (the MCP daemon's reaper handles it)"]);
  if (s.reaped) {
    lines.push(["Reaper", `${s.reaped.action} at ${shortTime(s.reaped.at)}: ${s.reaped.reason}`]);
  }
  return lines.map(([k, v]) => `${(k + ":").padEnd(13)}${v}`).join("\n");
}

/** Runs status. */
export async function run(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const result = await service.status(opts.name);
  for (const warning of result.warnings) log.warn(warning);
  ctx.out.result(result.sandbox, () => statusText(result.sandbox));
}
