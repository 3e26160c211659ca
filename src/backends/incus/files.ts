/**
 * File push/pull through the Incus files API (`/1.0/instances/<n>/files?path=…`).
 *
 * Incus keeps the owner and mode of a file it overwrites, so a push first looks at the
 * existing file (HEAD) and deletes it when its owner or mode differ: content meant to be 0600
 * never lands in a 0644 file. Missing parent directories are created one level at a time
 * (existing ones are left as they are), owned like the file.
 *
 * @module
 */
import type { PushedFile } from "../backend.ts";
import { ConflictError, NotFoundError, UsageError } from "../../lib/errors.ts";
import type { IncusClient } from "./client.ts";
import { incusError } from "./errors.ts";
import { instancePath } from "./instances.ts";

/** What file transfer needs to know about the guest user. */
export interface FileContext {
  client: IncusClient;
  guestUid: number;
  guestGid: number;
}

/** Default mode of pushed files. */
export const DEFAULT_FILE_MODE = 0o644;
const DIR_MODE = 0o755;
const MAX_SYMLINKS = 8;

function filesPath(name: string): string {
  return `${instancePath(name)}/files`;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

function checkPath(path: string): void {
  if (!path.startsWith("/")) {
    throw new UsageError(`guest path must be absolute: ${JSON.stringify(path)}`);
  }
  if (path.includes("\0")) throw new UsageError("guest path contains NUL");
}

async function failure(response: Response, subject: string): Promise<Error> {
  const text = await response.text();
  let message = text;
  try {
    message = (JSON.parse(text) as { error?: string }).error ?? text;
  } catch {
    // not JSON
  }
  return incusError(response.status, message, subject);
}

/** Writes `file.data` at `file.path` with the given owner and mode, creating parents. */
export async function pushFile(ctx: FileContext, name: string, file: PushedFile): Promise<void> {
  const { path, data, ...options } = file;
  checkPath(path);
  const [uid, gid] = options.owner === "root" ? [0, 0] : [ctx.guestUid, ctx.guestGid];
  const mode = options.mode ?? DEFAULT_FILE_MODE;
  const subject = `file ${path} in sandbox "${name}"`;
  const head = await ctx.client.raw("HEAD", filesPath(name), { query: { path } });
  await head.body?.cancel();
  if (head.ok) {
    const type = head.headers.get("x-incus-type");
    if (type === "directory") throw new ConflictError(`${subject} is a directory`);
    const same = head.headers.get("x-incus-uid") === String(uid) &&
      head.headers.get("x-incus-gid") === String(gid) &&
      head.headers.get("x-incus-mode") === octal(mode);
    if (!same) await deleteFile(ctx, name, path);
  } else if (head.status !== 404) {
    throw await failure(head, subject);
  }
  const post = () =>
    ctx.client.raw("POST", filesPath(name), {
      query: { path },
      body: data,
      headers: {
        "content-type": "application/octet-stream",
        "x-incus-type": "file",
        "x-incus-uid": String(uid),
        "x-incus-gid": String(gid),
        "x-incus-mode": octal(mode),
        "x-incus-write": "overwrite",
      },
    });
  let response = await post();
  if (response.status === 404) {
    await response.body?.cancel();
    await makeParents(ctx, name, { path, uid, gid });
    response = await post();
  }
  if (!response.ok) throw await failure(response, subject);
  await response.body?.cancel();
}

async function deleteFile(ctx: FileContext, name: string, path: string): Promise<void> {
  const response = await ctx.client.raw("DELETE", filesPath(name), { query: { path } });
  if (!response.ok && response.status !== 404) {
    throw await failure(response, `file ${path} in sandbox "${name}"`);
  }
  await response.body?.cancel();
}

/** Creates the missing parent directories of `file.path`, owned by `uid`/`gid`. */
async function makeParents(
  ctx: FileContext,
  name: string,
  file: { path: string; uid: number; gid: number },
): Promise<void> {
  const { path, uid, gid } = file;
  const parts = path.split("/").filter((p) => p.length > 0).slice(0, -1);
  let dir = "";
  for (const part of parts) {
    dir += `/${part}`;
    // POSTing a directory that exists leaves it unchanged; a missing one is created.
    const response = await ctx.client.raw("POST", filesPath(name), {
      query: { path: dir },
      headers: {
        "x-incus-type": "directory",
        "x-incus-uid": String(uid),
        "x-incus-gid": String(gid),
        "x-incus-mode": octal(DIR_MODE),
      },
    });
    if (!response.ok) throw await failure(response, `directory ${dir} in sandbox "${name}"`);
    await response.body?.cancel();
  }
}

/** Reads a file (following symlinks); NotFoundError when missing. */
export async function pullFile(ctx: FileContext, name: string, path: string): Promise<Uint8Array> {
  checkPath(path);
  let current = path;
  for (let hops = 0; hops <= MAX_SYMLINKS; hops++) {
    const response = await ctx.client.raw("GET", filesPath(name), { query: { path: current } });
    const subject = `file ${current} in sandbox "${name}"`;
    if (response.status === 404) {
      await response.body?.cancel();
      throw new NotFoundError(`${subject} not found`);
    }
    if (!response.ok) throw await failure(response, subject);
    const type = response.headers.get("x-incus-type");
    if (type === "directory") {
      await response.body?.cancel();
      throw new ConflictError(`${subject} is a directory`);
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (type !== "symlink") return bytes;
    const target = new TextDecoder().decode(bytes).trim();
    current = target.startsWith("/")
      ? target
      : `${current.slice(0, current.lastIndexOf("/"))}/${target}`;
  }
  throw new ConflictError(`file ${path} in sandbox "${name}": too many symbolic links`);
}
