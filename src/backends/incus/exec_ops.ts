/**
 * What the Incus exec API calls share (`exec.ts`: commands to completion; `shell_session.ts`:
 * interactive PTY sessions): who a command runs as, the environment check, the `cwd` wrapper,
 * starting the operation and connecting its websockets, the exit code and control messages.
 *
 * Identity: `root` runs as uid/gid 0; the sandbox user as uid/gid 1000 with HOME, USER,
 * LOGNAME and SHELL set (Incus only sets those for root). An explicit `cwd` is entered by a
 * constant `/bin/sh` wrapper taking the directory as a positional argument (Incus silently
 * ignores a missing cwd); argv is never joined into shell text.
 *
 * @module
 */
import type { ExecRequest, ExecResult } from "../backend.ts";
import type { Clock } from "../../lib/clock.ts";
import { InterruptedError, NotFoundError, UsageError } from "../../lib/errors.ts";
import { isEnvName } from "../../lib/shell.ts";
import type { IncusClient, IncusOperation } from "./client.ts";
import { instancePath } from "./instances.ts";
import { FdChannel } from "./websocket.ts";

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
export const NO_DEADLINE_MS = 10 * 365 * 24 * 3600 * 1000;
/** How long output sockets may lag behind the exit. */
export const OUTPUT_GRACE_MS = 5_000;
/** Wrapper entering `$1` then running the rest; constant text, values are arguments. */
const CD_WRAPPER = 'cd "$1" || exit 1; shift; exec "$@"';
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

/** An exec operation Incus started: its id and the secrets of its websockets. */
export interface Started {
  operationId: string;
  fds: Record<string, string>;
}

/** One exec to start: the instance, the API request's body, and what aborts it. */
export interface ExecStart {
  name: string;
  body: Record<string, unknown>;
  signal?: AbortSignal;
}

/** Starts an exec operation; a missing argv[0] gives "command-not-found". */
export async function startExec(
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
export function isCommandNotFound(error: unknown): boolean {
  return error instanceof NotFoundError && /command not found/i.test(String(error.cause));
}

/** The result of a command that was not found, as a shell reports it (exit 127). */
export function notFoundResult(argv0: string, request: ExecRequest): ExecResult {
  // Report it like a shell would.
  const text = new TextEncoder().encode(`${argv0}: command not found\n`);
  request.onStderr?.(text);
  return { code: 127, stdout: new Uint8Array(), stderr: text };
}

/** One websocket of an exec operation: which fd, and what to do with its data. */
export interface ChannelSpec {
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
export async function connectAll(
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

/** The exit code an exec operation reports (-1 when it reports none). */
export function exitCode(op: IncusOperation): number {
  const code = op.metadata?.return;
  return typeof code === "number" ? code : -1;
}

/** The control message sending `signal` to the command. */
export function signalMessage(signal: number): string {
  return JSON.stringify({ command: "signal", signal });
}

/** Why an aborted exec stopped: the signal's own error, else an interruption. */
export function abortReason(signal: AbortSignal | undefined): unknown {
  const reason = signal?.reason;
  return reason instanceof Error && !(reason instanceof DOMException)
    ? reason
    : new InterruptedError();
}
