/**
 * One ssh2 channel as tachikoma uses it: an exec's output and exit status collected from the
 * moment the channel opens, and a PTY channel as a backend-style {@link ShellSession}.
 *
 * @module
 */
import type { ClientChannel } from "ssh2";
import type { ShellSession } from "../lib/terminal.ts";

const SIGNALS: Record<string, number> = {
  HUP: 1,
  INT: 2,
  QUIT: 3,
  ILL: 4,
  ABRT: 6,
  FPE: 8,
  KILL: 9,
  USR1: 10,
  SEGV: 11,
  USR2: 12,
  PIPE: 13,
  ALRM: 14,
  TERM: 15,
};

/** The shell exit code for a signal name (`TERM` → 143). */
export function signalExitCode(signal: string): number {
  const n = SIGNALS[signal.replace(/^SIG/, "")];
  return n === undefined ? 255 : 128 + n;
}

/** Joins byte chunks. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** Callbacks for an exec's streams. */
export interface ExecStreams {
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
}

/** Collects one exec channel's output and exit status from the moment it opens. */
export class ExecRun {
  readonly channel: ClientChannel;
  readonly out: Uint8Array[] = [];
  readonly err: Uint8Array[] = [];
  code: number | null = null;
  signal: string | undefined;
  /** Resolves when the channel closes; rejects on a channel error. */
  readonly done: Promise<void>;

  constructor(channel: ClientChannel, options: ExecStreams) {
    this.channel = channel;
    channel.on("data", (chunk: Uint8Array) => {
      this.out.push(chunk);
      options.onStdout?.(chunk);
    });
    channel.stderr.on("data", (chunk: Uint8Array) => {
      this.err.push(chunk);
      options.onStderr?.(chunk);
    });
    channel.on("exit", (c: number | null, s?: string) => {
      if (typeof c === "number") this.code = c;
      else if (s) this.signal = s.replace(/^SIG/, "");
    });
    this.done = new Promise<void>((resolve, reject) => {
      channel.on("close", () => resolve());
      channel.on("error", (e: Error) => reject(e));
    });
    this.done.catch(() => {});
  }
}

/** A PTY channel as a {@link ShellSession}; `lost` makes the error for a vanished exit status. */
export function channelSession(channel: ClientChannel, lost: () => Error): ShellSession {
  let code: number | null = null;
  let signal: string | undefined;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const output = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  const push = (chunk: Uint8Array) => {
    try {
      controller.enqueue(new Uint8Array(chunk));
    } catch { /* reader gone */ }
  };
  channel.on("data", push);
  channel.stderr.on("data", push);
  channel.on("exit", (c: number | null, s?: string) => {
    if (typeof c === "number") code = c;
    else if (s) signal = s;
  });
  const exit = new Promise<number>((resolve, reject) => {
    channel.on("close", () => {
      try {
        controller.close();
      } catch { /* already closed */ }
      if (code !== null) resolve(code);
      else if (signal) resolve(signalExitCode(signal));
      else reject(lost());
    });
  });
  exit.catch(() => {}); // observed by the caller; avoid an unhandled rejection otherwise
  return {
    output,
    exit,
    write: (data) =>
      new Promise((resolve) => {
        if (channel.write(data)) resolve();
        else channel.once("drain", () => resolve());
      }),
    resize: (size) => {
      channel.setWindow(size.rows, size.cols, 0, 0);
      return Promise.resolve();
    },
    close: () => {
      channel.close();
      return Promise.resolve();
    },
  };
}
