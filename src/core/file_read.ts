/**
 * Reading inside a running sandbox: {@link readFile} (a range of a file, with `truncated` and
 * `binary` flags) and {@link listFiles} (a directory or tree, capped). Both are read-only
 * queries, run again when their output is lost (see `sandbox_files.ts`).
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";
import { check, type FileTarget, LIST_SCRIPT, query, READ_SCRIPT } from "./file_scripts.ts";
import { isBinary, normalizePath, octal } from "./file_values.ts";

/** Default and hard cap for {@link readFile}. */
export const READ_DEFAULT_MAX_BYTES = 1 << 20;
/**
 * Largest `maxBytes` {@link readFile} accepts. MCP results carry the content twice (text and
 * structured), and stdio clients commonly refuse messages past 10 MiB.
 */
export const READ_HARD_MAX_BYTES = 4 << 20;
/** Default and hard cap of {@link listFiles} entries. */
export const LIST_DEFAULT_MAX_ENTRIES = 1000;
/** Largest `maxEntries` {@link listFiles} accepts. */
export const LIST_HARD_MAX_ENTRIES = 20_000;

/** Result of {@link readFile}. */
export interface ReadResult {
  /** The path as given. */
  path: string;
  /** Total size in bytes (as `stat` reports it; 0 for some special files). */
  size: number;
  /** Byte offset the data starts at. */
  offset: number;
  /** The bytes read (at most `maxBytes`). */
  data: Uint8Array;
  /** More data follows after what was read. */
  truncated: boolean;
  /** The data holds a NUL byte or is not valid UTF-8. */
  binary: boolean;
}

/** One entry of {@link listFiles}. */
export interface FileEntry {
  /** Path as found: below the listed path, relative when it was relative. */
  path: string;
  size: number;
  /** Permission bits, octal (`"0644"`). */
  mode: string;
  is_dir: boolean;
  type: "file" | "dir" | "symlink" | "other";
}

/** Options of {@link listFiles}. */
export interface ListOptions {
  recursive?: boolean;
  /** At most this many entries (default {@link LIST_DEFAULT_MAX_ENTRIES}). */
  maxEntries?: number;
}

/** Result of {@link listFiles}. */
export interface ListResult {
  path: string;
  entries: FileEntry[];
  /** More entries exist than were returned. */
  truncated: boolean;
}

/** Reads up to `maxBytes` of a file from `offset`. */
export async function readFile(
  target: FileTarget,
  path: string,
  options: { maxBytes?: number; offset?: number } = {},
): Promise<ReadResult> {
  normalizePath(path); // a bad path is refused before the range
  const maxBytes = options.maxBytes ?? READ_DEFAULT_MAX_BYTES;
  const offset = options.offset ?? 0;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > READ_HARD_MAX_BYTES) {
    throw new UsageError(
      `max_bytes must be a whole number from 1 to ${READ_HARD_MAX_BYTES}, got ${maxBytes}`,
    );
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new UsageError(`offset must be a whole number ≥ 0, got ${offset}`);
  }
  return await readRaw(target, path, { offset, maxBytes });
}

/** Reads without the caller-facing cap (edit reads whole files up to its own limit). */
export async function readRaw(
  target: FileTarget,
  path: string,
  range: { offset: number; maxBytes: number },
): Promise<ReadResult> {
  const { offset, maxBytes } = range;
  let size = 0;
  let all: Uint8Array = new Uint8Array();
  const result = await query(target, {
    script: READ_SCRIPT,
    args: [normalizePath(path), String(offset), String(maxBytes + 1)],
    what: `reading ${path}`,
    accept: (stdout) => {
      const newline = stdout.indexOf(0x0a);
      size = Number(new TextDecoder().decode(stdout.subarray(0, newline)));
      if (newline < 0 || !/^\d+$/.test(new TextDecoder().decode(stdout.subarray(0, newline)))) {
        return "no size header";
      }
      all = stdout.subarray(newline + 1);
      // `stat` says 0 for special files (/proc): then any amount is right.
      const expected = Math.min(maxBytes + 1, Math.max(0, size - offset));
      if (size > 0 && all.length !== expected) return `${all.length} of ${expected} bytes`;
      return null;
    },
  });
  check(result, path, "read");
  const truncated = all.length > maxBytes;
  const data = truncated ? all.slice(0, maxBytes) : all.slice();
  return { path, size, offset, data, truncated, binary: isBinary(data, truncated) };
}

/** Lists a directory (one level, or the whole tree with `recursive`). */
export async function listFiles(
  target: FileTarget,
  path: string,
  options: ListOptions = {},
): Promise<ListResult> {
  // `.` lists the code directory with plain relative names (`src`, not `./src`).
  const guestPath = path === "." ? "." : normalizePath(path);
  const max = options.maxEntries ?? LIST_DEFAULT_MAX_ENTRIES;
  if (!Number.isSafeInteger(max) || max < 1 || max > LIST_HARD_MAX_ENTRIES) {
    throw new UsageError(
      `max_entries must be a whole number from 1 to ${LIST_HARD_MAX_ENTRIES}, got ${max}`,
    );
  }
  const result = await query(target, {
    script: LIST_SCRIPT,
    args: [guestPath, options.recursive ? "1" : "0", String(max + 1)],
    what: `listing ${path}`,
    accept: () => null,
    codes: [0, 1],
  });
  // find exits non-zero when some subdirectory is unreadable; what it printed still counts.
  if (result.code === 1 && result.stdout.length > 0) result.code = 0;
  check(result, path, "list");
  const strip = path === "." || guestPath !== path ? 2 : 0;
  const entries: FileEntry[] = [];
  for (const raw of new TextDecoder().decode(result.stdout).split("\0")) {
    if (raw === "") continue;
    // The path may hold tabs itself: the three fields after it are taken from the right.
    const fields = raw.split("\t");
    if (fields.length < 4) continue;
    const [kind, size, bits] = fields.slice(-3);
    const type = kind === "f" ? "file" : kind === "d" ? "dir" : kind === "l" ? "symlink" : "other";
    entries.push({
      path: fields.slice(0, -3).join("\t").slice(strip),
      size: Number(size),
      mode: octal(bits),
      is_dir: type === "dir",
      type,
    });
  }
  const truncated = entries.length > max;
  return { path, entries: truncated ? entries.slice(0, max) : entries, truncated };
}
