/**
 * A fake host for credential tests: environment, files, programs and clock are all in memory;
 * log lines are captured.
 *
 * @module
 */
import { FakeClock } from "../../testing/fake_clock.ts";
import { Logger } from "../../../src/lib/log.ts";
import type { CommandRunner, RunOptions, RunResult } from "../../../src/lib/process.ts";
import type { CredentialWorld } from "../../../src/credentials/types.ts";

/** A scripted program result, or a function computing one. */
export type Script = Partial<RunResult> | ((options: RunOptions) => Partial<RunResult>);

/** One recorded program run. */
export interface RunCall {
  cmd: string;
  args: string[];
  options: RunOptions;
}

/** A runner that answers from a table keyed by `cmd arg1 arg2…`. */
export class ScriptedRunner implements CommandRunner {
  readonly calls: RunCall[] = [];
  constructor(readonly scripts: Record<string, Script> = {}) {}
  run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ cmd, args, options });
    const key = [cmd, ...args].join(" ");
    const script = this.scripts[key];
    if (script === undefined) {
      return Promise.resolve({
        code: 127,
        stdout: "",
        stderr: `${cmd}: not found`,
        timedOut: false,
      });
    }
    const r = typeof script === "function" ? script(options) : script;
    return Promise.resolve({ code: 0, stdout: "", stderr: "", timedOut: false, ...r });
  }
}

/** A fake world plus handles on its parts. */
export interface FakeWorld {
  world: CredentialWorld;
  env: Record<string, string>;
  files: Record<string, string>;
  runner: ScriptedRunner;
  clock: FakeClock;
  lines: string[];
}

/** Builds a fake world (Linux, home `/home/u` unless told otherwise). */
export function fakeWorld(options: {
  env?: Record<string, string>;
  files?: Record<string, string>;
  scripts?: Record<string, Script>;
  os?: typeof Deno.build.os;
  now?: number;
} = {}): FakeWorld {
  const env = { ...options.env };
  const files = { ...options.files };
  const runner = new ScriptedRunner(options.scripts);
  const clock = new FakeClock(options.now ?? 1_700_000_000_000);
  const lines: string[] = [];
  const world: CredentialWorld = {
    env: (name) => env[name],
    readTextFile: (path) =>
      path in files
        ? Promise.resolve(files[path])
        : Promise.reject(new Deno.errors.NotFound(`no such file: ${path}`)),
    runner,
    os: options.os ?? "linux",
    home: "/home/u",
    clock,
    logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }),
  };
  return { world, env, files, runner, clock, lines };
}
