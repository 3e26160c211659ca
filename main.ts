/**
 * tachikoma: build the command tree, run it, map errors to exit codes.
 *
 * @module
 */
import { TREE } from "./src/cli/program.ts";
import { runCommandLine } from "./src/cli/parser.ts";
import type { CommandContext, GlobalOptions } from "./src/commands/context.ts";
import { appServices } from "./src/cli/wiring.ts";
import { Output } from "./src/cli/output.ts";
import { StderrReporter } from "./src/cli/progress.ts";
import { ExitCode, InterruptedError, TachikomaError } from "./src/lib/errors.ts";
import { log } from "./src/lib/log.ts";
import type { LoadedConfig } from "./src/config/load.ts";

/** Runs the CLI with `args` and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const dashDash = args.indexOf("--");
  const flags = dashDash === -1 ? args : args.slice(0, dashDash);
  const jsonRequested = flags.includes("--json");
  const colorAllowed = !flags.includes("--no-color") && !Deno.env.get("NO_COLOR");
  let out = new Output({
    json: jsonRequested,
    color: colorAllowed && Deno.stderr.isTerminal(),
    quiet: false,
  });
  const interrupt = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) Deno.exit(ExitCode.Interrupted);
    interrupt.abort(new InterruptedError());
  };
  try {
    Deno.addSignalListener("SIGINT", onSigint);
  } catch {
    // Signal listeners are unavailable in some embeddings; Ctrl-C then kills the process.
  }

  let context: CommandContext | undefined;
  const makeContext = (globals: GlobalOptions): CommandContext => {
    if (context) return context;
    const color = globals.color && colorAllowed;
    out = new Output({
      json: globals.json,
      color: color && Deno.stdout.isTerminal(),
      quiet: globals.quiet,
    });
    log.level = globals.quiet ? "error" : globals.verbose ? "debug" : "info";
    log.color = color && Deno.stderr.isTerminal();
    let loaded: Promise<LoadedConfig> | undefined;
    const cwd = Deno.cwd();
    const progress = new StderrReporter({
      enabled: !globals.json && !globals.quiet,
      verbose: globals.verbose,
      tty: Deno.stderr.isTerminal(),
      color: log.color,
    });
    const config = () => {
      loaded ??= import("./src/config/load.ts").then((m) =>
        m.loadConfig({ cwd, flags: { backend: globals.backend } })
      );
      return loaded;
    };
    context = {
      globals,
      out,
      cwd,
      signal: interrupt.signal,
      progress,
      config,
      app: appServices({
        cwd,
        backend: globals.backend,
        progress,
        signal: interrupt.signal,
        config,
      }),
    };
    return context;
  };

  try {
    Deno.exitCode = 0;
    await runCommandLine(TREE, args, { makeContext, stdout: (text) => out.raw(text) });
    // exec/enter/spawn set the remote command's exit status as ours.
    return Deno.exitCode || ExitCode.Ok;
  } catch (error) {
    return report(error, out, interrupt.signal);
  } finally {
    try {
      Deno.removeSignalListener("SIGINT", onSigint);
    } catch {
      // see above
    }
  }
}

function report(error: unknown, out: Output, signal: AbortSignal): number {
  if (signal.aborted && !(error instanceof TachikomaError)) {
    out.error(new InterruptedError());
    return ExitCode.Interrupted;
  }
  if (error instanceof TachikomaError) {
    out.error(error);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  out.error({ code: "internal", message });
  if (error instanceof Error && error.stack) log.debug(error.stack);
  return ExitCode.Runtime;
}

if (import.meta.main) {
  const code = await main(Deno.args);
  Deno.exit(code);
}
