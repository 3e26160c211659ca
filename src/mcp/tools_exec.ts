/**
 * exec_in_sandbox: run a command (an argv, or a shell line through `sh -c`) in a running
 * sandbox through the core service, with a timeout, an output cap per stream (head and tail
 * kept, truncation flagged) and cancellation (the command is killed when the client cancels).
 * A non-zero exit status is a normal result (`exit_code`), not a tool error; a timeout returns
 * what the command printed so far with `timed_out: true`.
 *
 * @module
 */
import { z } from "zod";
import type { Clock } from "../lib/clock.ts";
import { isEnvName } from "../lib/shell.ts";
import { startJob } from "../core/jobs.ts";
import { TimeoutError, UsageError } from "../lib/errors.ts";
import { CappedOutput } from "./capped.ts";
import { repoArg, sandboxArg } from "./schemas.ts";
import { changes, type ToolSpec } from "./tooling.ts";

/** Default output kept per stream. */
export const EXEC_DEFAULT_OUTPUT_BYTES = 1 << 20;
/**
 * Largest output cap a call may ask for, per stream (the result carries the output twice, as
 * text and structured, and stdio clients commonly refuse messages past 10 MiB).
 */
export const EXEC_MAX_OUTPUT_BYTES = 4 << 20;
/** Default timeout. */
export const EXEC_DEFAULT_TIMEOUT_SECS = 600;
/** Longest timeout a call may ask for. */
export const EXEC_MAX_TIMEOUT_SECS = 3600;

const input = {
  sandbox: sandboxArg,
  repo: repoArg,
  command: z.array(z.string()).min(1).optional().describe(
    'Program and arguments, passed exactly as given (no shell), e.g. ["npm", "test"]. ' +
      "Give either this or `shell`.",
  ),
  shell: z.string().min(1).optional().describe(
    "A shell command line run with `sh -c` (pipes, &&, redirections, globs, $VARS), " +
      'e.g. "npm ci && npm test 2>&1 | tail -50". Give either this or `command`.',
  ),
  cwd: z.string().min(1).optional().describe(
    "Working directory in the sandbox. Default: /mnt/tachikoma/code (the branch's worktree).",
  ),
  env: z.record(z.string(), z.string()).optional().describe(
    "Extra environment variables for the command.",
  ),
  stdin: z.string().optional().describe("Text sent to the command's standard input."),
  background: z.boolean().optional().describe(
    "Start the command detached and return at once with a job_id (no timeout): read its output " +
      "with job_output (incremental), its state with job_status, stop it with job_kill. The " +
      "job outlives this call and the MCP client. stdin is not supported with background.",
  ),
  raw: z.boolean().optional().describe(
    "Run without the sandbox's login environment (~/.profile: PATH with ~/.local/bin, " +
      "proxy variables, TACHIKOMA=1). Default false: the login environment is used.",
  ),
  timeout_secs: z.number().positive().max(EXEC_MAX_TIMEOUT_SECS).optional().describe(
    `Kill the command after this many seconds (default ${EXEC_DEFAULT_TIMEOUT_SECS}, ` +
      `at most ${EXEC_MAX_TIMEOUT_SECS}). What it printed so far is returned with timed_out.`,
  ),
  max_output_bytes: z.number().int().min(1024).max(EXEC_MAX_OUTPUT_BYTES).optional().describe(
    `Bytes of stdout and of stderr returned, each (default ${EXEC_DEFAULT_OUTPUT_BYTES}, ` +
      `at most ${EXEC_MAX_OUTPUT_BYTES}). Beyond it the start and the end are kept and ` +
      "*_truncated is true.",
  ),
};

