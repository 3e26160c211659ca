/**
 * Running the proxy in the background and controlling it (files: runtime_files.ts).
 * `proxy.lock` serialises every start and stop, so two spawns never start two proxies. The PID
 * file is written by the proxy itself after it has bound its address (tachikoma wrote it
 * before binding, so a failed start left a wrong PID), and removed when it exits.
 *
 * A proxy counts as running only when `/health` answers as a tachikoma proxy; `stop` signals a
 * PID only after checking its command line is tachikoma's `proxy start` and, when the health
 * endpoint answers, that it reports the same PID.
 *
 * A start that finds a healthy proxy compares what it serves (`proxy.json`'s fingerprint,
 * fingerprint.ts) with what this configuration needs: the same → reused; different → stopped
 * and started again (under the lock); a proxy this configuration directory did not start (its
 * PID is not the one in our `proxy.json`) is never stopped: that is a ConflictError naming its
 * PID and, where the host tells (Linux), its configuration directory.
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { ConflictError, RuntimeError, UnreachableError } from "../lib/errors.ts";
import { waitGone } from "../lib/processes.ts";
import { withFileLock } from "../state/lock.ts";
import { formatHostPort, httpUrl } from "./address.ts";
import {
  CHILD_ENV,
  type DaemonPaths,
  type LaunchCommand,
  prepareLog,
  readPid,
  readRuntime,
  removeRuntime,
  selfCommand,
} from "./runtime_files.ts";
import { canonicalDir, changedFields, type ServesFingerprint } from "./fingerprint.ts";
import { type HealthProbe, probeHealth } from "./health.ts";
import {
  hostProcesses,
  isProxyCommandLine,
  type ProcessInspector,
  proxyConfigDir,
} from "./process_info.ts";
import type { HealthDocument } from "./server.ts";

export { type ProxyStatus, proxyStatus } from "./status.ts";
export {
  CHILD_ENV,
  type DaemonPaths,
  daemonPaths,
  type LaunchCommand,
  prepareLog,
  type ProxyRuntime,
  readPid,
  readRuntime,
  removeRuntime,
  runtimeFor,
  selfCommand,
  writeRuntime,
} from "./runtime_files.ts";

/** Options of {@link startDetached}. */
export interface StartDetachedOptions {
  paths: DaemonPaths;
  bind: string;
  port: number;
  /** Working directory of the proxy (its configuration is loaded there). */
  cwd?: string;
  /**
   * What the proxy must serve (its fingerprint). A healthy proxy of this directory serving
   * something else is restarted; without it, any healthy proxy of this directory is reused.
   */
  serves?: ServesFingerprint;
  /** Extra environment for the proxy. */
  env?: Record<string, string>;
  /** How to run tachikoma (default: this one). */
  launch?: (args: string[]) => LaunchCommand;
  /** How long the proxy may take to become healthy. */
  timeoutMs?: number;
  clock?: Clock;
  signal?: AbortSignal;
  processes?: ProcessInspector;
}

/** The outcome of a start. */
export interface StartResult {
  pid: number;
  url: string;
  /** True when a healthy proxy was already running there (nothing was started). */
  already_running: boolean;
  /**
   * When a running proxy was replaced because it served another configuration: the fields that
   * differed (`upstream`, `credential_command`…); else null.
   */
  restarted: string[] | null;
  credential_source: string;
}

async function lastLogLines(path: string, n = 5): Promise<string> {
  try {
    const text = await Deno.readTextFile(path);
    return text.trimEnd().split("\n").slice(-n).join("\n");
  } catch {
    return "";
  }
}

/** Tells whether a healthy tachikoma proxy answers at `bind:port`; throws if a stranger does. */
async function existingProxy(bind: string, port: number): Promise<HealthDocument | null> {
  const probe: HealthProbe = await probeHealth(bind, port);
  if (probe.ok) return probe.health;
  if (probe.foreign) {
    throw new ConflictError(
      `${formatHostPort(bind, port)} is in use and is not a tachikoma proxy: ${probe.reason}`,
      { hint: "stop that program or set credential_proxy_port" },
    );
  }
  return null;
}

/**
 * Makes sure a healthy proxy serving `serves` runs at `bind:port`, starting one in the
 * background when none does and restarting ours when it serves another configuration. Holds
 * `proxy.lock` throughout, so concurrent callers never start two. A proxy this directory did
 * not start, and one of ours recorded at another address, are not touched (ConflictError):
 * sandboxes may depend on them.
 */
