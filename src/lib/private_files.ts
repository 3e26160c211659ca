/**
 * Files that hold secrets or private state: 0700 directories, 0600 files written atomically,
 * and random tokens (32 bytes from `crypto.getRandomValues`, base64url, 43 characters) kept in
 * a file that is created once and never overwritten — a concurrent creator reads the winner's
 * token. Every token read or made here is registered with the redactor, so it never reaches a
 * log or an error. Tokens are compared in constant time.
 *
 * Used by the credential proxy (one token per sandbox) and the MCP daemon (its bearer token).
 *
 * @module
 */
import { RuntimeError } from "./errors.ts";
import { registerSecret } from "./redact.ts";

/** Random bytes in a token. */
export const TOKEN_BYTES = 32;

/** What a token looks like: 43 base64url characters (32 bytes, unpadded). */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

/** base64url without padding. */
export function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A new random token. */
export function newToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)));
}

/** True when `text` has the shape of a token (it may still be unknown). */
export function isTokenShape(text: string): boolean {
  return TOKEN_RE.test(text);
}

/** Compares two strings in time that depends only on their lengths. */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  const n = Math.max(x.length, y.length);
  for (let i = 0; i < n; i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

/** Creates `path` (and parents) as 0700 directories; refuses a symlink or a non-directory. */
export async function privateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  const info = await Deno.lstat(path);
  if (!info.isDirectory) {
    throw new RuntimeError("private_dir", `${path} is not a directory (a symlink?)`, {
      hint: "remove it; tachikoma recreates it",
    });
  }
  if ((info.mode ?? 0o700) & 0o077) await Deno.chmod(path, 0o700);
}

/**
 * Replaces `path` with `text` atomically (temporary file in the same directory, then rename),
 * mode 0600 whatever the umask. The directory must exist.
 */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const tmp = `${dir}/.tmp-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
  await Deno.writeTextFile(tmp, text, { mode: 0o600, createNew: true });
  try {
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, path);
  } catch (error) {
    await Deno.remove(tmp).catch(() => {});
    throw error;
  }
}

/** A token file: absent (null), holding a token, or holding something else (`broken`). */
export async function inspectTokenFile(path: string): Promise<string | null | "broken"> {
  let text: string;
  try {
    text = (await Deno.readTextFile(path)).trim();
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (!isTokenShape(text)) return "broken";
  registerSecret(text);
  return text;
}

/** Reads a token file: the token, or null when absent or not a token. */
export async function readTokenFile(path: string): Promise<string | null> {
  const found = await inspectTokenFile(path);
  return found === "broken" ? null : found;
}

/**
 * The token in `path`, made now when there is none (a file that holds no token is replaced).
 * The directory must exist (see {@link privateDir}). Safe against concurrent callers: the file
 * is written under a temporary name starting with `.` and hard-linked into place (never
 * overwriting), so every caller returns the same token.
 */
export async function ensureTokenFile(path: string): Promise<string> {
  const existing = await inspectTokenFile(path);
  if (existing !== null && existing !== "broken") return existing;
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const token = newToken();
  registerSecret(token);
  const tmp = `${dir}/.tmp-${crypto.randomUUID()}`;
  await Deno.writeTextFile(tmp, token + "\n", { mode: 0o600, createNew: true });
  try {
    await Deno.chmod(tmp, 0o600);
    try {
      if (existing === "broken") await Deno.remove(path); // replaced by a real token
      await Deno.link(tmp, path);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
      const winner = await readTokenFile(path);
      if (winner) return winner;
      throw new RuntimeError("token_file", `${path} exists but holds no token`, {
        hint: "remove it; tachikoma makes a new one",
      });
    }
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  return token;
}
