/**
 * `tachikoma halt|stop [name]`: stop a sandbox (graceful, then forced).
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { log } from "../lib/log.ts";

/** Runs halt. */
export async function run(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const result = await service.halt(opts.name);
  if (result.previous === "missing") {
    log.warn(`${result.name} no longer exists in the backend; \`tachikoma prune\` drops its entry`);
  }
  ctx.out.result(result, () => `Stopped ${result.name}`);
}
