/**
 * Starting `tart run` detached (tart-contract.md §4.4, §8.3, §9).
 *
 * `tart run` never daemonises, so it is spawned with `Deno.Command({ detached: true })` (a new
 * session: it survives tachikoma exiting and Ctrl-C in the terminal), stdin from /dev/null, and
 * stdout+stderr appended to `<stateDir>/logs/tart-run-<name>.log` (truncated at each start).
 * `Deno.Command` cannot hand a file to a child, so `/bin/sh` opens the log and `exec`s tart in
 * the same process (same pid). The child is unref'd; its exit status is still observed, so an
 * early exit (already running, missing VM, system limit…) is reported at once with its exit
 * code and the log's last lines instead of surfacing as a boot timeout.
 *
 * @module
 */

/** A started `tart run`. */
export interface RunHandle {
  readonly pid: number;
  /** The log file holding its stdout and stderr. */
  readonly logPath: string;
  /** Its exit code (128+n when killed by signal n), or null while it runs. */
  exitCode(): number | null;
  /** Resolves with the exit code when it exits. */
  readonly exited: Promise<number>;
}

/** What {@link RunLauncher.launch} starts: `binary args…`, its log, its environment. */
export interface RunLaunch {
  binary: string;
  args: string[];
  /** The log file that gets its stdout and stderr. */
  logPath: string;
  env?: Record<string, string>;
}

/** Starts `tart run` processes. */
export interface RunLauncher {
  /** Spawns `binary args…` detached, output to `logPath`. */
  launch(request: RunLaunch): Promise<RunHandle>;
}

const DARWIN = Deno.build.os === "darwin";
const SIGNALS: Partial<Record<Deno.Signal, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGUSR1: DARWIN ? 30 : 10,
  SIGSEGV: 11,
  SIGUSR2: DARWIN ? 31 : 12,
  SIGTERM: 15,
};

/** The shell snippet that redirects to the log and becomes tart (`$1` = log, rest = argv). */
export const REDIRECT_SCRIPT = 'log=$1; shift; exec "$@" >>"$log" 2>&1';

/** The real launcher. */
export class DetachedRunLauncher implements RunLauncher {
  async launch(request: RunLaunch): Promise<RunHandle> {
    const { binary, args, logPath, env } = request;
    const dir = logPath.slice(0, logPath.lastIndexOf("/"));
    if (dir) await Deno.mkdir(dir, { recursive: true });
    // Truncate (tachikoma did too) and keep the log private: it can hold guest output.
    await Deno.writeFile(logPath, new Uint8Array(), { mode: 0o600 });
    await Deno.chmod(logPath, 0o600).catch(() => {});
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", REDIRECT_SCRIPT, "tachikoma-tart-run", logPath, binary, ...args],
      env,
      detached: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    child.unref();
    let code: number | null = null;
    const exited = child.status.then((s) => {
      code = s.signal ? 128 + (SIGNALS[s.signal] ?? 0) : s.code;
      return code;
    });
    return { pid: child.pid, logPath, exitCode: () => code, exited };
  }
}

/** The last `lines` non-empty lines of a log file ("" when unreadable). */
export async function logTail(path: string, lines = 12): Promise<string> {
  let text: string;
  try {
    const file = await Deno.open(path, { read: true });
    try {
      const size = (await file.stat()).size;
      const want = Math.min(size, 16 * 1024);
      await file.seek(size - want, Deno.SeekMode.Start);
      const buf = new Uint8Array(want);
      let read = 0;
      while (read < want) {
        const n = await file.read(buf.subarray(read));
        if (n === null) break;
        read += n;
      }
      text = new TextDecoder().decode(buf.subarray(0, read));
    } finally {
      file.close();
    }
  } catch {
    return "";
  }
  // Drop ANSI sequences (pull progress) and blank lines.
  // deno-lint-ignore no-control-regex
  const clean = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, "");
  return clean.split("\n").map((l) => l.trimEnd()).filter((l) => l.trim() !== "").slice(-lines)
    .join("\n");
}

/** The per-VM log path: `<stateDir>/logs/tart-run-<name>.log`. */
export function runLogPath(stateDir: string, name: string): string {
  return `${stateDir}/logs/tart-run-${name.replaceAll("/", "_")}.log`;
}
