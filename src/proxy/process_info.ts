/**
 * What the proxy's daemon control asks about another process besides `src/lib/processes.ts`:
 * which configuration directory it runs with, and whether its command line is tachikoma's
 * `proxy start`.
 *
 * @module
 */
import { configDir } from "../config/paths.ts";
import type { ProcessInspector } from "../lib/processes.ts";
import { canonicalDir } from "./fingerprint.ts";

export { hostProcesses, type ProcessInspector } from "../lib/processes.ts";

/** The configuration directory a tachikoma process runs with (a real path), or null. */
export async function proxyConfigDir(
  pid: number,
  processes: ProcessInspector,
): Promise<string | null> {
  const env = await processes.environment?.(pid);
  if (!env) return null;
  try {
    return canonicalDir(configDir((name) => env[name]));
  } catch {
    return null;
  }
}

/**
 * True when a command line is tachikoma's proxy: the tachikoma binary (or deno running
 * tachikoma's main.ts) with the arguments `proxy start`.
 */
export function isProxyCommandLine(commandLine: string): boolean {
  return /(^|[\s/])(tachikoma|main\.ts)(\s.*)?\sproxy\s+start(\s|$)/.test(commandLine);
}
