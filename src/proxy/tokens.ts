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
import { UsageError } from "../lib/errors.ts";
import {
  base64url,
  ensureTokenFile,
  inspectTokenFile,
  privateDir,
  readTokenFile,
} from "../lib/private_files.ts";

export { constantTimeEqual, isTokenShape, newToken, TOKEN_BYTES } from "../lib/private_files.ts";

const PLAIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MAX_FILE_NAME = 255;

/** The directory holding the tokens of a tachikoma config directory. */
export function tokensDir(stateDir: string): string {
  return `${stateDir}/proxy/tokens`;
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
  return await ensureTokenFile(path);
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
