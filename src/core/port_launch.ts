/**
 * Starts the relay of a port forward as a detached `tachikoma port serve` process (this
 * binary, or deno running this checkout), so the forward outlives the command or MCP call that
 * made it.
 *
 * @module
 */
import { selfCommand } from "../proxy/runtime_files.ts";

/** Launches `tachikoma <args>` detached; returns its pid and a promise of its exit code. */
export function launchRelay(args: string[]): { pid: number; exited: Promise<number> } {
  const launch = selfCommand(args);
  const child = new Deno.Command(launch.cmd, {
    args: launch.args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
    detached: true,
  }).spawn();
  const exited = child.status.then((s) => s.code);
  child.unref();
  return { pid: child.pid, exited };
}
