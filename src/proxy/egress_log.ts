/**
 * The per-sandbox egress log: one JSON line per egress decision the proxy makes for a sandbox
 * (time, sandbox, method, host, port, verdict, reason), in
 * `<config>/proxy/egress/<token file name>.log` (0600 in 0700 directories). Each line is
 * appended with one `write` on a file opened with `O_APPEND`, so concurrent writers (two proxy
 * connections, a restarted proxy) never interleave within a line. Read by `network log`
 * (follow mode polls the file's size through a Clock). The log is removed with the sandbox's
 * token when the sandbox is destroyed.
 *
 * @module
 */
import { privateDir } from "../lib/private_files.ts";
import { tokenFileName } from "./tokens.ts";

/** One line of the egress log. */
export interface EgressLogEntry {
  /** RFC 3339 UTC. */
  time: string;
  sandbox: string;
  /** `CONNECT` for tunnels, else the plain-HTTP method. */
  method: string;
  host: string;
  port: number;
  verdict: "allowed" | "refused";
  /** Why it was refused (absent when allowed). */
  reason?: string;
}

/** The directory of the egress logs. */
export function egressLogDir(stateDir: string): string {
  return `${stateDir}/proxy/egress`;
}

/** The log file of `sandbox`. */
export function egressLogPath(stateDir: string, sandbox: string): string {
  return `${egressLogDir(stateDir)}/${tokenFileName(sandbox)}.log`;
}

/** Where the proxy records its egress decisions. */
export interface EgressRecorder {
  record(entry: EgressLogEntry): Promise<void>;
}

/** Appends to the per-sandbox files under a tachikoma directory. */
export class FileEgressLog implements EgressRecorder {
  readonly #stateDir: string;
  #dirReady: Promise<void> | null = null;

  constructor(stateDir: string) {
    this.#stateDir = stateDir;
  }

  /** Appends one line (one write, O_APPEND); never throws (a log must not break egress). */
  async record(entry: EgressLogEntry): Promise<void> {
    try {
      this.#dirReady ??= privateDir(egressLogDir(this.#stateDir)).catch((error) => {
        this.#dirReady = null;
        throw error;
      });
      await this.#dirReady;
      const line = new TextEncoder().encode(JSON.stringify(entry) + "\n");
      const file = await Deno.open(egressLogPath(this.#stateDir, entry.sandbox), {
        append: true,
        create: true,
        mode: 0o600,
      });
      try {
        let written = 0;
        while (written < line.length) written += await file.write(line.subarray(written));
      } finally {
        file.close();
      }
    } catch {
      // the state directory is gone or full: the decision itself stands
    }
  }
}

/** Lines read from a log from `offset` on, and where the next read starts. */
export interface EgressLogChunk {
  entries: EgressLogEntry[];
  /** Byte offset after the last complete line read. */
  offset: number;
}

function isEntry(value: unknown): value is EgressLogEntry {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.time === "string" && typeof v.sandbox === "string" &&
    typeof v.method === "string" && typeof v.host === "string" && typeof v.port === "number" &&
    (v.verdict === "allowed" || v.verdict === "refused");
}

/**
 * Reads the complete lines of `sandbox`'s log from `offset` on (a missing log has none).
 * A partial last line (being written) is left for the next read; a malformed line is skipped.
 */
export async function readEgressLog(
  stateDir: string,
  sandbox: string,
  offset = 0,
): Promise<EgressLogChunk> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(egressLogPath(stateDir, sandbox), { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return { entries: [], offset: 0 };
    throw error;
  }
  let bytes: Uint8Array;
  try {
    const size = (await file.stat()).size;
    // A log that shrank was replaced (the sandbox was made again): start over.
    const from = size < offset ? 0 : offset;
    await file.seek(from, Deno.SeekMode.Start);
    bytes = new Uint8Array(size - from);
    let read = 0;
    while (read < bytes.length) {
      const n = await file.read(bytes.subarray(read));
      if (n === null) break;
      read += n;
    }
    bytes = bytes.subarray(0, read);
    offset = from;
  } finally {
    file.close();
  }
  const end = bytes.lastIndexOf(10);
  if (end < 0) return { entries: [], offset };
  const entries: EgressLogEntry[] = [];
  for (const line of new TextDecoder().decode(bytes.subarray(0, end)).split("\n")) {
    try {
      const value = JSON.parse(line);
      if (isEntry(value)) entries.push(value);
    } catch {
      // skipped
    }
  }
  return { entries, offset: offset + end + 1 };
}

/** Removes `sandbox`'s log (destroy). */
export async function removeEgressLog(stateDir: string, sandbox: string): Promise<void> {
  try {
    await Deno.remove(egressLogPath(stateDir, sandbox));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
