/**
 * Test doubles for the tart adapter's unit tests: a scripted {@link CommandRunner} answering
 * tart argv, a {@link RunLauncher} whose child exits on demand, and a {@link GuestSsh}.
 */
import type { CommandRunner, RunOptions, RunResult } from "../../../src/lib/process.ts";
import type { RunHandle, RunLaunch, RunLauncher } from "../../../src/backends/tart/run.ts";
import type { GuestSsh, SshProbe, SshTarget } from "../../../src/backends/tart/guest.ts";
import type {
  ExecRequest,
  ExecResult,
  ShellRequest,
  ShellSession,
} from "../../../src/backends/backend.ts";

/** One recorded call. */
export interface Call {
  cmd: string;
  args: string[];
  options: RunOptions;
}

type Reply = Partial<RunResult> | ((args: string[], options: RunOptions) => Partial<RunResult>);

interface Rule {
  prefix: string[];
  replies: Reply[];
  sticky: boolean;
}

/** A successful result. */
export function ok(stdout = ""): Partial<RunResult> {
  return { code: 0, stdout };
}

/** A failed result. */
export function fail(code: number, stderr: string): Partial<RunResult> {
  return { code, stderr };
}

/**
 * Answers calls by argv prefix. `on` answers every matching call; `once` answers the next
 * one (queued replies are used before sticky ones). Unexpected calls throw.
 */
export class ScriptedRunner implements CommandRunner {
  readonly calls: Call[] = [];
  #rules: Rule[] = [];

  /** Answers every call whose args start with `prefix`. */
  on(prefix: string[], reply: Reply): this {
    this.#rules.push({ prefix, replies: [reply], sticky: true });
    return this;
  }

  /** Answers the next calls whose args start with `prefix`, in order. */
  once(prefix: string[], ...replies: Reply[]): this {
    this.#rules.unshift({ prefix, replies, sticky: false });
    return this;
  }

  run(cmd: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ cmd, args, options });
    for (const rule of this.#rules) {
      if (rule.replies.length === 0) continue;
      if (!rule.prefix.every((p, i) => args[i] === p)) continue;
      const reply = rule.sticky ? rule.replies[0] : rule.replies.shift()!;
      const r = typeof reply === "function" ? reply(args, options) : reply;
      return Promise.resolve({ code: 0, stdout: "", stderr: "", timedOut: false, ...r });
    }
    return Promise.reject(new Error(`unexpected call: ${cmd} ${JSON.stringify(args)}`));
  }

  /** The args of every call whose first arg is `sub`. */
  argsOf(sub: string): string[][] {
    return this.calls.filter((c) => c.args[0] === sub).map((c) => c.args);
  }
}

/** `tart list --format json` output for `[name, state]` pairs (tart ≥ 2.31 field set). */
export function listJson(...vms: [string, string][]): string {
  const entries = vms.map(([name, state]) => ({
    Accessed: "2026-03-03T17:53:33Z",
    Disk: 50,
    Name: name,
    Running: state === "running",
    Size: 20,
    Source: "local",
    State: state,
  }));
  return JSON.stringify(entries, null, 2).replaceAll('": ', '" : ').replaceAll("/", "\\/");
}

/** A launched `tart run` that exits when told. */
export class FakeRun implements RunHandle {
  readonly pid = 4242;
  readonly logPath: string;
  readonly exited: Promise<number>;
  #code: number | null = null;
  #resolve!: (code: number) => void;

  constructor(logPath: string) {
    this.logPath = logPath;
    this.exited = new Promise((resolve) => this.#resolve = resolve);
  }

  exitCode(): number | null {
    return this.#code;
  }

  /** Makes the child exit, writing `log` to its log file first. */
  exit(code: number, log = ""): Promise<void> {
    if (log) Deno.writeTextFileSync(this.logPath, log);
    this.#code = code;
    this.#resolve(code);
    return Promise.resolve();
  }
}

/** Records launches; `onLaunch` can script the child. */
export class FakeLauncher implements RunLauncher {
  readonly launches: { binary: string; args: string[]; logPath: string; env?: object }[] = [];
  readonly runs: FakeRun[] = [];
  onLaunch?: (run: FakeRun) => void | Promise<void>;

  async launch(request: RunLaunch): Promise<RunHandle> {
    const { binary, args, logPath, env } = request;
    this.launches.push({ binary, args, logPath, env });
    await Deno.mkdir(logPath.slice(0, logPath.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(logPath, "");
    const run = new FakeRun(logPath);
    this.runs.push(run);
    await this.onLaunch?.(run);
    return run;
  }
}

/** A scripted SSH layer. */
export class FakeSsh implements GuestSsh {
  /** Probe answer per auth kind. */
  probes: Record<"key" | "password", SshProbe> = { key: "ok", password: "auth-failed" };
  readonly probed: SshTarget[] = [];
  readonly execs: { target: SshTarget; request: ExecRequest }[] = [];
  reply: (request: ExecRequest) => ExecResult = () => result(0);
  closed = false;
  /** Sandboxes whose connections were dropped, in order. */
  readonly forgotten: string[] = [];

  probe(target: SshTarget): Promise<SshProbe> {
    this.probed.push(target);
    return Promise.resolve(this.probes[target.auth.kind]);
  }

  exec(target: SshTarget, request: ExecRequest): Promise<ExecResult> {
    this.execs.push({ target, request });
    return Promise.resolve(this.reply(request));
  }

  shell(_target: SshTarget, _request: ShellRequest): Promise<ShellSession> {
    return Promise.reject(new Error("FakeSsh.shell is not scripted"));
  }

  forget(sandbox: string): void {
    this.forgotten.push(sandbox);
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** An ExecResult with text output. */
export function result(code: number, stdout = "", stderr = ""): ExecResult {
  const e = new TextEncoder();
  return { code, stdout: e.encode(stdout), stderr: e.encode(stderr) };
}
