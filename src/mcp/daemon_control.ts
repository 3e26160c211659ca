/**
 * `mcp status`, `mcp stop` and `mcp token`: looking at and stopping the MCP daemon of a
 * configuration directory, from another process.
 *
 * A daemon runs when `mcp/daemon.lock` is held; `daemon.json` says where (the daemon writes it
 * under the lock). `status` also asks the daemon itself (`GET /status` with the token) for its
 * live numbers. `stop` signals the recorded PID only while the lock is held and its command
 * line is tachikoma's `mcp --http`, then waits for the lock to be freed (SIGKILL after a grace).
 *
 * @module
 */
import { type Clock, systemClock } from "../lib/clock.ts";
import { ConflictError, errorMessage } from "../lib/errors.ts";
import { hostProcesses, type ProcessInspector } from "../lib/processes.ts";
import { readTokenFile } from "../lib/private_files.ts";
import { quote as shellQuote } from "../lib/shell.ts";
import { formatHostPort } from "../proxy/address.ts";
import {
  daemonLockHeld,
  ensureMcpToken,
  type McpPaths,
  type McpRuntime,
  readMcpRuntime,
} from "./daemon_files.ts";

/** What `mcp status` reports. */
export interface McpDaemonStatus {
  /** A daemon holds the lock of this directory. */
  running: boolean;
  /** It answered `GET /status` with the token. */
  answering: boolean;
  pid: number | null;
  url: string | null;
  started_at: string | null;
  version: string | null;
  log: string;
  token_file: string;
  /** The daemon's live document (sessions, calls, requests, reaper), when it answered. */
  live: Record<string, unknown> | null;
  /** Why it is not running or not answering. */
  reason?: string;
}

/** The address to reach a daemon listening on `host` (a wildcard is reached on loopback). */
function reachableHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}

/** Asks a running daemon for its live document. */
async function probe(
  runtime: McpRuntime,
  token: string,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  const scheme = runtime.tls ? "https" : "http";
  const url = `${scheme}://${formatHostPort(reachableHost(runtime.host), runtime.port)}/status`;
  let client: Deno.HttpClient | undefined;
  if (runtime.tls && runtime.tls_cert) {
    client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(runtime.tls_cert)] });
  }
  try {
    const response = await fetch(url, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
      client,
    });
    if (!response.ok) {
      await response.body?.cancel();
      throw new Error(`it answered ${response.status}`);
    }
    return await response.json() as Record<string, unknown>;
  } finally {
    client?.close();
  }
}

/** The state of the daemon of `paths` (never throws for a daemon that is down). */
export async function daemonStatus(
  paths: McpPaths,
  options: { timeoutMs?: number } = {},
): Promise<McpDaemonStatus> {
  const runtime = await readMcpRuntime(paths);
  const running = daemonLockHeld(paths);
  const base = {
    running,
    answering: false,
    pid: running ? runtime?.pid ?? null : null,
    url: running ? runtime?.url ?? null : null,
    started_at: running ? runtime?.started_at ?? null : null,
    version: running ? runtime?.version ?? null : null,
    log: paths.log,
    token_file: paths.token,
    live: null,
  };
  if (!running) return { ...base, reason: "no daemon runs for this configuration directory" };
  if (!runtime) return { ...base, reason: "the running daemon has not recorded itself yet" };
  const token = await readTokenFile(paths.token);
  if (!token) return { ...base, reason: `no token in ${paths.token}` };
  try {
    const live = await probe(runtime, token, options.timeoutMs ?? 3000);
    return { ...base, answering: true, live };
  } catch (error) {
    return { ...base, reason: `it does not answer at ${runtime.url}: ${errorMessage(error)}` };
  }
}

/** The outcome of `mcp stop`. */
export interface McpStopResult {
  outcome: "stopped" | "not_running";
  pid: number | null;
  message: string;
}

/** True when a command line is tachikoma's MCP daemon (`… mcp … --http …`). */
export function isMcpDaemonCommandLine(commandLine: string): boolean {
  return /(^|\s)mcp(\s.*)?\s--http(\s|=|$)/.test(commandLine);
}

/** Polls until the daemon lock of `paths` is free; false when still held after `ms`. */
async function waitUnlocked(
  paths: McpPaths,
  ms: number,
  poll: { clock: Clock; signal?: AbortSignal },
): Promise<boolean> {
  const { clock, signal } = poll;
  const deadline = clock.now() + ms;
  let wait = 20;
  while (clock.now() < deadline) {
    if (!daemonLockHeld(paths)) return true;
    await clock.sleep(wait, signal);
    wait = Math.min(wait * 2, 200);
  }
  return !daemonLockHeld(paths);
}

/** Stops the daemon of `paths` (see the module doc). */
export async function stopDaemon(
  paths: McpPaths,
  options: {
    processes?: ProcessInspector;
    clock?: Clock;
    graceMs?: number;
    signal?: AbortSignal;
  } = {},
): Promise<McpStopResult> {
  const processes = options.processes ?? hostProcesses;
  const clock = options.clock ?? systemClock;
  if (!daemonLockHeld(paths)) {
    return { outcome: "not_running", pid: null, message: "no MCP daemon is running" };
  }
  const runtime = await readMcpRuntime(paths);
  if (!runtime) {
    throw new ConflictError(
      `an MCP daemon holds ${paths.lock} but has not recorded its PID in ${paths.runtime}`,
      { hint: `find it with \`fuser ${shellQuote(paths.lock)}\`` },
    );
  }
  const { pid } = runtime;
  const cmdline = await processes.commandLine(pid);
  if (cmdline === null || !isMcpDaemonCommandLine(cmdline)) {
    throw new ConflictError(
      `${paths.runtime} names PID ${pid}, which is not a tachikoma MCP daemon (${
        cmdline ? `it runs: ${cmdline.slice(0, 120)}` : "it is gone or unreadable"
      }); not signalled`,
      { hint: `find the daemon holding the lock with \`fuser ${shellQuote(paths.lock)}\`` },
    );
  }
  processes.kill(pid, "SIGTERM");
  if (!(await waitUnlocked(paths, options.graceMs ?? 10_000, { clock, signal: options.signal }))) {
    processes.kill(pid, "SIGKILL");
    await waitUnlocked(paths, 3000, { clock, signal: options.signal });
  }
  return { outcome: "stopped", pid, message: `stopped the MCP daemon (PID ${pid})` };
}

/** What `mcp token` prints. */
export interface McpTokenInfo {
  token: string;
  token_file: string;
  url: string;
  /** The command that adds the daemon to Claude Code. */
  claude_command: string;
}

/** The token (made when there is none) and how a client uses it. */
export async function tokenInfo(paths: McpPaths, fallback: string): Promise<McpTokenInfo> {
  const token = await ensureMcpToken(paths);
  const runtime = daemonLockHeld(paths) ? await readMcpRuntime(paths) : null;
  const url = runtime?.url ?? fallback;
  const claude = [
    "claude mcp add --transport http tachikoma",
    shellQuote(url),
    "--header",
    shellQuote(`Authorization: Bearer ${token}`),
  ].join(" ");
  return { token, token_file: paths.token, url, claude_command: claude };
}
