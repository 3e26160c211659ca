/**
 * `tachikoma mcp [--http [--listen H:P] [--allow-remote --tls-cert F --tls-key F]]`,
 * `mcp token`, `mcp status`, `mcp stop`: the MCP server on stdio (one client, which starts
 * it) or as the HTTP daemon (several clients, bearer token, reaper). Thin: parse, call
 * `src/mcp/`, print.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";

/** Flags of `tachikoma mcp`. */
export interface McpFlags {
  /** Serve streamable HTTP (the daemon) instead of stdio. */
  http?: boolean;
  listen?: string;
  allowRemote?: boolean;
  tlsCert?: string;
  tlsKey?: string;
}

/** Serves the MCP tools: on stdio until its input ends, or as the HTTP daemon until stopped. */
export async function run(ctx: CommandContext, flags: McpFlags = {}): Promise<void> {
  if (!flags.http) {
    if (flags.listen ?? flags.allowRemote ?? flags.tlsCert ?? flags.tlsKey) {
      const { UsageError } = await import("../lib/errors.ts");
      throw new UsageError("--listen, --allow-remote and --tls-* go with --http");
    }
    const m = await import("../mcp/mod.ts");
    await m.serveStdio({ context: await ctx.app.mcpContext(), signal: ctx.signal });
    return;
  }
  const [loaded, { planListen }, { reaperPolicy }, { runHttpDaemon }] = await Promise.all([
    ctx.config(),
    import("../mcp/listen.ts"),
    import("../mcp/reaper.ts"),
    import("../mcp/daemon.ts"),
  ]);
  const plan = await planListen(flags, loaded.config.mcp.listen);
  await runHttpDaemon({
    context: await ctx.app.mcpContext(),
    stateDir: loaded.files.dir,
    plan,
    reaper: reaperPolicy(loaded.config.mcp),
    signal: ctx.signal,
    onListening: (started) =>
      ctx.out.result(
        started,
        () =>
          `MCP daemon listening on ${started.url} (PID ${started.pid}); ` +
          "`tachikoma mcp token` prints how to connect a client; Ctrl-C stops it",
      ),
  });
}

/** `mcp token`: the bearer token and the `claude mcp add` line. */
export async function token(ctx: CommandContext): Promise<void> {
  const loaded = await ctx.config();
  const [{ mcpPaths }, { tokenInfo }, { planListen }] = await Promise.all([
    import("../mcp/daemon_files.ts"),
    import("../mcp/daemon_control.ts"),
    import("../mcp/listen.ts"),
  ]);
  const fallback = await planListen({}, loaded.config.mcp.listen).then((p) => p.url, () => "");
  const info = await tokenInfo(mcpPaths(loaded.files.dir), fallback);
  ctx.out.result(
    info,
    () => `${info.token}\n\nAdd the daemon to Claude Code:\n  ${info.claude_command}`,
  );
}

/** `mcp status`: exit 0 whether or not the daemon runs (see `running`/`answering`). */
export async function status(ctx: CommandContext): Promise<void> {
  const [{ configDir }, { mcpPaths }, { daemonStatus }] = await Promise.all([
    import("../config/paths.ts"),
    import("../mcp/daemon_files.ts"),
    import("../mcp/daemon_control.ts"),
  ]);
  const s = await daemonStatus(mcpPaths(configDir()));
  ctx.out.result(s, () => {
    if (!s.running) return `MCP daemon is NOT running (${s.reason})`;
    if (!s.answering) return `MCP daemon (PID ${s.pid}) runs but ${s.reason}`;
    const live = s.live as {
      sessions?: number;
      calls_running?: number;
      reaper?: { enabled?: boolean; stopped?: number; destroyed?: number; last_pass_at?: string };
    };
    const r = live.reaper;
    const reaper = r?.enabled
      ? `reaper: ${r.stopped ?? 0} stopped, ${r.destroyed ?? 0} deleted (last pass ${
        r.last_pass_at ?? "not yet"
      })`
      : "reaper: off";
    return `MCP daemon is running at ${s.url} (PID ${s.pid}, since ${s.started_at}): ` +
      `${live.sessions ?? 0} session(s), ${live.calls_running ?? 0} call(s) running; ${reaper}\n` +
      `log: ${s.log}`;
  });
}

/** `mcp stop` (exit 0 when none runs: `outcome` says). */
export async function stop(ctx: CommandContext): Promise<void> {
  const [{ configDir }, { mcpPaths }, { stopDaemon }] = await Promise.all([
    import("../config/paths.ts"),
    import("../mcp/daemon_files.ts"),
    import("../mcp/daemon_control.ts"),
  ]);
  const result = await stopDaemon(mcpPaths(configDir()), { signal: ctx.signal });
  ctx.out.result(result, () => result.message);
}
