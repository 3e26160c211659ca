/**
 * Writing a config file atomically: a temporary file in the same directory, fsync, rename.
 * A reader sees the old file or the new one, never half of either.
 *
 * @module
 */

/** Options for {@link writeTextAtomic}. */
export interface AtomicWriteOptions {
  /** Mode of a new file (an existing file keeps its mode). */
  mode: number;
  /** Mode of the directory when it has to be created. */
  dirMode?: number;
}

/**
 * Replaces `path` with `text` atomically, creating the parent directory if needed. A symlink
 * (say, into a dotfiles repo) stays a symlink: its target is replaced.
 */
export function writeTextAtomic(link: string, text: string, options: AtomicWriteOptions): void {
  let path = link;
  try {
    path = Deno.realPathSync(link);
  } catch {
    // Does not exist yet.
  }
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  Deno.mkdirSync(dir, { recursive: true, mode: options.dirMode ?? 0o755 });
  let mode = options.mode;
  try {
    const info = Deno.statSync(path);
    if (info.mode !== null) mode = info.mode & 0o7777;
  } catch {
    // A new file.
  }
  const tmp = `${path}.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  const file = Deno.openSync(tmp, { write: true, createNew: true, mode });
  try {
    const bytes = new TextEncoder().encode(text);
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    file.syncSync();
  } catch (error) {
    file.close();
    Deno.removeSync(tmp);
    throw error;
  }
  file.close();
  try {
    Deno.chmodSync(tmp, mode); // the umask may have narrowed it
    Deno.renameSync(tmp, path);
  } catch (error) {
    try {
      Deno.removeSync(tmp);
    } catch {
      // already gone
    }
    throw error;
  }
}
