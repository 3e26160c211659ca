/**
 * Commands in Incus containers over the exec API with websockets: non-interactive (separate
 * stdin/stdout/stderr sockets plus control, the exit code from the operation) and interactive
 * (one PTY socket plus control, window-size changes as control messages).
 *
 * Identity: `root` runs as uid/gid 0; the sandbox user as uid/gid 1000 with HOME, USER,
 * LOGNAME and SHELL set (Incus only sets those for root). An explicit `cwd` is entered by a
 * constant `/bin/sh` wrapper taking the directory as a positional argument (Incus silently
 * ignores a missing cwd); argv is never joined into shell text.
 *
 * @module
 */
import { pumpStdin } from "../../lib/stdin.ts";
import type { ExecRequest, ExecResult, ShellRequest, ShellSession, TermSize } from "../backend.ts";
import type { Clock } from "../../lib/clock.ts";
import { InterruptedError, NotFoundError, TimeoutError, UsageError } from "../../lib/errors.ts";
import { isEnvName } from "../../lib/shell.ts";
import type { IncusClient, IncusOperation } from "./client.ts";
import { instancePath } from "./instances.ts";
import { FdChannel } from "./websocket.ts";

/** Stdin is sent in messages of at most this size. */
const STDIN_CHUNK = 1 << 20;
/** More than this queued on the stdin socket: wait before sending more. */
const STDIN_BUFFER = 4 << 20;
const STDIN_DRAIN_POLL_MS = 5;

/** Who a command runs as. */
export interface ExecIdentity {
  uid: number;
  gid: number;
  home: string;
  env: Record<string, string>;
}

/** What exec needs besides the request. */
export interface ExecContext {
  client: IncusClient;
  clock: Clock;
  /** The sandbox user's name (`ssh_user`). */
  sshUser: string;
  /** The sandbox user's uid/gid (1000). */
  guestUid: number;
  guestGid: number;
}

/** Far-away budget for operations bounded by other means (timeouts, signals, the user). */
const NO_DEADLINE_MS = 10 * 365 * 24 * 3600 * 1000;
/** How long output sockets may lag behind the exit. */
const OUTPUT_GRACE_MS = 5_000;
/** How long the PTY's end marker may lag behind the control socket's close. */
const END_MARKER_GRACE_MS = 1_000;
/** Wrapper entering `$1` then running the rest; constant text, values are arguments. */
const CD_WRAPPER = 'cd "$1" || exit 1; shift; exec "$@"';
/** Login shell when a PTY session names no command. */
const LOGIN_SHELL = "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l";

/** The identity for `root` or the sandbox user. */
export function identity(user: "root" | "user" | undefined, ctx: ExecContext): ExecIdentity {
  if (user === "root") return { uid: 0, gid: 0, home: "/root", env: {} };
  const home = `/home/${ctx.sshUser}`;
  return {
    uid: ctx.guestUid,
    gid: ctx.guestGid,
    home,
    env: { HOME: home, USER: ctx.sshUser, LOGNAME: ctx.sshUser, SHELL: "/bin/bash" },
  };
}

/** Checks environment names and values before they reach Incus. */
export function checkEnv(env: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(env ?? {})) {
    if (!isEnvName(k)) {
      throw new UsageError(`invalid environment variable name ${JSON.stringify(k)}`);
    }
    if (v.includes("\0")) throw new UsageError(`environment variable ${k}: value contains NUL`);
  }
}

/** argv, wrapped to enter `cwd` when one is given. */
export function withCwd(argv: string[], cwd: string | undefined): string[] {
  if (cwd === undefined) return argv;
  return ["/bin/sh", "-c", CD_WRAPPER, "sh", cwd, ...argv];
}

interface Started {
  operationId: string;
  fds: Record<string, string>;
}

/** One exec to start: the instance, the API request's body, and what aborts it. */
interface ExecStart {
  name: string;
  body: Record<string, unknown>;
  signal?: AbortSignal;
}

async function startExec(
  ctx: ExecContext,
  start: ExecStart,
): Promise<Started | "command-not-found"> {
  const { name, body, signal } = start;
  try {
    const response = await ctx.client.call<IncusOperation>("POST", `${instancePath(name)}/exec`, {
      body,
      signal,
      subject: `sandbox "${name}"`,
    });
    const op = response.metadata;
    const fds = (op.metadata?.fds ?? {}) as Record<string, string>;
    return { operationId: op.id, fds };
  } catch (error) {
    if (isCommandNotFound(error)) return "command-not-found";
    throw error;
  }
}

/** Incus reports a missing argv[0] as an error (at the request or in the operation). */
function isCommandNotFound(error: unknown): boolean {
  return error instanceof NotFoundError && /command not found/i.test(String(error.cause));
}

function notFoundResult(argv0: string, request: ExecRequest): ExecResult {
  // Report it like a shell would.
  const text = new TextEncoder().encode(`${argv0}: command not found\n`);
  request.onStderr?.(text);
  return { code: 127, stdout: new Uint8Array(), stderr: text };
}