const output = {
  sandbox: z.string().describe("the sandbox's full name"),
  exit_code: z.number().int().nullable().describe("the command's exit status; null on timeout"),
  timed_out: z.boolean(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_truncated: z.boolean(),
  stderr_truncated: z.boolean(),
  stdout_bytes: z.number().int().describe("bytes the command wrote to stdout in all"),
  stderr_bytes: z.number().int().describe("bytes the command wrote to stderr in all"),
  duration_ms: z.number().int(),
  job_id: z.string().optional().describe("with background: true, the job's id"),
};

/** exec_in_sandbox */
export const execTool: ToolSpec<typeof input, typeof output> = {
  name: "exec_in_sandbox",
  title: "Run a command in a sandbox",
  description: "Run a command in a running sandbox as the sandbox user (use sudo for root) and " +
    "return its exit code, stdout and stderr. Give `command` (argv, no shell) or `shell` (a " +
    "line for sh -c), in the sandbox's login environment (~/.profile) unless `raw`. Runs in " +
    "/mnt/tachikoma/code (the branch's worktree, shared with the " +
    "host) unless `cwd` says otherwise. A non-zero exit code is a normal result. Output is " +
    "capped per stream (start and end kept, *_truncated set); the command is killed at the " +
    "timeout or when the request is cancelled. The sandbox must be running: see spawn_sandbox.",
  input,
  output,
  annotations: changes(true, false, true),
  async run(args, call) {
    if ((args.command === undefined) === (args.shell === undefined)) {
      throw new UsageError("give exactly one of `command` (an argv) and `shell` (a command line)");
    }
    for (const name of Object.keys(args.env ?? {})) {
      if (!isEnvName(name)) {
        throw new UsageError(`env: ${JSON.stringify(name)} is not a valid variable name`);
      }
    }
    const argv = args.command ?? ["sh", "-c", args.shell!];
    if (args.background) {
      if (args.stdin !== undefined) throw new UsageError("stdin cannot be given with background");
      const started = call.ctx.clock.now();
      const service = await call.service({ repo: args.repo });
      const job = await startJob(service, {
        name: args.sandbox,
        argv,
        raw: args.raw,
        workdir: args.cwd,
        env: args.env,
      });
      call.using(job.sandbox);
      const data = {
        sandbox: job.sandbox,
        exit_code: null,
        timed_out: false,
        stdout: "",
        stderr: "",
        stdout_truncated: false,
        stderr_truncated: false,
        stdout_bytes: 0,
        stderr_bytes: 0,
        duration_ms: call.ctx.clock.now() - started,
        job_id: job.job_id,
      };
      return { data, text: `started job ${job.job_id} in ${job.sandbox} (job_output reads it)` };
    }
    const cap = args.max_output_bytes ?? EXEC_DEFAULT_OUTPUT_BYTES;
    const timeoutMs = Math.round((args.timeout_secs ?? EXEC_DEFAULT_TIMEOUT_SECS) * 1000);
    const { clock } = call.ctx;

    const timeout = new AbortController();
    const timer = new AbortController();
    let timedOut = false;
    clock.sleep(timeoutMs, timer.signal).then(() => {
      timedOut = true;
      timeout.abort(new TimeoutError(`the command timed out after ${timeoutMs / 1000} s`));
    }, () => {});
    const signal = AbortSignal.any([call.signal, timeout.signal]);
    const out = new CappedOutput(cap);
    const err = new CappedOutput(cap);
    const started = clock.now();
    let code: number | null = null;
    let used: (() => Promise<void>) | undefined;
    try {
      const service = await call.service({ repo: args.repo, signal });
      const target = await service.resolve(args.sandbox);
      // In use while it runs, and used until it ended: the reaper counts idleness from here.
      call.using(target.name);
      used = () => service.touch(target.name);
      const running = service.exec(target.name, {
        argv,
        workdir: args.cwd,
        env: args.env,
        raw: args.raw,
        stdin: args.stdin === undefined ? undefined : new TextEncoder().encode(args.stdin),
        onStdout: (chunk) => out.push(chunk),
        onStderr: (chunk) => err.push(chunk),
      });
      running.catch(() => {});
      try {
        // Once aborted, the backend gets a short grace to report; a command it cannot kill
        // must not hold the call (or the server's shutdown) forever.
        const result = await Promise.race([running, graceAfter(signal, clock, KILL_GRACE_MS)]);
        if (result) {
          // A backend that does not stream gives everything in the result.
          if (out.total !== result.stdout.length) {
            out.reset();
            out.push(result.stdout);
          }
          if (err.total !== result.stderr.length) {
            err.reset();
            err.push(result.stderr);
          }
          code = timedOut ? null : result.code;
        }
        if (call.signal.aborted) throw call.signal.reason;
      } catch (error) {
        if (!timedOut || call.signal.aborted) throw error;
      }
      const data = {
        sandbox: target.name,
        exit_code: code,
        timed_out: timedOut,
        stdout: out.text(),
        stderr: err.text(),
        stdout_truncated: out.truncated,
        stderr_truncated: err.truncated,
        stdout_bytes: out.total,
        stderr_bytes: err.total,
        duration_ms: clock.now() - started,
      };
      return { data, text: render(data, timeoutMs) };
    } finally {
      timer.abort();
      await used?.().catch(() => {});
    }
  },
};

/** How long a killed command may take to report before the call returns without it. */
const KILL_GRACE_MS = 5000;

/** Resolves with null `ms` after `signal` aborts (never, if it does not). */
function graceAfter(signal: AbortSignal, clock: Clock, ms: number): Promise<null> {
  return new Promise((resolve) => {
    const wait = () => void clock.sleep(ms).then(() => resolve(null), () => resolve(null));
    if (signal.aborted) wait();
    else signal.addEventListener("abort", wait, { once: true });
  });
}

/** The agent-facing text: status line, then each non-empty stream. */
function render(
  data: {
    exit_code: number | null;
    timed_out: boolean;
    stdout: string;
    stderr: string;
    stdout_truncated: boolean;
    stderr_truncated: boolean;
    stdout_bytes: number;
    stderr_bytes: number;
  },
  timeoutMs: number,
): string {
  const lines = [
    data.timed_out
      ? `timed out after ${timeoutMs / 1000} s: the command was killed (output so far below)`
      : `exit code: ${data.exit_code}`,
  ];
  for (const stream of ["stdout", "stderr"] as const) {
    if (data[`${stream}_bytes`] === 0) continue;
    const note = data[`${stream}_truncated`]
      ? ` (${data[`${stream}_bytes`]} bytes, truncated: start and end kept)`
      : "";
    lines.push(`--- ${stream}${note} ---`, data[stream].replace(/\n$/, ""));
  }
  if (data.stdout_bytes === 0 && data.stderr_bytes === 0) lines.push("(no output)");
  return lines.join("\n");
}
