/**
 * Commands in Incus containers run to completion over the exec API with websockets: separate
 * stdin, stdout and stderr sockets plus control; the exit code comes from the operation.
 * Interactive sessions are in `shell_session.ts`, what both share in `exec_ops.ts`.
 *
 * @module
 */
import { pumpStdin } from "../../lib/stdin.ts";
import type { ExecRequest, ExecResult } from "../backend.ts";
import { TimeoutError, UsageError } from "../../lib/errors.ts";
import {
  abortReason,
  checkEnv,
  connectAll,
  type ExecContext,
  exitCode,
  identity,
  isCommandNotFound,
  NO_DEADLINE_MS,
  notFoundResult,
  OUTPUT_GRACE_MS,
  signalMessage,
  startExec,
  withCwd,
} from "./exec_ops.ts";

/** Stdin is sent in messages of at most this size. */
const STDIN_CHUNK = 1 << 20;
/** More than this queued on the stdin socket: wait before sending more. */
const STDIN_BUFFER = 4 << 20;
const STDIN_DRAIN_POLL_MS = 5;

function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Runs a command to completion with separate stdout and stderr. */
export async function execCommand(
  ctx: ExecContext,
  name: string,
  request: ExecRequest,
): Promise<ExecResult> {
  if (request.argv.length === 0) throw new UsageError("exec: empty command");
  checkEnv(request.env);
  if (request.signal?.aborted) throw abortReason(request.signal);
  const who = identity(request.user, ctx);
  const started = await startExec(ctx, {
    name,
    body: {
      command: withCwd(request.argv, request.cwd),
      environment: { ...who.env, ...request.env },
      user: who.uid,
      group: who.gid,
      cwd: who.home,
      interactive: false,
      "wait-for-websocket": true,
      "record-output": false,
    },
    signal: request.signal,
  });
  if (started === "command-not-found") return notFoundResult(request.argv[0], request);
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const [stdin, stdout, stderr, control] = await connectAll(ctx, started, [
    { fd: "0" },
    {
      fd: "1",
      onData: (chunk) => {
        out.push(chunk);
        request.onStdout?.(chunk);
      },
    },
    {
      fd: "2",
      onData: (chunk) => {
        err.push(chunk);
        request.onStderr?.(chunk);
      },
    },
    { fd: "control" },
  ]);
  const all = [stdin, stdout, stderr, control];
  const inputDone = new AbortController();
  if (request.stdin === undefined) stdin.close();
  else {
    pumpStdin(request.stdin, {
      write: async (bytes) => {
        for (let i = 0; i < bytes.length; i += STDIN_CHUNK) {
          // Backpressure: let the socket drain before queueing more.
          while (stdin.ws.bufferedAmount > STDIN_BUFFER && !inputDone.signal.aborted) {
            await ctx.clock.sleep(STDIN_DRAIN_POLL_MS);
          }
          if (!stdin.send(bytes.subarray(i, i + STDIN_CHUNK))) return;
        }
      },
      end: () => stdin.close(),
    }, inputDone.signal);
  }

  const stop = new AbortController();
  const timerCancel = new AbortController();
  if (request.timeoutMs !== undefined) {
    const ms = request.timeoutMs;
    ctx.clock.sleep(ms, timerCancel.signal).then(
      () =>
        stop.abort(
          new TimeoutError(
            `command timed out after ${formatMs(ms)} in sandbox "${name}": ${request.argv[0]}`,
          ),
        ),
      () => {},
    );
  }
  const onAbort = () => stop.abort(abortReason(request.signal));
  request.signal?.addEventListener("abort", onAbort, { once: true });
  if (request.signal?.aborted) onAbort();
  try {
    const op = await ctx.client.wait(started.operationId, {
      timeoutMs: NO_DEADLINE_MS,
      signal: stop.signal,
      subject: `exec in sandbox "${name}"`,
    });
    await Promise.all([
      stdout.settle(OUTPUT_GRACE_MS, ctx.clock),
      stderr.settle(OUTPUT_GRACE_MS, ctx.clock),
    ]);
    return { code: exitCode(op), stdout: concat(out), stderr: concat(err) };
  } catch (error) {
    if (isCommandNotFound(error)) return notFoundResult(request.argv[0], request);
    if (stop.signal.aborted) {
      control.send(signalMessage(9));
      await Promise.all([stdout.settle(1_000, ctx.clock), stderr.settle(1_000, ctx.clock)]);
      throw stop.signal.reason;
    }
    throw error;
  } finally {
    inputDone.abort();
    timerCancel.abort();
    request.signal?.removeEventListener("abort", onAbort);
    for (const c of all) c.close();
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
