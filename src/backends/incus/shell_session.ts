/**
 * Interactive sessions in Incus containers over the exec API: one PTY socket plus control,
 * window-size changes and signals as control messages.
 *
 * @module
 */
import type { ShellRequest, ShellSession, TermSize } from "../backend.ts";
import { InterruptedError, NotFoundError } from "../../lib/errors.ts";
import {
  checkEnv,
  connectAll,
  type ExecContext,
  exitCode,
  identity,
  isCommandNotFound,
  NO_DEADLINE_MS,
  OUTPUT_GRACE_MS,
  signalMessage,
  startExec,
  withCwd,
} from "./exec_ops.ts";

/** How long the PTY's end marker may lag behind the control socket's close. */
const END_MARKER_GRACE_MS = 1_000;
/** Login shell when a PTY session names no command. */
const LOGIN_SHELL = "if [ -x /bin/bash ]; then exec /bin/bash -l; fi; exec /bin/sh -l";

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
