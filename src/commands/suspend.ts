/**
 * `tachikoma suspend [name]`: suspend a sandbox, keeping its memory. Where the backend cannot
 * suspend (`capabilities.suspend` false, e.g. tart with Linux guests), it is stopped instead
 * and the output says so.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";

/** Runs suspend. */
export async function run(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const result = await service.suspend(opts.name);
  const backend = (await service.backend()).name;
  ctx.out.result(
    { ...result, backend },
    () =>
      result.suspended
        ? `Suspended ${result.name}`
        : result.previous === "stopped"
        ? `${result.name} is already stopped`
        : `Stopped ${result.name} (the ${backend} backend cannot suspend, so it was stopped)`,
  );
}
