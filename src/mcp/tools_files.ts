/**
 * File tools: read_file, write_file, edit_file, list_files, delete_file — on a running sandbox, as its
 * user, through `src/core/sandbox_files.ts` (and file_read.ts). Relative paths start at /mnt/tachikoma/code (the
 * branch's worktree).
 *
 * @module
 */
import { z } from "zod";
import { UsageError } from "../lib/errors.ts";
import { fromBase64, toBase64 } from "../lib/shell.ts";
import { deleteFile, editFile, type FileTarget, writeFile } from "../core/sandbox_files.ts";
import {
  LIST_DEFAULT_MAX_ENTRIES,
  LIST_HARD_MAX_ENTRIES,
  listFiles,
  READ_DEFAULT_MAX_BYTES,
  READ_HARD_MAX_BYTES,
  readFile,
} from "../core/file_read.ts";
import { repoArg, sandboxArg } from "./schemas.ts";
import { changes, READ_ONLY, type ToolCall, type ToolSpec } from "./tooling.ts";

const pathArg = z.string().min(1).describe(
  "Path in the sandbox: absolute, or relative to /mnt/tachikoma/code (the branch's worktree).",
);

/** The running sandbox a file tool acts on. */
async function fileTarget(
  call: ToolCall,
  args: { sandbox: string; repo?: string },
): Promise<FileTarget> {
  const service = await call.service({ repo: args.repo });
  const { record, backend } = await service.ready(args.sandbox);
  call.using(record.name);
  return { backend, sandbox: record.name, signal: call.signal };
}

const readInput = {
  sandbox: sandboxArg,
  path: pathArg,
  max_bytes: z.number().int().min(1).max(READ_HARD_MAX_BYTES).optional().describe(
    `Read at most this many bytes (default ${READ_DEFAULT_MAX_BYTES}, at most ` +
      `${READ_HARD_MAX_BYTES}).`,
  ),
  offset: z.number().int().min(0).optional().describe(
    "Start at this byte (default 0): to read on after a truncated read, pass offset + bytes_read.",
  ),
  repo: repoArg,
};

const readOutput = {
  path: z.string(),
  size: z.number().int().describe("the file's size in bytes"),
  offset: z.number().int(),
  bytes_read: z.number().int(),
  truncated: z.boolean().describe("the file goes on after what was read"),
  binary: z.boolean().describe("not UTF-8 text: content is base64"),
  encoding: z.enum(["utf-8", "base64"]),
  content: z.string(),
};

/** read_file */
export const readTool: ToolSpec<typeof readInput, typeof readOutput> = {
  name: "read_file",
  title: "Read a file in a sandbox",
  description: "Read a file in a running sandbox. Text comes back as is; a binary file (NUL " +
    "bytes or not UTF-8) comes back base64-encoded with binary: true. Large files are cut at " +
    "max_bytes with truncated: true; read on with offset.",
  input: readInput,
  output: readOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const target = await fileTarget(call, args);
    const read = await readFile(target, args.path, {
      maxBytes: args.max_bytes,
      offset: args.offset,
    });
    const data = {
      path: read.path,
      size: read.size,
      offset: read.offset,
      bytes_read: read.data.length,
      truncated: read.truncated,
      binary: read.binary,
      encoding: read.binary ? "base64" as const : "utf-8" as const,
      content: read.binary ? toBase64(read.data) : new TextDecoder().decode(read.data),
    };
    let text = data.content;
    if (read.binary) {
      text = `[binary file, ${read.size} bytes; ${data.bytes_read} bytes from offset ` +
        `${read.offset} as base64]\n${data.content}`;
    }
    if (read.truncated) {
      const next = read.offset + data.bytes_read;
      text += `\n[truncated: read ${data.bytes_read} of ${read.size} bytes from offset ` +
        `${read.offset}; pass offset=${next} to read on]`;
    }
    return { data, text };
  },
};

const writeInput = {
  sandbox: sandboxArg,
  path: pathArg,
  content: z.string().describe("The whole new content of the file."),
  encoding: z.enum(["utf-8", "base64"]).optional().describe(
    "How `content` is encoded (default utf-8; base64 for binary files).",
  ),
  mode: z.string().regex(/^0?[0-7]{3,4}$/).optional().describe(
    'Permission bits in octal, e.g. "0755". Default: an existing file keeps its mode, a new ' +
      "file gets 0644.",
  ),
  create_parents: z.boolean().optional().describe(
    "Create missing parent directories (default true).",
  ),
  repo: repoArg,
};

const writeOutput = {
  path: z.string(),
  bytes_written: z.number().int(),
  mode: z.string().describe('the file\'s mode, octal ("0644")'),
};

