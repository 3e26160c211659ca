/**
 * Looking at another process before signalling it: is it alive (zombies count as gone), and
 * what is its command line (`/proc/<pid>/cmdline` on Linux, `ps -o command= -p` elsewhere) and
 * environment (Linux only: `/proc/<pid>/environ`, readable for our own processes).
 * Behind an interface so daemon control (the credential proxy, the MCP daemon) is testable.
 *
 * @module
 */
import type { Clock } from "./clock.ts";
import { defaultRunner } from "./process.ts";

/** What the daemon needs to know about processes. */
export interface ProcessInspector {
  /** True when `pid` exists and is not a zombie. */
  alive(pid: number): Promise<boolean>;
  /** The command line of `pid`, or null when it is gone or unreadable. */
  commandLine(pid: number): Promise<string | null>;
  /** Sends a signal; false when the process does not exist. */
  kill(pid: number, signal: Deno.Signal): boolean;
  /** The environment of `pid`, or null when the host does not tell. */
  environment?(pid: number): Promise<Record<string, string> | null>;
}

async function procState(pid: number): Promise<string | null> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    // pid (comm) STATE …; comm may contain spaces and parentheses
    const close = stat.lastIndexOf(")");
    return stat.slice(close + 2, close + 3);
  } catch {
    return null;
  }
}

/** The real processes of this host. */
export const hostProcesses: ProcessInspector = {
  async alive(pid) {
    if (Deno.build.os === "linux") {
      const state = await procState(pid);
      return state !== null && state !== "Z" && state !== "X";
    }
    const out = await defaultRunner.run("ps", ["-o", "stat=", "-p", String(pid)]);
    return out.code === 0 && out.stdout.trim() !== "" && !out.stdout.trim().startsWith("Z");
  },
  async commandLine(pid) {
    if (Deno.build.os === "linux") {
      try {
        const raw = await Deno.readTextFile(`/proc/${pid}/cmdline`);
        const argv = raw.split("\0").filter((a) => a.length > 0);
        return argv.length > 0 ? argv.join(" ") : null;
      } catch {
        return null;
      }
    }
    const out = await defaultRunner.run("ps", ["-o", "command=", "-p", String(pid)]);
    const text = out.stdout.trim();
    return out.code === 0 && text !== "" ? text : null;
  },
  kill(pid, signal) {
    try {
      Deno.kill(pid, signal);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  },
  async environment(pid) {
    if (Deno.build.os !== "linux") return null;
    try {
      const raw = await Deno.readTextFile(`/proc/${pid}/environ`);
      const env: Record<string, string> = {};
      for (const entry of raw.split("\0")) {
        const eq = entry.indexOf("=");
        if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
      }
      return env;
    } catch {
      return null;
    }
  },
};

/** What {@link waitGone} looks through: the process table and the clock it polls with. */
export interface WaitGoneDeps {
  /** Tells whether a process is alive. */
  processes: ProcessInspector;
  /** Clock the polling sleeps on. */
  clock: Clock;
}

/** Waits (polling through `clock`) until `pid` is gone; false when it still runs after `ms`. */
export async function waitGone(pid: number, ms: number, deps: WaitGoneDeps): Promise<boolean> {
  const { processes, clock } = deps;
  const deadline = clock.now() + ms;
  let wait = 20;
  while (clock.now() < deadline) {
    if (!(await processes.alive(pid))) return true;
    await clock.sleep(wait);
    wait = Math.min(wait * 2, 200);
  }
  return !(await processes.alive(pid));
}
