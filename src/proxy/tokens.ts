/**
 * Per-sandbox proxy tokens on the host: every sandbox that uses the proxy gets its own random
 * token (32 bytes from `crypto.getRandomValues`, base64url, 43 characters), which is the
 * guest's identity towards the proxy. One file per sandbox, `<config>/proxy/tokens/<name>`,
 * holding the token: 0600 in 0700 directories, written atomically and never overwritten (a
 * concurrent creator reads the winner's token), removed when the sandbox is destroyed.
 *
 * A sandbox name becomes the file name as it is when it is a plain name
 * (`[A-Za-z0-9][A-Za-z0-9._-]*`, which cannot be `.`/`..` or contain `/`); any other name is
 * stored as `~` + base64url of its UTF-8 bytes, so no name can leave the directory. Temporary
 * files start with `.` and are never read as tokens.
 *
 * Every token read or made here is registered with the redactor: it never reaches a log.
 *
 * @module
 */
import { RuntimeError, UsageError } from "../lib/errors.ts";
import { registerSecret } from "../lib/redact.ts";

/** Random bytes in a token. */
export const TOKEN_BYTES = 32;

/** What a token looks like: 43 base64url characters (32 bytes, unpadded). */
const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;
const PLAIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MAX_FILE_NAME = 255;

/** The directory holding the tokens of a tachikoma config directory. */
export function tokensDir(stateDir: string): string {
  return `${stateDir}/proxy/tokens`;
}

function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return null;
  try {
    const bin = atob(text.replaceAll("-", "+").replaceAll("_", "/"));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

/** A new random token. */
export function newToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)));
}

/** True when `text` has the shape of a token (it may still be unknown). */
export function isTokenShape(text: string): boolean {
  return TOKEN_RE.test(text);
}

/** The file name of a sandbox's token (see the module doc). */
export function tokenFileName(sandbox: string): string {
  if (sandbox === "") throw new UsageError("a sandbox name cannot be empty");
  const name = PLAIN_NAME_RE.test(sandbox)
    ? sandbox
    : `~${base64url(new TextEncoder().encode(sandbox))}`;
  if (name.length > MAX_FILE_NAME) {
    throw new UsageError(`sandbox name too long for a token file: ${JSON.stringify(sandbox)}`);
  }
  return name;
}

/** The sandbox a token file belongs to, or null for anything that is not a token file. */
export function sandboxOfFileName(file: string): string | null {
  if (PLAIN_NAME_RE.test(file)) return file;
  if (!file.startsWith("~")) return null;
  const bytes = fromBase64url(file.slice(1));
  if (!bytes || bytes.length === 0) return null;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Where the token of `sandbox` lives. */
export function tokenPath(stateDir: string, sandbox: string): string {
  return `${tokensDir(stateDir)}/${tokenFileName(sandbox)}`;
}

/** Creates `path` (and parents) as 0700 directories; refuses a symlink or a non-directory. */
async function privateDir(path: string): Promise<void> {
  await Deno.mkdir(path, { recursive: true, mode: 0o700 });
  const info = await Deno.lstat(path);
  if (!info.isDirectory) {
    throw new RuntimeError("token_dir", `${path} is not a directory (a symlink?)`, {
      hint: "remove it; tachikoma recreates it",
    });
  }
  if ((info.mode ?? 0o700) & 0o077) await Deno.chmod(path, 0o700);
}

/** A token file: absent, holding a token, or holding something else. */
async function inspectTokenFile(path: string): Promise<string | null | "broken"> {
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
async function readTokenFile(path: string): Promise<string | null> {
  const found = await inspectTokenFile(path);
  return found === "broken" ? null : found;
}

/** The token of `sandbox`, or null when it has none. */
export function readToken(stateDir: string, sandbox: string): Promise<string | null> {
  return readTokenFile(tokenPath(stateDir, sandbox));
}

/** True when `sandbox` has a token. */
export async function hasToken(stateDir: string, sandbox: string): Promise<boolean> {
  return (await readToken(stateDir, sandbox)) !== null;
}

/**
 * The token of `sandbox`, made now when it has none. Safe against concurrent callers: the file
 * is written under a temporary name and hard-linked into place (never overwriting), so every
 * caller returns the same token.
 */
export async function ensureToken(stateDir: string, sandbox: string): Promise<string> {
  const path = tokenPath(stateDir, sandbox);
  const existing = await inspectTokenFile(path);
  if (existing !== null && existing !== "broken") return existing;
  await privateDir(`${stateDir}/proxy`);
  await privateDir(tokensDir(stateDir));
  const token = newToken();
  registerSecret(token);
  const tmp = `${tokensDir(stateDir)}/.tmp-${crypto.randomUUID()}`;
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

/** Removes the token of `sandbox` (the proxy refuses it from then on). True when one existed. */
export async function revokeToken(stateDir: string, sandbox: string): Promise<boolean> {
  try {
    await Deno.remove(tokenPath(stateDir, sandbox));
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
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
