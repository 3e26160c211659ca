/**
 * Exec and PTY doubles for the memory backend: an in-process echo shell (records what it was
 * sent and its resizes), and host-process exec / shell for world-file mode `exec.mode = "host"`
 * (the argv runs on the host, so CLI tests see real streams and exit codes).
 *
 * @module
 */
import { feedChild } from "../../lib/process.ts";
import type {
  ExecRequest,
  ExecResult,
  Share,
  ShellRequest,
  ShellSession,
  TermSize,
} from "../backend.ts";
import type { CannedExec } from "./world.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** An in-process shell double: echoes input; the line `exit N` ends it with status N. */
export class EchoSession implements ShellSession {
  /** Everything written to it, decoded. */
  input = "";
  /** Every size it was told. */
  readonly sizes: TermSize[];
  readonly output: ReadableStream<Uint8Array>;
  readonly exit: Promise<number>;
  closed = false;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #resolve!: (code: number) => void;
  #reject!: (error: Error) => void;
  #done = false;

  constructor(size: TermSize) {
    this.sizes = [size];
    this.output = new ReadableStream({ start: (c) => void (this.#controller = c) });
    this.exit = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.exit.catch(() => {});
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#done) return Promise.reject(new Error("session closed"));
    const text = decoder.decode(data);
    this.input += text;
    this.#controller.enqueue(data.slice());
    const match = /(?:^|\n)exit (\d+)\s*\n/.exec(this.input);
    if (match) this.finish(Number(match[1]));
    return Promise.resolve();
  }

  resize(size: TermSize): Promise<void> {
    this.sizes.push(size);
    return Promise.resolve();
  }

  /** Ends the session with `code`, as if the remote shell exited. */
  finish(code: number): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.close();
    this.#resolve(code);
  }

  /** Ends the session as if the connection dropped. */
  disconnect(error = new Error("connection lost")): void {
    if (this.#done) return;
    this.#done = true;
    this.#controller.error(error);
    this.#reject(error);
  }

  close(): Promise<void> {
    this.closed = true;
    this.finish(255);
    return Promise.resolve();
  }
}

/**
 * Maps a guest path to the host through the shares (`/mnt/tachikoma/code/x` → `<worktree>/x`);
 * the deepest share wins (a read-write part of `.git` mounted over the read-only `.git`).
 */
export function hostPathFor(guestPath: string | undefined, shares: Share[]): string | undefined {
  if (!guestPath) return undefined;
  const deepestFirst = [...shares].sort((a, b) => b.guestPath.length - a.guestPath.length);
  for (const share of deepestFirst) {
    if (guestPath === share.guestPath) return share.hostPath;
    if (guestPath.startsWith(share.guestPath + "/")) {
      return share.hostPath + guestPath.slice(share.guestPath.length);
    }
  }
  return guestPath;
}

/** Runs an exec request as a host process (world-file `exec.mode = "host"`). */
export async function hostExec(
  sandbox: string,
  request: ExecRequest,
  shares: Share[],
): Promise<ExecResult> {
  const [cmd, ...args] = request.argv;
  if (cmd === undefined) return { code: 0, stdout: new Uint8Array(), stderr: new Uint8Array() };
  if (request.user === "root") {
    // The "guest" is the host here: never let provisioning (hostname, /etc/hosts, sudo…) or any
    // other root command touch the machine running the tests.
    return {
      code: 126,
      stdout: new Uint8Array(),
      stderr: encoder.encode(`memory backend (host mode) refuses to run '${cmd}' as root\n`),
    };
  }
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      cwd: hostPathFor(request.cwd, shares),
      env: { ...request.env, TACHIKOMA_MEMORY_SANDBOX: sandbox },
      stdin: request.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
      signal: request.signal,
    }).spawn();
  } catch (error) {
    const code = error instanceof Deno.errors.NotFound ? 127 : 126;
    return {
      code,
      stdout: new Uint8Array(),
      stderr: encoder.encode(`${cmd}: ${(error as Error).message}\n`),
    };
  }
  const inputDone = new AbortController();
  if (request.stdin !== undefined) feedChild(child, request.stdin, inputDone.signal);
  const [stdout, stderr, status] = await Promise.all([
    collect(child.stdout, request.onStdout),
    collect(child.stderr, request.onStderr),
    child.status.finally(() => inputDone.abort()),
  ]);
  const code = status.signal ? 128 + (status.signal === "SIGKILL" ? 9 : 15) : status.code;
  return { code, stdout, stderr };
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  onChunk?: (chunk: Uint8Array) => void,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    total += chunk.length;
    onChunk?.(chunk);
  }
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/**
 * A "shell" that is a host process with pipes (no PTY): stdout and stderr are merged into
 * `output`, the exit status is the process's; a lone Ctrl-D (0x04) closes its stdin, as EOF
 * does on a PTY. Used by world-file mode `exec.mode = "host"`.
 */
export function hostShell(
  sandbox: string,
  request: Pick<ShellRequest, "argv" | "cwd" | "env">,
  shares: Share[],
): ShellSession {
  const { argv, cwd, env } = request;
  const [cmd, ...args] = argv && argv.length > 0 ? argv : ["sh"];
  const child = new Deno.Command(cmd, {
    args,
    cwd: hostPathFor(cwd, shares),
    env: { ...env, TACHIKOMA_MEMORY_SANDBOX: sandbox },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  let open = 2;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const output = new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) });
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    try {
      for await (const chunk of stream) controller.enqueue(chunk);
    } finally {
      if (--open === 0) controller.close();
    }
  };
  pump(child.stdout);
  pump(child.stderr);
  const exit = child.status.then((s) => s.signal ? 128 + 15 : s.code);
  return {
    output,
    exit,
    write: async (data) => {
      try {
        // Like a PTY at the start of a line: a lone Ctrl-D means end of input.
        if (data.length === 1 && data[0] === 0x04) await writer.close();
        else await writer.write(data);
      } catch {
        // the process exited; its status tells the rest
      }
    },
    resize: () => Promise.resolve(),
    close: async () => {
      try {
        await writer.close();
      } catch {
        // already closed
      }
      try {
        child.kill("SIGTERM");
      } catch {
        // already exited
      }
    },
  };
}

/**
 * A canned exec result (world-file `exec.mode = "canned"`): the first entry whose `argv`
 * equals the request's (or whose `argv0` is its program, or that names neither); no match:
 * exit 0 without output. Output is also streamed to the request's callbacks.
 */
export function cannedExec(results: CannedExec[], request: ExecRequest): ExecResult {
  const hit = results.find((r) =>
    r.argv
      ? JSON.stringify(r.argv) === JSON.stringify(request.argv)
      : r.argv0
      ? r.argv0 === request.argv[0]
      : true
  );
  const stdout = encoder.encode(hit?.stdout ?? "");
  const stderr = encoder.encode(hit?.stderr ?? "");
  if (stdout.length) request.onStdout?.(stdout);
  if (stderr.length) request.onStderr?.(stderr);
  return { code: hit?.code ?? 0, stdout, stderr };
}
