/**
 * The values the sandbox file operations check and show: SHA-256 digests, the binary test,
 * octal modes, guest paths.
 *
 * @module
 */
import { UsageError } from "../lib/errors.ts";

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
export function octal(bits: string | undefined): string {
  const value = (bits ?? "").trim();
  if (!/^[0-7]+$/.test(value)) return value;
  return value.padStart(4, "0");
}

/**
 * Validates a guest path; a relative one gets `./` so no value ever starts with `-` (and so
 * it resolves from the code directory, the commands' working directory).
 */
export function normalizePath(path: string): string {
  if (path === "") throw new UsageError("path is empty");
  if (path.includes("\0")) throw new UsageError("path contains a NUL byte");
  return path.startsWith("/") ? path : `./${path}`;
}