/** One websocket of an exec operation: which fd, and what to do with its data. */
interface ChannelSpec {
  fd: string;
  onData?: (chunk: Uint8Array) => void;
  onEnd?: (channel: FdChannel) => void;
}

/**
 * Connects the websockets of an exec operation, each wrapped in its {@link FdChannel} from the
 * moment it exists: Incus starts the command once every socket is connected on its side, which
 * can be before this side has seen every `open`, and output sent meanwhile must not be lost.
 * When one fails, the others are closed and the operation is cancelled, so nothing keeps
 * waiting in the guest.
 */
async function connectAll(
  ctx: ExecContext,
  started: Started,
  specs: ChannelSpec[],
): Promise<FdChannel[]> {
  const channels: FdChannel[] = [];
  const results = await Promise.allSettled(
    specs.map((spec, i) =>
      ctx.client.websocket(started.operationId, started.fds[spec.fd] ?? "", (ws) => {
        channels[i] = new FdChannel(ws, spec.onData, spec.onEnd);
      })
    ),
  );
  const failed = results.find((r) => r.status === "rejected");
  if (!failed) return channels;
  for (const channel of channels) channel?.close();
  await ctx.client.cancel(started.operationId);
  throw (failed as PromiseRejectedResult).reason;
}

function exitCode(op: IncusOperation): number {
  const code = op.metadata?.return;
  return typeof code === "number" ? code : -1;
}

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

function signalMessage(signal: number): string {
  return JSON.stringify({ command: "signal", signal });
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

/** Opens an interactive PTY session. */
export async function openShell(
  ctx: ExecContext,
  name: string,
  request: ShellRequest,
): Promise<ShellSession> {
  checkEnv(request.env);
  const who = identity(request.user, ctx);
  const argv = request.argv && request.argv.length > 0
    ? request.argv
    : ["/bin/sh", "-c", LOGIN_SHELL];
  const started = await startExec(ctx, {
    name,
    body: {
      command: withCwd(argv, request.cwd),
      environment: { TERM: "xterm-256color", ...who.env, ...request.env },
      user: who.uid,
      group: who.gid,
      cwd: who.home,
      interactive: true,
      width: request.size.cols,
      height: request.size.rows,
      "wait-for-websocket": true,
    },
  });
  if (started === "command-not-found") {
    throw new NotFoundError(`command not found in sandbox "${name}": ${argv[0]}`);
  }
  let push: ((chunk: Uint8Array) => void) | undefined;
  let end: (() => void) | undefined;
  const output = new ReadableStream<Uint8Array>({
    start(controller) {
      push = (chunk) => controller.enqueue(chunk);
      end = () => {
        try {
          controller.close();
        } catch {
          // already closed or cancelled
        }
      };
    },
  });
  // After the command exits Incus sends an end marker on the PTY socket and closes control,
  // then waits for us to close the PTY socket before the operation completes.
  const [pty, control] = await connectAll(ctx, started, [
    { fd: "0", onData: (chunk) => push?.(chunk), onEnd: (channel) => channel.close() },
    { fd: "control" },
  ]);
  pty.closed.then(() => end?.());
  control.closed.then(() => pty.settle(END_MARKER_GRACE_MS, ctx.clock));
  const hangup = new AbortController();
  const exit = ctx.client.wait(started.operationId, {
    timeoutMs: NO_DEADLINE_MS,
    signal: hangup.signal,
    subject: `shell in sandbox "${name}"`,
  }).then(async (op) => {
    await pty.settle(OUTPUT_GRACE_MS, ctx.clock);
    control.close();
    return exitCode(op);
  }, (error) => {
    pty.close();
    control.close();
    if (!isCommandNotFound(error)) throw error;
    push?.(new TextEncoder().encode(`${argv[0]}: command not found\r\n`));
    end?.();
    return 127;
  });
  exit.catch(() => {});
  let exited = false;
  exit.then(() => exited = true, () => exited = true);

  return {
    output,
    exit,
    write(data: Uint8Array): Promise<void> {
      pty.send(data);
      return Promise.resolve();
    },
    resize(size: TermSize): Promise<void> {
      control.send(JSON.stringify({
        command: "window-resize",
        args: { width: String(size.cols), height: String(size.rows) },
      }));
      return Promise.resolve();
    },
    async close(): Promise<void> {
      if (!exited) {
        control.send(signalMessage(1));
        const cancel = new AbortController();
        await Promise.race([
          exit.catch(() => {}),
          ctx.clock.sleep(2_000, cancel.signal).catch(() => {}),
        ]);
        cancel.abort();
        if (!exited) control.send(signalMessage(9));
        hangup.abort(new InterruptedError("shell closed"));
      }
      pty.close();
      control.close();
    },
  };
}

function abortReason(signal: AbortSignal | undefined): unknown {
  const reason = signal?.reason;
  return reason instanceof Error && !(reason instanceof DOMException)
    ? reason
    : new InterruptedError();
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
