/**
 * File operations inside a running sandbox (read, write, edit, list), built on
 * {@link Backend.exec} so they behave the same on every engine: they run as the sandbox user
 * (files it creates are its own; permissions are the guest's), relative paths resolve from the
 * code directory, and paths and contents never pass through shell text — the scripts below are
 * constant and take every value as a positional parameter (`"$1"`), content on stdin.
 *
 * - {@link readFile}: up to `maxBytes` from `offset`, with `truncated` and `binary` flags.
 * - {@link writeFile}: atomic (temp file in the same directory, then rename), parents created,
 *   mode given or kept (new files 0644), symlinks written through to their target.
 * - {@link editFile}: exact-string replacement; the file's mode is kept, and a file changed by
 *   someone else between the read and the write is not overwritten (sha256 check in the guest).
 * - {@link listFiles}: entries `{path, size, mode, is_dir, type}`, sorted, capped.
 * - {@link deleteFile}: one file (or symlink: the link itself), never a directory.
 *
 * Output is checked, never trusted: an engine can lose a command's output and still report
 * exit 0 (Incus does under concurrent execs). Every script ends its output with a trailer; a
 * read-only command whose trailer is missing, or whose data does not add up (read: fewer bytes
 * than the size says), is run again, then fails — never "empty". A write is verified: the
 * guest's SHA-256 of the file that landed must be the input's (asked again, read-only, when
 * the write's own answer was lost).
 *
 * Guest requirements: a POSIX `sh` and GNU coreutils/findutils (`stat -c`, `find -printf`,
 * `sort -z`, `head -z`, `sha256sum`, `mktemp`, `readlink -f`).
 *
 * @module
 */
import { ConflictError, NotFoundError, RuntimeError, UsageError } from "../lib/errors.ts";
import {
  check,
  DELETE_SCRIPT,
  EXIT,
  FILE_QUERY_ATTEMPTS,
  type FileTarget,
  KIND_SCRIPT,
  LIST_SCRIPT,
  parseLanded,
  query,
  READ_SCRIPT,
  run,
  stripTrailer,
  VERIFY_SCRIPT,
  WRITE_SCRIPT,
} from "./file_scripts.ts";

export { FILE_QUERY_ATTEMPTS, type FileTarget };

/** Default and hard cap for {@link readFile}. */
export const READ_DEFAULT_MAX_BYTES = 1 << 20;
/**
 * Largest `maxBytes` {@link readFile} accepts. MCP results carry the content twice (text and
 * structured), and stdio clients commonly refuse messages past 10 MiB.
 */
export const READ_HARD_MAX_BYTES = 4 << 20;
/** Largest file {@link editFile} edits. */
export const EDIT_MAX_BYTES = 10 << 20;
/** Largest content {@link writeFile} writes. */
export const WRITE_MAX_BYTES = 32 << 20;
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

/** Options of {@link writeFile}. */
export interface WriteOptions {
  /** Permission bits (e.g. 0o755). Default: an existing file's mode, else 0o644. */
  mode?: number;
  /** Create missing parent directories (default true). */
  createParents?: boolean;
  /** Refuse to replace the file unless its current content has this sha256 (hex). */
  expectSha256?: string;
}

/** What {@link writeFile} writes: the bytes, and how. */
export interface WriteRequest extends WriteOptions {
  /** The file's new content. */
  data: Uint8Array;
}

/** Result of {@link writeFile}. */
export interface WriteResult {
  path: string;
  bytes_written: number;
  /** Mode of the written file, octal (`"0644"`). */
  mode: string;
}

/** Options of {@link editFile}. */
export interface EditRequest {
  /** The exact text to replace. */
  oldString: string;
  /** The text to put in its place. */
  newString: string;
  /** Replace every occurrence (otherwise `oldString` must occur exactly once). */
  replaceAll?: boolean;
}

