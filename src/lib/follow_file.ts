/**
 * Following a growing text file (`tail -f`): what is appended from a byte offset on is handed to
 * a writer as it arrives, until the signal aborts. A file that shrinks (rotated) is read again
 * from its start. Used by `proxy logs -f` and every other log a command follows.
 *
 * @module
 */

/** What {@link followFile} needs. */
export interface FollowOptions {
  /** The file to follow (its directory is created when missing, 0700). */
  path: string;
  /** The byte offset already shown. */
  offset: number;
  /** Ends the following. */
  signal: AbortSignal;
  /** Receives each decoded chunk. */
  write: (text: string) => void;
}

/** Reads `path` whole as text; a missing file is empty. */
export async function readTextOrEmpty(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "";
    throw error;
  }
}

/** Hands what is appended to `path` after `offset` to `write`, until `signal` aborts. */
export async function followFile(options: FollowOptions): Promise<void> {
  const { path, signal, write } = options;
  let pos = options.offset;
  const decoder = new TextDecoder();
  const readMore = async () => {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(path, { read: true });
    } catch {
      return;
    }
    try {
      const size = (await file.stat()).size;
      if (size < pos) pos = 0; // rotated
      await file.seek(pos, Deno.SeekMode.Start);
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await file.read(buf);
        if (n === null) break;
        pos += n;
        write(decoder.decode(buf.subarray(0, n), { stream: true }));
      }
    } finally {
      file.close();
    }
  };
  const dir = path.slice(0, path.lastIndexOf("/")) || ".";
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  if (signal.aborted) return;
  const watcher = Deno.watchFs(dir);
  const onAbort = () => watcher.close();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await readMore();
    for await (const event of watcher) {
      if (event.paths.some((p) => p === path || p.startsWith(path))) await readMore();
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
