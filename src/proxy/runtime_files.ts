/**
 * The background proxy's files in the tachikoma directory: `proxy.pid` (the decimal PID, as
 * tachikoma wrote it), `proxy.json` (PID, URL, start time, version, log path, and the
 * fingerprint of what it serves: fingerprint.ts), `proxy.lock`
 * and `logs/proxy.log` — all 0600, written atomically — and the command line that runs this
 * tachikoma again (`selfCommand`).
 *
 * @module
 */
import { prepareLogFile } from "../lib/log_file.ts";
import { writePrivateFile } from "../lib/private_files.ts";
import { VERSION } from "../lib/version.ts";
import { httpUrl } from "./address.ts";
import type { ServesFingerprint } from "./fingerprint.ts";

/** The proxy's files in a tachikoma directory. */
export interface DaemonPaths {
  dir: string;
  pid: string;
  runtime: string;
  lock: string;
  log: string;
}

/** The proxy's files under `stateDir`. */
export function daemonPaths(stateDir: string): DaemonPaths {
  return {
    dir: stateDir,
    pid: `${stateDir}/proxy.pid`,
    runtime: `${stateDir}/proxy.json`,
    lock: `${stateDir}/proxy.lock`,
    log: `${stateDir}/logs/proxy.log`,
  };
}

/** What a running proxy records about itself (`proxy.json`). */
export interface ProxyRuntime {
  pid: number;
  url: string;
  bind: string;
  port: number;
  started_at: string;
  version: string;
  log: string;
  /** The fingerprint of what it serves (absent: written by an older tachikoma). */
  fingerprint?: string;
  /** Per-field hashes behind the fingerprint. */
  fields?: Record<string, string>;
}

/** Environment variable marking the detached child (it must not take the start lock). */
export const CHILD_ENV = "TACHIKOMA_PROXY_CHILD";

/** Records a running proxy (PID file + runtime file, both 0600, written atomically). */
export async function writeRuntime(paths: DaemonPaths, runtime: ProxyRuntime): Promise<void> {
  await Deno.mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await writePrivateFile(paths.runtime, JSON.stringify(runtime, null, 2) + "\n");
  await writePrivateFile(paths.pid, String(runtime.pid));
}

/** Removes the PID and runtime files when they still name `pid` (or unconditionally). */
export async function removeRuntime(paths: DaemonPaths, pid?: number): Promise<void> {
  if (pid !== undefined) {
    const current = await readPid(paths);
    if (current.pid !== null && current.pid !== pid) return;
  }
  for (const p of [paths.pid, paths.runtime]) {
    try {
      await Deno.remove(p);
    } catch {
      // absent
    }
  }
}

/** The PID file's content: a PID, nothing, or garbage. */
export async function readPid(
  paths: DaemonPaths,
): Promise<{ pid: number | null; invalid?: string }> {
  let text: string;
  try {
    text = (await Deno.readTextFile(paths.pid)).trim();
  } catch {
    return { pid: null };
  }
  if (!/^\d{1,10}$/.test(text) || Number(text) <= 0) {
    return { pid: null, invalid: text.slice(0, 40) };
  }
  return { pid: Number(text) };
}

/** The runtime file, when present and readable. */
export async function readRuntime(paths: DaemonPaths): Promise<ProxyRuntime | null> {
  try {
    const data = JSON.parse(await Deno.readTextFile(paths.runtime));
    if (typeof data?.pid === "number" && typeof data?.bind === "string") return data;
  } catch {
    // absent or broken
  }
  return null;
}

/** Prepares the log file: directory 0700, file 0600, rotated past 10 MiB. */
export function prepareLog(paths: DaemonPaths, maxBytes = 10 * 1024 * 1024): Promise<void> {
  return prepareLogFile(paths.log, maxBytes);
}

/** How to run `tachikoma proxy start …` as a separate process. */
export interface LaunchCommand {
  cmd: string;
  args: string[];
}

/**
 * The command line that runs this tachikoma with `args`: the compiled binary itself, or deno
 * running this checkout's main.ts (with its deno.json and lock file) when run from source.
 */
export function selfCommand(args: string[]): LaunchCommand {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  if (!/^deno(\.exe)?$/.test(base)) return { cmd: exe, args };
  const main = new URL("../../main.ts", import.meta.url).pathname;
  const config = new URL("../../deno.json", import.meta.url).pathname;
  return {
    cmd: exe,
    args: [
      "run",
      "--allow-all",
      "--no-prompt",
      "--quiet",
      "--frozen",
      `--config=${config}`,
      main,
      ...args,
    ],
  };
}

/** The runtime record of the proxy this process is about to serve as. */
export function runtimeFor(
  paths: DaemonPaths,
  where: { bind: string; port: number },
  serves: ServesFingerprint,
): ProxyRuntime {
  const { bind, port } = where;
  return {
    pid: Deno.pid,
    url: httpUrl(bind, port),
    bind,
    port,
    started_at: new Date().toISOString(),
    version: VERSION,
    log: paths.log,
    fingerprint: serves.fingerprint,
    fields: serves.fields,
  };
}
