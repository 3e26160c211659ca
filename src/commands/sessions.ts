/**
 * `tachikoma sessions [name]`: the persistent sessions of a sandbox (name, started, attached
 * clients, last activity); `tachikoma sessions kill <session> [-n name]` ends one and what runs
 * in it. A sandbox that is not running has none.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { renderTable } from "../lib/table.ts";
import { shortTime } from "../core/inventory.ts";
import { killSession, listSessions, type SessionInfo } from "../core/sessions.ts";
import { log } from "../lib/log.ts";

/** A guest-chosen name made safe for a terminal (control characters escaped). */
function shown(name: string): string {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x1f\x7f-\x9f]/.test(name) ? JSON.stringify(name) : name;
}

/** Runs `sessions [name]`. */
export async function list(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const r = await listSessions(service, opts.name);
  if (r.skipped > 0) log.warn(`${r.name}: ${r.skipped} line(s) of tmux's answer were not sessions`);
  ctx.out.result({ name: r.name, state: r.state, tmux: r.tmux, sessions: r.sessions }, () => {
    if (r.state !== "running") return `${r.name} is ${r.state}: no sessions.`;
    if (!r.tmux) return `${r.name} has no tmux: no sessions (tachikoma spawn --reprovision).`;
    if (r.sessions.length === 0) return "No sessions.";
    return renderTable<SessionInfo>([
      { header: "SESSION", value: (s) => shown(s.name) },
      { header: "STARTED", value: (s) => shortTime(s.started) },
      { header: "ATTACHED", value: (s) => String(s.attached) },
      { header: "LAST ACTIVITY", value: (s) => shortTime(s.last_activity) },
    ], r.sessions);
  });
}

/** Runs `sessions kill <session>`. */
export async function kill(
  ctx: CommandContext,
  opts: { name?: string; session: string },
): Promise<void> {
  const service = await ctx.app.service();
  const r = await killSession(service, opts.name, opts.session);
  ctx.out.result(r, () => `Killed session ${r.session} in ${r.name}.`);
}
