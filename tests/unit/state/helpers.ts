/**
 * Shared helpers of the state store tests: temp dirs, records, and the writer process
 * (`tests/fixtures/state_writer.ts`) with a line reader on its stdout.
 *
 * @module
 */
import { Logger } from "../../../src/lib/log.ts";
import type { SandboxRecord } from "../../../src/state/mod.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const WRITER = new URL("../../fixtures/state_writer.ts", import.meta.url).pathname;

/** A fresh temp dir that is removed by the returned cleanup. */
export async function tempDir(): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix: "tk-state-" });
  return {
    path,
    async [Symbol.asyncDispose]() {
      await Deno.remove(path, { recursive: true }).catch(() => {});
    },
  };
}

/** A valid record named `name`. */
export function makeRecord(name: string, extra: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    name,
    repo: "myapp",
    branch: name,
    worktree_path: `/src/myapp-${name}`,
    created_at: "2026-04-12T19:19:46.123Z",
    last_used: "2026-04-12T19:25:01Z",
    status: "running",
    ip: null,
    backend: "incus",
    ...extra,
  };
}

/** A logger that records its lines. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ level: "debug", sink: (l) => lines.push(l) }), lines };
}

/** A running writer process. */
export interface Writer {
  child: Deno.ChildProcess;
  /** Next stdout line, or null at EOF. */
  nextLine(): Promise<string | null>;
  /** Every line read so far. */
  lines: string[];
  /** Writes a line to its stdin. */
  send(line: string): Promise<void>;
  /** Closes its stdin (EOF also releases a holder), reads the rest of stdout, waits for exit. */
  finish(): Promise<Deno.CommandStatus>;
}

/** Starts `deno run tests/fixtures/state_writer.ts <args>`. */
export function spawnWriter(args: string[]): Writer {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--frozen", "--allow-read", "--allow-write", WRITER, ...args],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stdin = child.stdin.getWriter();
  const lines: string[] = [];
  let buffer = "";
  let eof = false;
  const nextLine = async (): Promise<string | null> => {
    for (;;) {
      const nl = buffer.indexOf("\n");
      if (nl >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        lines.push(line);
        return line;
      }
      if (eof) return null;
      const { value, done } = await reader.read();
      if (done) eof = true;
      else buffer += value;
    }
  };
  return {
    child,
    lines,
    nextLine,
    async send(line: string) {
      await stdin.write(new TextEncoder().encode(line + "\n"));
    },
    async finish() {
      await stdin.close().catch(() => {});
      while ((await nextLine()) !== null) { /* drain */ }
      return await child.status;
    },
  };
}

/** Reads lines until one equals `want`; throws at EOF. */
export async function waitForLine(writer: Writer, want: string): Promise<void> {
  for (;;) {
    const line = await writer.nextLine();
    if (line === null) throw new Error(`writer exited before printing ${want}`);
    if (line === want) return;
  }
}
