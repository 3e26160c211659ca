/**
 * A base's size where the engine reports none for its checkpoint (Incus on btrfs without
 * quotas, for one): measured in the guest as the build finishes — the disk its root file system
 * uses (`du -sx /`, as root) — and kept next to the state, `<state dir>/bases/<sandbox>.json`
 * (0600, replaced atomically). The guest's answer is untrusted: only a plain byte count is kept.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import { privateDir, writePrivateFile } from "../lib/private_files.ts";

/** The largest size believed (1 PiB): anything else the guest prints is not a size. */
const MAX_BYTES = 2 ** 50;

function sizePath(stateDir: string, sandbox: string): string {
  return `${stateDir}/bases/${sandbox}.json`;
}

/** Parses `du -s -B1`'s first field; null unless it is a plain, plausible byte count. */
export function parseDuBytes(text: string): number | null {
  const m = /^(\d{1,16})\s/.exec(text);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n <= MAX_BYTES ? n : null;
}

/** The disk the running sandbox's root file system uses, in bytes; null when unknown. */
export async function measureRootBytes(backend: Backend, sandbox: string): Promise<number | null> {
  try {
    const r = await backend.exec(sandbox, {
      argv: ["du", "-s", "-x", "-B1", "/"],
      user: "root",
      timeoutMs: 120_000,
    });
    return parseDuBytes(new TextDecoder().decode(r.stdout));
  } catch {
    return null;
  }
}

/** Keeps the measured size of a base build. */
export async function recordBaseSize(
  stateDir: string,
  sandbox: string,
  bytes: number,
): Promise<void> {
  await privateDir(`${stateDir}/bases`);
  await writePrivateFile(sizePath(stateDir, sandbox), JSON.stringify({ size_bytes: bytes }) + "\n");
}

/** The recorded size of a base build, or null (none, or not a size). */
export async function recordedBaseSize(stateDir: string, sandbox: string): Promise<number | null> {
  try {
    const doc = JSON.parse(await Deno.readTextFile(sizePath(stateDir, sandbox)));
    const n = doc?.size_bytes;
    return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= MAX_BYTES ? n : null;
  } catch {
    return null;
  }
}

/** Forgets the recorded size of a deleted base build. */
export async function forgetBaseSize(stateDir: string, sandbox: string): Promise<void> {
  await Deno.remove(sizePath(stateDir, sandbox)).catch(() => {});
}
