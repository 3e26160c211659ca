/**
 * Log files of the long-running processes (the credential proxy, the MCP daemon): the file is
 * prepared 0600 in a 0700 directory and rotated past a size, and a sink writes timestamped
 * lines to stderr and, optionally, to the file. Lines are batched and written once per tick, so
 * a burst of requests costs one write, not one per line.
 *
 * @module
 */
import type { LogSink } from "./log.ts";

/** Prepares a log file: directory 0700, file 0600, rotated to `<path>.1` past `maxBytes`. */
export async function prepareLogFile(path: string, maxBytes = 10 * 1024 * 1024): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  try {
    const info = await Deno.stat(path);
    if (info.size > maxBytes) await Deno.rename(path, `${path}.1`);
  } catch {
    // absent
  }
  const f = await Deno.open(path, { create: true, append: true, mode: 0o600 });
  f.close();
  await Deno.chmod(path, 0o600);
}

/** A timestamped sink and the way to write what it still holds. */
export interface TeeSink {
  sink: LogSink;
  /** Writes the pending lines now (before exiting). */
  flush(): void;
}

/**
 * A sink writing `<RFC 3339 time> <line>` to stderr and to `tee` (an open log file) when given.
 * A write that fails (stderr or the file gone) is dropped: the process keeps serving.
 */
export function timestampedSink(tee: Deno.FsFile | null): TeeSink {
  const encoder = new TextEncoder();
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const bytes = encoder.encode(pending.join(""));
    pending = [];
    for (const out of tee ? [Deno.stderr, tee] : [Deno.stderr]) {
      try {
        let off = 0;
        while (off < bytes.length) off += out.writeSync(bytes.subarray(off));
      } catch {
        // stderr or the log file is gone: keep serving
      }
    }
  };
  const sink: LogSink = (line) => {
    pending.push(`${new Date().toISOString()} ${line}\n`);
    if (!scheduled) {
      scheduled = true;
      setTimeout(flush, 0);
    }
  };
  return { sink, flush };
}
