/**
 * The sandbox service for a command: the merged config, the command's progress reporter and
 * its Ctrl-C signal.
 *
 * @module
 */
import type { CommandContext } from "../cli/context.ts";
import { openSandboxService } from "../core/open_service.ts";
import type { SandboxService } from "../core/sandbox_service.ts";

/** Opens the service the lifecycle commands call. */
export async function serviceFor(ctx: CommandContext): Promise<SandboxService> {
  return openSandboxService({
    loaded: await ctx.config(),
    cwd: ctx.cwd,
    reporter: ctx.progress,
    signal: ctx.signal,
  });
}
