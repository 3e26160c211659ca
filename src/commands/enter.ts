/**
 * `tachikoma enter [name] [--session NAME] [--no-persist] [--no-start]`: attach to a persistent
 * session in the sandbox (tmux in the guest, `main` by default, created on first use; it keeps
 * running when the connection drops; detach with Ctrl-b d), or with `--no-persist` open a plain
 * shell. A stopped or suspended sandbox is started first, with a notice on stderr, unless
 * `--no-start`. The session's exit status becomes ours; `last_used` is updated. With `--json`,
 * the terminal output goes to stderr and `{"name","session","exit_code"}` is printed when it
 * ends.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { interactiveShell } from "../core/interactive.ts";
import { checkSessionName, DEFAULT_SESSION } from "../core/sessions.ts";
import { UsageError } from "../lib/errors.ts";

/** Options from the command line. */
export interface EnterOptions {
  name?: string;
  session?: string;
  persist: boolean;
  start: boolean;
}

/** Runs enter. */
export async function run(ctx: CommandContext, opts: EnterOptions): Promise<void> {
  if (!opts.persist && opts.session !== undefined) {
    throw new UsageError("--session and --no-persist exclude each other");
  }
  const session = opts.persist ? checkSessionName(opts.session ?? DEFAULT_SESSION) : null;
  const service = await ctx.app.service();
  const { record, backend } = await service.ready(opts.name, {
    start: opts.start,
    flag: "--no-start",
  });
  const code = await interactiveShell(service.deps, { backend, record }, {
    json: ctx.globals.json,
    signal: ctx.signal,
    session,
  });
  ctx.out.result({ name: record.name, session, exit_code: code }, () => undefined);
  Deno.exitCode = code;
}
