/**
 * Running external programs (git, tart, ssh-keygen, gh, security…) through one interface, so
 * core logic can be tested with a scripted {@link CommandRunner} and every real call is logged
 * at debug level with argv, exit code and duration, secrets redacted.
 *
 * @module
 */
import { pumpStdin, type StdinSource } from "./stdin.ts";
import { log } from "./log.ts";
import { redact } from "./redact.ts";
import { UnreachableError } from "./errors.ts";

/** What to run. */
export interface RunOptions {
  /** Working directory. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Bytes or text, or a stream forwarded as it arrives, for stdin; stdin is null when absent. */
  stdin?: StdinSource;
  /** Kill the process after this many milliseconds. */
  timeoutMs?: number;
  /** Abort signal: kills the process. */
  signal?: AbortSignal;
}

/** What a finished program produced. */
export interface RunResult {
  /** Exit code; 128+n when killed by signal n; -1 on timeout. */
  code: number;
  stdout: string;
  stderr: string;
  /** True when the timeout killed it. */
  timedOut: boolean;
}

/** Runs a program to completion. */
export interface CommandRunner {
  run(cmd: string, args: string[], options?: RunOptions): Promise<RunResult>;
}

const decoder = new TextDecoder();

/** Kills a whole process group (the child was started detached, so it leads one). */
function killGroup(pid: number): void {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

/**
 * Runs real programs with `Deno.Command`. Each program starts in its own process group
 * (`detached`), and a timeout or abort kills the whole group: killing only the direct child is
 * not enough for `sh -c '…'`, whose grandchildren keep the output pipes open.
 */
export class DenoCommandRunner implements CommandRunner {
  async run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    const started = performance.now();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(cmd, {
        args,
        cwd: options.cwd,
        env: options.env,
        stdin: options.stdin === undefined ? "null" : "piped",
        stdout: "piped",
        stderr: "piped",
        detached: true,
      }).spawn();
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw new UnreachableError(`'${cmd}' is not installed or not on PATH`, {
          hint: "run `tachikoma doctor`",
          cause: error,
        });
      }
      throw error;
    }
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    const onAbort = () => killGroup(child.pid);
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const inputDone = new AbortController();
    if (options.stdin !== undefined) feedChild(child, options.stdin, inputDone.signal);
    let out: Deno.CommandOutput;
    try {
      out = await child.output();
    } finally {
      inputDone.abort();
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
    const code = timedOut ? -1 : out.signal ? 128 + signalNumber(out.signal) : out.code;
    const result: RunResult = {
      code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      timedOut,
    };
    if (log.enabled("debug")) {
      const ms = (performance.now() - started).toFixed(0);
      log.debug(`exec ${formatArgv([cmd, ...args])} → exit ${code} in ${ms} ms`);
    }
    return result;
  }
}

/**
 * Writes `source` to a child's stdin (a stream as it arrives) and closes it; `stop` (the child
 * exited) stops reading. A child that exits without reading its input is not an error.
 */
export function feedChild(child: Deno.ChildProcess, source: StdinSource, stop: AbortSignal): void {
  const writer = child.stdin.getWriter();
  pumpStdin(source, {
    write: (chunk) => writer.write(chunk).catch(() => {}),
    end: () => void writer.close().catch(() => {}),
  }, stop);
}

function signalNumber(signal: Deno.Signal): number {
  const table: Partial<Record<Deno.Signal, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGTERM: 15,
  };
  return table[signal] ?? 0;
}

/** Formats an argv for a log line (shell-like quoting, redacted). */
export function formatArgv(argv: string[]): string {
  return redact(
    argv.map((a) => /^[A-Za-z0-9_./:=@%+-]+$/.test(a) ? a : JSON.stringify(a)).join(" "),
  );
}

/** The shared real runner. */
export const defaultRunner: CommandRunner = new DenoCommandRunner();