export function startDetached(options: StartDetachedOptions): Promise<StartResult> {
  const { paths, bind, port } = options;
  const clock = options.clock ?? systemClock;
  const processes = options.processes ?? hostProcesses;
  const url = httpUrl(bind, port);
  return withFileLock(paths.lock, async () => {
    let restarted: string[] | null = null;
    const running = await existingProxy(bind, port);
    if (running) {
      const runtime = await readRuntime(paths);
      if (!runtime || runtime.pid !== running.pid) {
        throw await foreignProxy({ pid: running.pid, url, ourDir: paths.dir, processes });
      }
      if (!options.serves || runtime.fingerprint === options.serves.fingerprint) {
        return {
          pid: running.pid,
          url,
          already_running: true,
          restarted: null,
          credential_source: running.credential_source,
        };
      }
      restarted = changedFields(runtime.fields, options.serves.fields);
      const stopped = await stopRecorded(paths, { clock, processes });
      if (stopped.outcome !== "stopped") {
        throw new ConflictError(
          `the credential proxy at ${url} serves another configuration (${
            restarted.join(", ")
          }) and could not be stopped: ${stopped.message}`,
          { hint: "stop it with `tachikoma proxy stop`" },
        );
      }
    }
    const recorded = await readRuntime(paths);
    if (recorded && (recorded.bind !== bind || recorded.port !== port)) {
      const other = await probeHealth(recorded.bind, recorded.port);
      if (other.ok && other.health.pid === recorded.pid) {
        throw new ConflictError(
          `a tachikoma proxy already runs at ${recorded.url} (PID ${recorded.pid}); ` +
            `this configuration wants ${url}`,
          { hint: "stop it with `tachikoma proxy stop`, or use one credential_proxy_bind/port" },
        );
      }
    }
    // A recorded proxy that does not answer: ours and hung → stop it; not ours → forget it.
    if (recorded || (await readPid(paths)).pid !== null) {
      await stopRecorded(paths, { clock, processes, quietIfGone: true });
    }
    await prepareLog(paths);
    const launch = (options.launch ?? selfCommand)([
      "proxy",
      "start",
      "--bind",
      bind,
      "--port",
      String(port),
    ]);
    // sh execs the proxy (same PID) with stderr appended to the 0600 log file.
    const child = new Deno.Command("/bin/sh", {
      args: [
        "-c",
        'exec "$@" </dev/null >/dev/null 2>>"$TACHIKOMA_PROXY_LOG"',
        "sh",
        launch.cmd,
        ...launch.args,
      ],
      cwd: options.cwd,
      env: { ...options.env, [CHILD_ENV]: "1", TACHIKOMA_PROXY_LOG: paths.log },
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    let exited: Deno.CommandStatus | null = null;
    child.status.then((s) => exited = s);
    child.unref();
    const deadline = clock.now() + (options.timeoutMs ?? 20_000);
    let wait = 25;
    for (;;) {
      options.signal?.throwIfAborted();
      const probe = await probeHealth(bind, port, 1000);
      // Healthy and recorded (the proxy writes proxy.json right after binding): callers that
      // come next compare against that record.
      if (probe.ok && probe.health.pid === child.pid && (await readPid(paths)).pid === child.pid) {
        return {
          pid: child.pid,
          url,
          already_running: false,
          restarted,
          credential_source: probe.health.credential_source,
        };
      }
      if (exited !== null) {
        const tail = await lastLogLines(paths.log);
        throw new RuntimeError(
          "proxy_start_failed",
          `the proxy exited (code ${
            (exited as Deno.CommandStatus).code
          }) before answering on ${url}` +
            (tail ? `:\n${tail}` : ""),
          { hint: `see ${paths.log}` },
        );
      }
      if (clock.now() >= deadline) {
        processes.kill(child.pid, "SIGTERM");
        throw new UnreachableError(`the proxy did not become healthy on ${url} in time`, {
          hint: `see ${paths.log}`,
        });
      }
      await clock.sleep(wait, options.signal);
      wait = Math.min(wait * 2, 200);
    }
  }, { signal: options.signal, clock });
}

/** The error for a healthy proxy at `url` that this configuration directory did not start. */
async function foreignProxy(found: {
  pid: number;
  url: string;
  ourDir: string;
  processes: ProcessInspector;
}): Promise<ConflictError> {
  const { pid, url, ourDir, processes } = found;
  const theirs = await proxyConfigDir(pid, processes);
  const ours = canonicalDir(ourDir);
  const whose = theirs === null
    ? "not started from this configuration directory"
    : theirs === ours
    ? "not recorded in this configuration directory's proxy.json"
    : `started from the configuration directory ${theirs}`;
  return new ConflictError(
    `a tachikoma proxy (PID ${pid}) at ${url} is ${whose}; this configuration (${ours}) ` +
      "needs its own, serving its own tokens, upstream and credentials",
    {
      hint: theirs !== null && theirs !== ours
        ? `stop it (TACHIKOMA_CONFIG_DIR='${theirs}' tachikoma proxy stop) or give this ` +
          "configuration another credential_proxy_port"
        : "stop it (`tachikoma proxy stop`, or kill that PID) or give this configuration " +
          "another credential_proxy_port",
    },
  );
}

/** The outcome of a stop. */
export interface StopResult {
  /** `stopped`: signalled and gone; `not_running`: nothing recorded or already gone;
   * `stale`: the PID file named a process that is not our proxy (file removed, not signalled). */
  outcome: "stopped" | "not_running" | "stale";
  pid: number | null;
  message: string;
}

interface StopOptions {
  clock: Clock;
  processes: ProcessInspector;
  /** Forget a dead or foreign PID without complaint. */
  quietIfGone?: boolean;
  /** How long to wait for SIGTERM before SIGKILL. */
  graceMs?: number;
}

async function stopRecorded(paths: DaemonPaths, options: StopOptions): Promise<StopResult> {
  const { processes, clock } = options;
  const { pid, invalid } = await readPid(paths);
  const runtime = await readRuntime(paths);
  if (pid === null) {
    await removeRuntime(paths);
    if (invalid !== undefined) {
      return { outcome: "stale", pid: null, message: `removed an invalid PID file ('${invalid}')` };
    }
    return { outcome: "not_running", pid: null, message: "no proxy is recorded as running" };
  }
  if (!(await processes.alive(pid))) {
    await removeRuntime(paths);
    return {
      outcome: "not_running",
      pid,
      message: `proxy process ${pid} was not running (stale PID file removed)`,
    };
  }
  const cmdline = await processes.commandLine(pid);
  if (cmdline === null || !isProxyCommandLine(cmdline)) {
    await removeRuntime(paths);
    const what = cmdline ? `it runs: ${cmdline.slice(0, 120)}` : "its command line is unreadable";
    return {
      outcome: "stale",
      pid,
      message:
        `PID ${pid} is not a tachikoma proxy (${what}); not signalled, stale PID file removed`,
    };
  }
  if (runtime && runtime.pid === pid) {
    const probe = await probeHealth(runtime.bind, runtime.port, 1000);
    if (probe.ok && probe.health.pid !== pid) {
      throw new ConflictError(
        `the PID file names ${pid} but the proxy at ${runtime.url} reports PID ${probe.health.pid}`,
        { hint: "stop the right process by hand, then remove the PID file" },
      );
    }
  }
  processes.kill(pid, "SIGTERM");
  if (!(await waitGone(pid, options.graceMs ?? 5000, { processes, clock }))) {
    processes.kill(pid, "SIGKILL");
    await waitGone(pid, 2000, { processes, clock });
  }
  await removeRuntime(paths, pid);
  return { outcome: "stopped", pid, message: `stopped the credential proxy (PID ${pid})` };
}

/**
 * Stops a proxy that answers at `bind:port` but is not the recorded one, after checking that
 * the PID its `/health` reports runs tachikoma's `proxy start`.
 */
async function stopAnswering(
  bind: string,
  port: number,
  options: StopOptions,
): Promise<StopResult | null> {
  const probe = await probeHealth(bind, port, 1000);
  if (!probe.ok) return null;
  const pid = probe.health.pid;
  const cmdline = await options.processes.commandLine(pid);
  if (cmdline === null || !isProxyCommandLine(cmdline)) {
    throw new ConflictError(
      `the proxy at ${httpUrl(bind, port)} reports PID ${pid}, which is not tachikoma's proxy ` +
        "here (another host or container?); not signalled",
    );
  }
  options.processes.kill(pid, "SIGTERM");
  if (!(await waitGone(pid, options.graceMs ?? 5000, options))) {
    options.processes.kill(pid, "SIGKILL");
    await waitGone(pid, 2000, options);
  }
  return { outcome: "stopped", pid, message: `stopped the credential proxy (PID ${pid})` };
}

/**
 * Stops the recorded proxy after verifying it is ours (under `proxy.lock`). When nothing
 * recorded was stopped and `expected` is given, a tachikoma proxy answering there is stopped
 * instead (verified the same way).
 */
export function stopProxy(
  paths: DaemonPaths,
  options: {
    clock?: Clock;
    processes?: ProcessInspector;
    signal?: AbortSignal;
    graceMs?: number;
    expected?: { bind: string; port: number };
  } = {},
): Promise<StopResult> {
  const clock = options.clock ?? systemClock;
  const stopOptions: StopOptions = {
    clock,
    processes: options.processes ?? hostProcesses,
    graceMs: options.graceMs,
  };
  return withFileLock(paths.lock, async () => {
    const recorded = await stopRecorded(paths, stopOptions);
    if (recorded.outcome === "stopped" || !options.expected) return recorded;
    const other = await stopAnswering(options.expected.bind, options.expected.port, stopOptions);
    if (!other) return recorded;
    return { ...other, message: `${recorded.message}; ${other.message}` };
  }, { signal: options.signal, clock });
}