/** Result of {@link editFile}. */
export interface EditResult {
  path: string;
  replacements: number;
  /** Size after the edit. */
  bytes_written: number;
  /** The mode the file kept, octal. */
  mode: string;
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
async function readRaw(
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

/** Writes `request.data` to a file atomically (see the module doc). */
export async function writeFile(
  target: FileTarget,
  path: string,
  request: WriteRequest,
): Promise<WriteResult> {
  const { data, ...options } = request;
  const guestPath = normalizePath(path);
  if (guestPath.endsWith("/")) throw new UsageError(`${path} names a directory, not a file`);
  if (data.length > WRITE_MAX_BYTES) {
    throw new UsageError(
      `content is ${data.length} bytes; write_file takes at most ${WRITE_MAX_BYTES}`,
    );
  }
  let mode = "";
  if (options.mode !== undefined) {
    if (!Number.isInteger(options.mode) || options.mode < 0 || options.mode > 0o7777) {
      throw new UsageError(`mode must be between 0000 and 7777 (octal), got ${options.mode}`);
    }
    mode = options.mode.toString(8);
  }
  const result = await run(target, {
    script: WRITE_SCRIPT,
    args: [
      guestPath,
      mode,
      options.createParents === false ? "0" : "1",
      options.expectSha256 ?? "",
    ],
    stdin: data,
  });
  check(result, path, "write");
  const want = await sha256Hex(data);
  let landed = parseLanded(stripTrailer(result.stdout));
  if (landed === null) {
    // The write's answer was lost: ask (read-only) what landed.
    const verify = await query(target, {
      script: VERIFY_SCRIPT,
      args: [guestPath],
      what: `checking ${path}`,
      accept: (out) => parseLanded(out) === null ? "no size/mode/sha256" : null,
    });
    check(verify, path, "check");
    landed = parseLanded(verify.stdout)!;
  }
  if (landed.sha256 !== want || landed.size !== data.length) {
    throw new RuntimeError(
      "guest_output",
      `writing ${path}: the sandbox holds ${landed.size} bytes with SHA-256 ` +
        `${landed.sha256.slice(0, 12)}…, not the ${data.length} bytes written ` +
        `(${want.slice(0, 12)}…)`,
      { hint: "the file was changed right after the write, or the engine garbled it: retry" },
    );
  }
  return { path, bytes_written: landed.size, mode: octal(landed.bits) };
}

/**
 * Replaces `oldString` with `newString` in a text file. Errors: empty or identical strings,
 * not found, several matches without `replaceAll`, a binary or too large file, a file changed
 * meanwhile. The file keeps its mode.
 */
export async function editFile(
  target: FileTarget,
  path: string,
  edit: EditRequest,
): Promise<EditResult> {
  const { oldString, newString } = edit;
  if (oldString === "") {
    throw new UsageError("old_string is empty", {
      hint: "give the exact text to replace; use write_file to create or overwrite a file",
    });
  }
  if (oldString === newString) {
    throw new UsageError("old_string and new_string are identical: nothing would change");
  }
  const read = await readRaw(target, path, { offset: 0, maxBytes: EDIT_MAX_BYTES });
  if (read.truncated) {
    throw new UsageError(
      `${path} is larger than ${EDIT_MAX_BYTES} bytes; edit_file will not edit it`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(read.data);
  } catch {
    throw new UsageError(`${path} is not a UTF-8 text file; edit_file edits text only`);
  }
  const parts = text.split(oldString);
  const count = parts.length - 1;
  if (count === 0) {
    throw new NotFoundError(`old_string was not found in ${path}`, {
      hint: "it must match exactly, whitespace and indentation included: read the file again",
    });
  }
  if (count > 1 && !edit.replaceAll) {
    throw new ConflictError(`old_string occurs ${count} times in ${path}`, {
      hint: "include more surrounding text to make it unique, or set replace_all to true",
    });
  }
  // split/join: `$&`, `$1`… in new_string stay literal (String.replace would expand them).
  const updated = new TextEncoder().encode(parts.join(newString));
  const written = await writeFile(target, path, {
    data: updated,
    createParents: false,
    expectSha256: await sha256Hex(read.data),
  });
  return {
    path,
    replacements: count,
    bytes_written: written.bytes_written,
    mode: written.mode,
  };
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

/** Result of {@link deleteFile}. */
export interface DeleteResult {
  path: string;
  /** What was deleted: a regular file, a symlink (the link itself), or another kind of file. */
  type: "file" | "symlink" | "other";
}

/**
 * Deletes one file in the sandbox (a symlink itself, never its target; never a directory). What
 * it is comes from a read-only query first; when the delete's own answer is lost, another query
 * confirms that the file is gone.
 */
export async function deleteFile(target: FileTarget, path: string): Promise<DeleteResult> {
  const guestPath = normalizePath(path);
  if (guestPath.endsWith("/")) throw new UsageError(`${path} names a directory, not a file`);
  const kindOf = (s: Uint8Array) => new TextDecoder().decode(s).trim();
  const kind = await query(target, {
    script: KIND_SCRIPT,
    args: [guestPath],
    what: `looking at ${path}`,
    accept: (s) => ["file", "symlink", "other"].includes(kindOf(s)) ? null : "an unknown answer",
  });
  check(kind, path, "delete");
  const type = kindOf(kind.stdout) as DeleteResult["type"];
  const result = await run(target, { script: DELETE_SCRIPT, args: [guestPath] });
  const answer = result.code === 0 ? stripTrailer(result.stdout) : null;
  if (result.code !== 0) check(result, path, "delete");
  else if (answer === null || kindOf(answer) !== "gone") {
    const after = await query(target, {
      script: KIND_SCRIPT,
      args: [guestPath],
      what: `checking ${path}`,
      accept: () => null,
      codes: [0, EXIT.notFound],
    });
    if (after.code !== EXIT.notFound) {
      throw new RuntimeError("guest_output", `deleting ${path}: the sandbox did not confirm it`, {
        hint: "the engine lost the command's output; look at the file and retry",
      });
    }
  }
  return { path, type };
}

/** The SHA-256 of `data`, lowercase hex. */
export async function sha256Hex(data: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * True when `data` looks binary: a NUL byte in its first 8 KiB, or not valid UTF-8 (a
 * multi-byte character cut by truncation at the end does not count).
 */
export function isBinary(data: Uint8Array, truncated = false): boolean {
  if (data.subarray(0, 8192).includes(0)) return true;
  let end = data.length;
  if (truncated) {
    // Drop an incomplete UTF-8 sequence at the cut (at most 3 bytes).
    let i = end - 1;
    while (i >= 0 && end - i <= 3 && (data[i] & 0xc0) === 0x80) i--;
    if (i >= 0 && data[i] >= 0xc0) {
      const need = data[i] >= 0xf0 ? 4 : data[i] >= 0xe0 ? 3 : 2;
      if (end - i < need) end = i;
    }
  }
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(0, end));
    return false;
  } catch {
    return true;
  }
}

/** Octal permission bits with at least four digits (`"644"` → `"0644"`). */
function octal(bits: string | undefined): string {
  const value = (bits ?? "").trim();
  if (!/^[0-7]+$/.test(value)) return value;
  return value.padStart(4, "0");
}

/**
 * Validates a guest path; a relative one gets `./` so no value ever starts with `-` (and so
 * it resolves from the code directory, the commands' working directory).
 */
function normalizePath(path: string): string {
  if (path === "") throw new UsageError("path is empty");
  if (path.includes("\0")) throw new UsageError("path contains a NUL byte");
  return path.startsWith("/") ? path : `./${path}`;
}
