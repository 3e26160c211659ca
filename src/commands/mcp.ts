/**
 * `tachikoma mcp`: serve the MCP tools on stdio (see `src/mcp/`). Add it to Claude Code with
 * `claude mcp add tachikoma -- tachikoma mcp`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";

/** Runs the MCP server until its input ends. */
export async function run(ctx: CommandContext): Promise<void> {
  const m = await import("../mcp/mod.ts");
  await m.serveStdio({ context: await ctx.app.mcpContext(), signal: ctx.signal });
}
