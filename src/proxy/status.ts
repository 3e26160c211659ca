/**
 * `proxy status`: whether the proxy recorded in a tachikoma directory (or expected at an
 * address) runs and answers `/health` as tachikoma's.
 *
 * @module
 */
import { httpUrl } from "./address.ts";
import { probeHealth } from "./health.ts";
import { hostProcesses, isProxyCommandLine } from "./process_info.ts";
import { type DaemonPaths, readPid, readRuntime } from "./runtime_files.ts";

/** What `proxy status` reports. */
export interface ProxyStatus {
  running: boolean;
  healthy: boolean;
  url: string;
  pid: number | null;
  credential_source: string | null;
  version: string | null;
  started_at: string | null;
  log: string;
  /** Why it is not healthy. */
  reason?: string;
}

/** Status of the proxy recorded in `paths`, or of the one expected at `bind:port`. */
export async function proxyStatus(
  paths: DaemonPaths,
  expected: { bind: string; port: number } | null,
): Promise<ProxyStatus> {
  const runtime = await readRuntime(paths);
  const where = runtime ?? expected;
  const base = {
    log: paths.log,
    url: where ? httpUrl(where.bind, where.port) : "",
    started_at: runtime?.started_at ?? null,
  };
  if (!where) {
    return {
      ...base,
      running: false,
      healthy: false,
      pid: null,
      credential_source: null,
      version: null,
      reason: "no proxy is recorded and no address is configured",
    };
  }
  const probe = await probeHealth(where.bind, where.port);
  if (probe.ok) {
    return {
      ...base,
      running: true,
      healthy: true,
      pid: probe.health.pid,
      credential_source: probe.health.credential_source,
      version: probe.health.version,
    };
  }
  const { pid } = await readPid(paths);
  const alive = pid !== null && (await hostProcesses.alive(pid)) &&
    isProxyCommandLine((await hostProcesses.commandLine(pid)) ?? "");
  return {
    ...base,
    running: alive,
    healthy: false,
    pid: alive ? pid : null,
    credential_source: null,
    version: null,
    reason: probe.reason,
  };
}
