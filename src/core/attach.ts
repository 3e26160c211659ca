/**
 * An interactive shell in a sandbox, bridged to this terminal: stdin in raw mode when it is a
 * TTY (so Ctrl-C, Ctrl-D and arrows reach the guest), window size changes (SIGWINCH) sent as
 * resizes, the remote exit status returned as ours, and the terminal always restored — on
 * exit, on Ctrl-C when stdin is not a TTY, and when the connection drops. When stdin is not a
 * TTY its bytes are forwarded and its end is sent as Ctrl-D (end of input on a PTY).
 *
 * @module
 */
import type { ShellSession, TermSize } from "../backends/backend.ts";
import { errorMessage, InterruptedError, UnreachableError } from "../lib/errors.ts";

/** The terminal side of an attach (the process's stdio in production, a double in tests). */
export interface TerminalIO {
  /** Keyboard input. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Session output. */
  write(data: Uint8Array): Promise<void>;
  /** True when input is a terminal (raw mode, resizes). */
  readonly isTerminal: boolean;
  setRaw(raw: boolean): void;
  /** Current size (80×24 when unknown). */
  size(): TermSize;
  /** Calls `listener` on every window size change; returns the unsubscribe. */
  onResize(listener: () => void): () => void;
}

const DEFAULT_SIZE: TermSize = { cols: 80, rows: 24 };

/**
 * The process's terminal: stdin, and stdout (or stderr when stdout must stay clean for a
 * `--json` document).
 */
export function processTerminal(output: "stdout" | "stderr" = "stdout"): TerminalIO {
  const out = output === "stdout" ? Deno.stdout : Deno.stderr;
  const isTerminal = Deno.stdin.isTerminal();
  return {
    read: (buffer) => Deno.stdin.read(buffer),
    write: async (data) => {
      let off = 0;
      while (off < data.length) off += await out.write(data.subarray(off));
    },
    isTerminal,
    setRaw: (raw) => {
      if (isTerminal) Deno.stdin.setRaw(raw);
    },
    size: () => {
      try {
        const { columns, rows } = Deno.consoleSize();
        return columns > 0 && rows > 0 ? { cols: columns, rows } : DEFAULT_SIZE;
      } catch {
        return DEFAULT_SIZE;
      }
    },
    onResize: (listener) => {
      try {
        Deno.addSignalListener("SIGWINCH", listener);
        return () => {
          try {
            Deno.removeSignalListener("SIGWINCH", listener);
          } catch {
            // already removed
          }
        };
      } catch {
        return () => {}; // no SIGWINCH on this platform
      }
    },
  };
}

/** Options of {@link attach}. */
export interface AttachOptions {
  /** Aborted on Ctrl-C (when stdin is not in raw mode): the session is closed. */
  signal?: AbortSignal;
  /** For messages. */
  sandbox: string;
}

/**
 * Opens a session with `open(size)` and bridges it to `io` until the remote side exits.
 * Returns the remote exit status. Throws {@link UnreachableError} when the connection drops
 * and {@link InterruptedError} when `signal` aborts; the terminal is restored either way.
 */
export async function attach(
  open: (size: TermSize) => Promise<ShellSession>,
  io: TerminalIO,
  options: AttachOptions,
): Promise<number> {
  const session = await open(io.size());
  let finished = false;
  let raw = false;
  const onAbort = () => void session.close().catch(() => {});
  options.signal?.addEventListener("abort", onAbort, { once: true });
  const unsubscribe = io.onResize(() => {
    if (!finished) session.resize(io.size()).catch(() => {});
  });
  try {
    if (io.isTerminal) {
      io.setRaw(true);
      raw = true;
    }
    const input = pumpInput(io, session, () => finished);
    input.catch(() => {});
    const output = (async () => {
      for await (const chunk of session.output) await io.write(chunk);
    })();
    output.catch(() => {});
    let code: number;
    try {
      code = await session.exit;
    } catch (error) {
      if (options.signal?.aborted) throw new InterruptedError();
      throw new UnreachableError(
        `connection to ${options.sandbox} lost: ${errorMessage(error)}`,
        { hint: `\`tachikoma enter ${options.sandbox}\` reconnects`, cause: error },
      );
    }
    await output.catch(() => {});
    if (options.signal?.aborted) throw new InterruptedError();
    return code;
  } finally {
    finished = true;
    unsubscribe();
    options.signal?.removeEventListener("abort", onAbort);
    if (raw) {
      try {
        io.setRaw(false);
      } catch {
        // the terminal is gone
      }
    }
  }
}

async function pumpInput(
  io: TerminalIO,
  session: ShellSession,
  finished: () => boolean,
): Promise<void> {
  const buffer = new Uint8Array(16 * 1024);
  while (!finished()) {
    const n = await io.read(buffer);
    if (finished()) return;
    if (n === null) {
      // End of piped input: Ctrl-D ends input on the guest's PTY.
      await session.write(new Uint8Array([0x04]));
      return;
    }
    if (n > 0) await session.write(buffer.slice(0, n));
  }
}

/** The terminal variables a guest shell gets from ours. */
export function terminalEnv(): Record<string, string> {
  const env: Record<string, string> = { TERM: Deno.env.get("TERM") || "xterm-256color" };
  const colorterm = Deno.env.get("COLORTERM");
  if (colorterm) env.COLORTERM = colorterm;
  return env;
}

/** A remote status as a process exit code (0–255; anything else becomes 1). */
export function exitStatus(code: number): number {
  return Number.isInteger(code) && code >= 0 && code <= 255 ? code : 1;
}
