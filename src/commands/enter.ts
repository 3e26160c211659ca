/**
 * `tachikoma enter [name]`: open a shell in a running sandbox. The shell's exit status becomes
 * ours; `last_used` is updated. With `--json`, the shell's output goes to stderr and
 * `{"name","exit_code"}` is printed when it ends.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { interactiveShell } from "../core/interactive.ts";

/** Runs enter. */
export async function run(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const { record, backend } = await service.ready(opts.name);
  const code = await interactiveShell(service.deps, { backend, record }, {
    json: ctx.globals.json,
    signal: ctx.signal,
  });
  ctx.out.result({ name: record.name, exit_code: code }, () => undefined);
  Deno.exitCode = code;
}
