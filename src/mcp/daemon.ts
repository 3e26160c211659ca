/**
 * `tachikoma mcp --http`: the MCP daemon. One per configuration directory (`mcp/daemon.lock`,
 * held for its whole life); several clients at once, each in its own MCP session, all served
 * by the same tools and context as stdio. It logs on stderr and in `logs/mcp.log`
 * (timestamped), runs the reaper (`reaper.ts`) and closes idle sessions, and stops on SIGTERM
 * or Ctrl-C: running calls are cancelled and get a moment to clean up, sessions are closed,
 * open backends released, its record removed and the lock freed.
 *
 * @module
 */
import { VERSION } from "../lib/version.ts";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { prepareLogFile, timestampedSink } from "../lib/log_file.ts";
import { formatDuration } from "../lib/duration.ts";
import type { BackendName } from "../config/defaults.ts";
import { silentReporter } from "../lib/progress.ts";
import { SandboxActivity } from "./activity.ts";
import type { McpContext } from "./context.ts";
import {
  DaemonLock,
  ensureMcpToken,
  type McpPaths,
  mcpPaths,
  removeMcpRuntime,
  writeMcpRuntime,
} from "./daemon_files.ts";
import { EventLog } from "./event_store.ts";
import { SessionRegistry } from "./http_sessions.ts";
import { startHttpServer } from "./http_server.ts";
import type { ListenPlan } from "./listen.ts";
import { Reaper, type ReaperPolicy } from "./reaper.ts";
import { CallTracker } from "./tooling.ts";

/** How long running calls get to finish once the daemon stops. */
const SHUTDOWN_GRACE_MS = 5000;

/** What the daemon tells its starter once it listens. */
export interface DaemonStarted {
  status: "listening";
  url: string;
  pid: number;
  token_file: string;
  log: string;
}

/** Options of {@link runHttpDaemon}. */
export interface DaemonOptions {
  /** The tools' dependencies (the CLI wires the production ones). */
  context: McpContext;
  /** The tachikoma configuration/state directory. */
  stateDir: string;
  /** Where to listen (checked by `planListen`). */
  plan: ListenPlan;
  /** When the reaper acts. */
  reaper: ReaperPolicy;
  /** Stops the daemon when aborted (Ctrl-C). */
  signal?: AbortSignal;
  /** Called once the daemon listens (the command prints it). */
  onListening?(started: DaemonStarted): void;
}

/** Runs the daemon until it is stopped. A second daemon for the directory is a ConflictError. */
export async function runHttpDaemon(options: DaemonOptions): Promise<void> {
  const paths: McpPaths = mcpPaths(options.stateDir);
  const lock = await DaemonLock.acquire(paths);
  let restoreLog = () => {};
  try {
    const token = await ensureMcpToken(paths);
    await prepareLogFile(paths.log);
    const file = await Deno.open(paths.log, { append: true, mode: 0o600 });
    const tee = timestampedSink(file);
    log.setSink(tee.sink);
    restoreLog = () => {
      tee.flush();
      log.setSink(undefined);
      file.close();
    };
    await serve(options, paths, token);
  } finally {
    restoreLog();
    lock.release();
  }
}

async function serve(options: DaemonOptions, paths: McpPaths, token: string): Promise<void> {
  const ctx = options.context;
  const tracker = new CallTracker();
  const activity = new SandboxActivity();
  const events = new EventLog();
  const sessions = new SessionRegistry({ context: ctx, tracker, activity, events });
  const reaper = new Reaper({
    clock: ctx.clock,
    activity,
    service: (backend?: BackendName) =>
      ctx.openService({
        cwd: ctx.cwd,
        backend,
        reporter: silentReporter,
        signal: tracker.signal,
      }),
  }, options.reaper);
  const startedAt = new Date(ctx.clock.now()).toISOString();
  const policy = options.reaper;
  const server = startHttpServer({
    plan: options.plan,
    token,
    sessions,
    status: () => ({
      pid: Deno.pid,
      url: server.url,
      version: VERSION,
      started_at: startedAt,
      sessions: sessions.size,
      sessions_opened: sessions.opened,
      calls_running: tracker.size,
      in_use: activity.names,
      requests: { ...server.counters },
      events: { held: events.size, bytes: events.bytes },
      memory: memory(),
      reaper: {
        enabled: reaper.enabled,
        idle_stop_after: formatDuration(policy.idleStopMs),
        hard_destroy_after: formatDuration(policy.hardDestroyMs),
        reap_interval: formatDuration(policy.intervalMs),
        ...reaper.stats,
      },
    }),
  });
  const stopping = new AbortController();
  try {
    await writeMcpRuntime(paths, {
      pid: Deno.pid,
      url: server.url,
      host: options.plan.host,
      port: server.port,
      tls: options.plan.tls !== null,
      tls_cert: options.plan.tls?.certPath ?? null,
      started_at: startedAt,
      version: VERSION,
      log: paths.log,
    });
    log.info(
      `mcp: listening on ${server.url} (PID ${Deno.pid}, config ${paths.dir}); clients need ` +
        `the token in ${paths.token}; reaper ${
          reaper.enabled
            ? `on (idle_stop_after ${formatDuration(policy.idleStopMs)}, hard_destroy_after ${
              formatDuration(policy.hardDestroyMs)
            })`
            : "off"
        }`,
    );
    options.onListening?.({
      status: "listening",
      url: server.url,
      pid: Deno.pid,
      token_file: paths.token,
      log: paths.log,
    });
    const housekeeping = reaper.run(stopping.signal, () => sessions.sweep());
    const why = await stopReason(options.signal, server.finished);
    log.info(`mcp: stopping (${why}); ${tracker.size} call(s) running`);
    stopping.abort();
    await tracker.stop(SHUTDOWN_GRACE_MS, (ms, signal) => ctx.clock.sleep(ms, signal));
    await sessions.closeAll();
    await server.shutdown();
    await housekeeping;
  } finally {
    stopping.abort();
    await ctx.close().catch((error) => log.debug(`mcp: closing: ${errorMessage(error)}`));
    await removeMcpRuntime(paths, Deno.pid);
  }
}

/** The daemon's memory in MiB (RSS and the JavaScript heap). */
function memory(): { rss_mib: number; heap_used_mib: number } {
  const m = Deno.memoryUsage();
  const mib = (n: number) => Math.round(n / 104857.6) / 10;
  return { rss_mib: mib(m.rss), heap_used_mib: mib(m.heapUsed) };
}

/** Resolves with why the daemon stops: SIGTERM, Ctrl-C, or the server ending by itself. */
function stopReason(signal: AbortSignal | undefined, finished: Promise<void>): Promise<string> {
  return new Promise((resolve) => {
    const onTerm = () => done("SIGTERM");
    try {
      Deno.addSignalListener("SIGTERM", onTerm);
    } catch {
      // no signal support: SIGTERM ends the process directly
    }
    const done = (why: string) => {
      try {
        Deno.removeSignalListener("SIGTERM", onTerm);
      } catch {
        // see above
      }
      resolve(why);
    };
    if (signal?.aborted) done("interrupted");
    signal?.addEventListener("abort", () => done("interrupted"), { once: true });
    finished.then(() => done("the server stopped"));
  });
}
