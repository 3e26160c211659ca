/**
 * File operations inside a running sandbox (read, write, edit, list), built on
 * {@link Backend.exec} so they behave the same on every engine: they run as the sandbox user
 * (files it creates are its own; permissions are the guest's), relative paths resolve from the
 * code directory, and paths and contents never pass through shell text — the scripts below are
 * constant and take every value as a positional parameter (`"$1"`), content on stdin.
 *
 * - `readFile` (file_read.ts): up to `maxBytes` from `offset`, with `truncated` and `binary` flags.
 * - {@link writeFile}: atomic (temp file in the same directory, then rename), parents created,
 *   mode given or kept (new files 0644), symlinks written through to their target.
 * - {@link editFile}: exact-string replacement; the file's mode is kept, and a file changed by
 *   someone else between the read and the write is not overwritten (sha256 check in the guest).
 * - `listFiles` (file_read.ts): entries `{path, size, mode, is_dir, type}`, sorted, capped.
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
  parseLanded,
  query,
  run,
  stripTrailer,
  VERIFY_SCRIPT,
  WRITE_SCRIPT,
} from "./file_scripts.ts";
import { readRaw } from "./file_read.ts";
import { normalizePath, octal, sha256Hex } from "./file_values.ts";

export { FILE_QUERY_ATTEMPTS, type FileTarget };

/** Largest file {@link editFile} edits. */
export const EDIT_MAX_BYTES = 10 << 20;
/** Largest content {@link writeFile} writes. */
export const WRITE_MAX_BYTES = 32 << 20;

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