/** write_file */
export const writeTool: ToolSpec<typeof writeInput, typeof writeOutput> = {
  name: "write_file",
  title: "Write a file in a sandbox",
  description: "Create or replace a file in a running sandbox with the given content, " +
    "atomically, owned by the sandbox user. Missing parent directories are created. To change " +
    "part of an existing file, edit_file is safer.",
  input: writeInput,
  output: writeOutput,
  annotations: changes(true, true),
  async run(args, call) {
    let bytes: Uint8Array;
    if (args.encoding === "base64") {
      try {
        bytes = fromBase64(args.content.replace(/\s+/g, ""));
      } catch {
        throw new UsageError("content is not valid base64 (encoding: base64)");
      }
    } else {
      bytes = new TextEncoder().encode(args.content);
    }
    const target = await fileTarget(call, args);
    const written = await writeFile(target, args.path, {
      data: bytes,
      mode: args.mode === undefined ? undefined : parseInt(args.mode, 8),
      createParents: args.create_parents ?? true,
    });
    return { data: { ...written } };
  },
};

const editInput = {
  sandbox: sandboxArg,
  path: pathArg,
  old_string: z.string().min(1).describe(
    "The exact text to replace, whitespace and indentation included. It must occur exactly " +
      "once unless replace_all is true: include enough surrounding lines to make it unique.",
  ),
  new_string: z.string().describe("The text to put in its place (must differ from old_string)."),
  replace_all: z.boolean().optional().describe(
    "Replace every occurrence of old_string (default false).",
  ),
  repo: repoArg,
};

const editOutput = {
  path: z.string(),
  replacements: z.number().int(),
  bytes_written: z.number().int().describe("the file's size after the edit"),
  mode: z.string().describe("the file's mode, kept from before the edit"),
};

/** edit_file */
export const editTool: ToolSpec<typeof editInput, typeof editOutput> = {
  name: "edit_file",
  title: "Edit a file in a sandbox",
  description: "Replace exact text in a text file in a running sandbox. Fails (and changes " +
    "nothing) when old_string is not found, occurs several times without replace_all, equals " +
    "new_string, or the file changed meanwhile. The file keeps its permissions.",
  input: editInput,
  output: editOutput,
  annotations: changes(true, false),
  async run(args, call) {
    const target = await fileTarget(call, args);
    const edited = await editFile(target, args.path, {
      oldString: args.old_string,
      newString: args.new_string,
      replaceAll: args.replace_all ?? false,
    });
    return { data: { ...edited } };
  },
};

const listInput = {
  sandbox: sandboxArg,
  path: pathArg.optional().describe(
    "Directory in the sandbox, absolute or relative to /mnt/tachikoma/code (default: that " +
      "directory).",
  ),
  recursive: z.boolean().optional().describe("List the whole tree below path (default false)."),
  max_entries: z.number().int().min(1).max(LIST_HARD_MAX_ENTRIES).optional().describe(
    `Return at most this many entries (default ${LIST_DEFAULT_MAX_ENTRIES}).`,
  ),
  repo: repoArg,
};

const listOutput = {
  path: z.string(),
  entries: z.array(z.object({
    path: z.string(),
    size: z.number().int(),
    mode: z.string().describe('permission bits, octal ("0644")'),
    is_dir: z.boolean(),
    type: z.enum(["file", "dir", "symlink", "other"]),
  })),
  truncated: z.boolean().describe("there are more entries than max_entries"),
};

/** list_files */
export const listFilesTool: ToolSpec<typeof listInput, typeof listOutput> = {
  name: "list_files",
  title: "List files in a sandbox",
  description: "List a directory in a running sandbox (sorted by path; symlinks are not " +
    "followed). Set recursive for the whole tree; max_entries caps the answer.",
  input: listInput,
  output: listOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const target = await fileTarget(call, args);
    const listed = await listFiles(target, args.path ?? ".", {
      recursive: args.recursive ?? false,
      maxEntries: args.max_entries,
    });
    return { data: { path: listed.path, entries: listed.entries, truncated: listed.truncated } };
  },
};

const deleteInput = { sandbox: sandboxArg, path: pathArg, repo: repoArg };

const deleteOutput = {
  path: z.string(),
  deleted: z.literal(true),
  type: z.enum(["file", "symlink", "other"]).describe(
    "what was deleted (a symlink: the link itself, not its target)",
  ),
};

/** delete_file */
export const deleteFileTool: ToolSpec<typeof deleteInput, typeof deleteOutput> = {
  name: "delete_file",
  title: "Delete a file in a sandbox",
  description: "Delete one file in a running sandbox, as the sandbox user. A symlink is " +
    "removed itself (its target stays). Directories are refused: use exec_in_sandbox " +
    "(`rm -r`) for those. Fails when the file does not exist.",
  input: deleteInput,
  output: deleteOutput,
  annotations: changes(true, false),
  async run(args, call) {
    const target = await fileTarget(call, args);
    const deleted = await deleteFile(target, args.path);
    return { data: { path: deleted.path, deleted: true, type: deleted.type } };
  },
};
