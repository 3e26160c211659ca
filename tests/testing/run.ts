/**
 * The one way tests run a program and keep what it did: exit code, stdout, stderr (text) and
 * wall time. Used by the lab worlds, the tart harness and the CLI tests.
 *
 * @module
 */
import { assertEquals } from "@std/assert";

const dec = new TextDecoder();

/** A finished command. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** Wall time in milliseconds. */
  ms: number;
}

/** How {@link run} starts the program. */
export interface RunOptions {
  cwd?: string;
  /**
   * The environment. Given, it is all the program gets (nothing inherited) unless
   * `inheritEnv`; not given, the program inherits this process' environment.
   */
  env?: Record<string, string>;
  /** Add `env` to this process' environment instead of replacing it. */
  inheritEnv?: boolean;
  /** Written to the program's stdin, which is then closed (default: no stdin). */
  stdin?: string;
}

/** Runs `cmd args…` to completion and returns its exit code, output and wall time. */
export async function run(cmd: string, args: string[], options: RunOptions = {}): Promise<Run> {
  const started = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.env !== undefined && !options.inheritEnv,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - started,
  };
}

/** Asserts that `r` exited 0 (the message shows its output); returns it. */
export function ok(r: Run, what: string): Run {
  assertEquals(r.code, 0, `${what} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

const ROOT = new URL("../../", import.meta.url).pathname;

/** `deno` arguments that run the CLI from this checkout (its main.ts and deno.json). */
export const CLI_FROM_SOURCE: readonly string[] = [
  "run",
  "-A",
  "--quiet",
  "--frozen",
  `--config=${ROOT}deno.json`,
  `${ROOT}main.ts`,
];

/** Runs the CLI from this checkout with `args` (`deno run … main.ts args…`). */
export function runCliFromSource(args: string[], options: RunOptions = {}): Promise<Run> {
  return run(Deno.execPath(), [...CLI_FROM_SOURCE, ...args], options);
}
