/**
 * `tachikoma version`.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { buildCommit, VERSION } from "../lib/version.ts";

/** Prints the version. */
export function run(ctx: CommandContext): Promise<void> {
  const commit = buildCommit() ?? null;
  ctx.out.result(
    { version: VERSION, commit },
    () => `tachikoma ${VERSION}${commit ? ` (${commit})` : ""}`,
  );
  return Promise.resolve();
}
