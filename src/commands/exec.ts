/**
 * `tachikoma exec [--name N] [--workdir D] -- cmd…`: run a command in a sandbox. The argv is
 * passed exactly (never joined into a shell line), stdout/stderr are streamed, stdin is
 * streamed to the command as it arrives when it is not a terminal (the command starts at once; a
 * pipe that stays open never blocks it), and the remote exit code becomes ours. With `--json`
 * nothing is streamed: `{"name","argv","exit_code","stdout","stderr"}` is printed at the end.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { exitStatus } from "../core/attach.ts";

/** Options from the command line. */
export interface ExecCommandOptions {
  name?: string;
  workdir?: string;
  argv: string[];
}

/** Runs exec. */
export async function run(ctx: CommandContext, opts: ExecCommandOptions): Promise<void> {
  const service = await ctx.app.service();
  const stdin = Deno.stdin.isTerminal() ? undefined : Deno.stdin.readable;
  const json = ctx.globals.json;
  const result = await service.exec(opts.name, {
    argv: opts.argv,
    workdir: opts.workdir,
    stdin,
    onStdout: json ? undefined : (chunk) => writeAllSync(Deno.stdout, chunk),
    onStderr: json ? undefined : (chunk) => writeAllSync(Deno.stderr, chunk),
  });
  if (json) {
    const decoder = new TextDecoder();
    ctx.out.result({
      name: result.name,
      argv: opts.argv,
      exit_code: result.code,
      stdout: decoder.decode(result.stdout),
      stderr: decoder.decode(result.stderr),
    }, () => undefined);
  }
  Deno.exitCode = exitStatus(result.code);
}

function writeAllSync(file: { writeSync(p: Uint8Array): number }, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += file.writeSync(data.subarray(off));
}
