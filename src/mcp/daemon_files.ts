/**
 * The MCP daemon's files in the tachikoma directory, all private (0600 in 0700 `mcp/`):
 *
 * - `mcp/token`: the bearer token every request must carry (made on first use, kept).
 * - `mcp/daemon.lock`: held (`flock`) by the running daemon for its whole life, so there is
 *   one daemon per configuration directory; the kernel drops it when the process dies.
 * - `mcp/daemon.json`: what the running daemon records about itself (PID, URL, start time,
 *   version, log), written under the lock, removed when it stops.
 * - `logs/mcp.log`: the daemon's log (also on its stderr).
 *
 * @module
 */
import { ConflictError } from "../lib/errors.ts";
import { ensureTokenFile, privateDir, writePrivateFile } from "../lib/private_files.ts";

/** The daemon's files under a tachikoma directory. */
export interface McpPaths {
  /** The tachikoma configuration/state directory. */
  dir: string;
  token: string;
  lock: string;
  runtime: string;
  log: string;
}

/** The daemon's files under `stateDir`. */
export function mcpPaths(stateDir: string): McpPaths {
  return {
    dir: stateDir,
    token: `${stateDir}/mcp/token`,
    lock: `${stateDir}/mcp/daemon.lock`,
    runtime: `${stateDir}/mcp/daemon.json`,
    log: `${stateDir}/logs/mcp.log`,
  };
}

/** The daemon's bearer token, made (0600) when there is none. Registered with the redactor. */
export async function ensureMcpToken(paths: McpPaths): Promise<string> {
  await privateDir(`${paths.dir}/mcp`);
  return await ensureTokenFile(paths.token);
}

/** What a running daemon records (`mcp/daemon.json`). */
export interface McpRuntime {
  pid: number;
  /** The endpoint clients use. */
  url: string;
  host: string;
  port: number;
  tls: boolean;
  /** The certificate file (to check the daemon over TLS), or null. */
  tls_cert: string | null;
  started_at: string;
  version: string;
  log: string;
}

/** Records the running daemon. */
export async function writeMcpRuntime(paths: McpPaths, runtime: McpRuntime): Promise<void> {
  await privateDir(`${paths.dir}/mcp`);
  await writePrivateFile(paths.runtime, JSON.stringify(runtime, null, 2) + "\n");
}

/** The recorded daemon, or null when none is recorded (or the file is unreadable). */
export async function readMcpRuntime(paths: McpPaths): Promise<McpRuntime | null> {
  try {
    const data = JSON.parse(await Deno.readTextFile(paths.runtime));
    if (typeof data?.pid === "number" && typeof data?.url === "string") return data;
  } catch {
    // absent or broken
  }
  return null;
}

/** Removes the runtime record when it still names `pid`. */
export async function removeMcpRuntime(paths: McpPaths, pid: number): Promise<void> {
  const current = await readMcpRuntime(paths);
  if (current && current.pid !== pid) return;
  await Deno.remove(paths.runtime).catch(() => {});
}

/** The daemon lock, held until {@link DaemonLock.release} (or the process ends). */
export class DaemonLock {
  #file: Deno.FsFile | null;

  private constructor(file: Deno.FsFile) {
    this.#file = file;
  }

  /**
   * Takes the lock of `paths`, or throws a ConflictError naming the daemon that holds it
   * (its PID and URL when recorded).
   */
  static async acquire(paths: McpPaths): Promise<DaemonLock> {
    await privateDir(`${paths.dir}/mcp`);
    const file = await Deno.open(paths.lock, {
      read: true,
      write: true,
      create: true,
      mode: 0o600,
    });
    if (!file.tryLockSync(true)) {
      file.close();
      const running = await readMcpRuntime(paths);
      const what = running ? ` (PID ${running.pid}, ${running.url})` : "";
      throw new ConflictError(
        `another tachikoma mcp daemon is running for ${paths.dir}${what}`,
        { hint: "`tachikoma mcp status` shows it; `tachikoma mcp stop` stops it" },
      );
    }
    return new DaemonLock(file);
  }

  /** Releases the lock. */
  release(): void {
    const file = this.#file;
    this.#file = null;
    if (!file) return;
    try {
      file.unlockSync();
    } catch {
      // closing releases it too
    }
    file.close();
  }
}

/** True while some process holds the daemon lock of `paths`. */
export function daemonLockHeld(paths: McpPaths): boolean {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(paths.lock, { read: true, write: true });
  } catch {
    return false; // no lock file: no daemon ever ran here
  }
  try {
    if (!file.tryLockSync(true)) return true;
    file.unlockSync();
    return false;
  } finally {
    file.close();
  }
}
