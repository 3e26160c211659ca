/**
 * `tachikoma exec [--name N] [--workdir D] [--raw] [--no-start] -- cmd…`: run a command in a
 * sandbox, in its login environment (`~/.profile`: PATH with `~/.local/bin`, the proxy
 * variables, `TACHIKOMA=1`) unless `--raw`; a stopped or suspended sandbox is started first
 * (a notice on stderr) unless `--no-start`. The argv is passed exactly (never joined into a
 * shell line), stdout/stderr are streamed, stdin is
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
  /** `--raw`: the argv as given, without the login environment. */
  raw?: boolean;
  /** False with `--no-start`: a stopped sandbox is refused instead of started. */
  start?: boolean;
}

/** Runs exec. */
export async function run(ctx: CommandContext, opts: ExecCommandOptions): Promise<void> {
  const service = await ctx.app.service();
  const stdin = Deno.stdin.isTerminal() ? undefined : Deno.stdin.readable;
  const json = ctx.globals.json;
  const result = await service.exec(opts.name, {
    argv: opts.argv,
    workdir: opts.workdir,
    raw: opts.raw,
    start: { start: opts.start ?? true, flag: "--no-start" },
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
