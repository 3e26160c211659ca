/**
 * Port forwards: a host port (on 127.0.0.1 unless another bind address is asked for) relayed to
 * a port of the sandbox's guest address by a small detached process (`tachikoma port serve`,
 * `port_relay.ts`). Each forward is one 0600 record in `<state dir>/ports/`, written atomically
 * under the sandbox's lock; `list` drops records whose relay is gone; `remove`, halt, suspend,
 * destroy and prune end the relays.
 *
 * @module
 */
import type { Clock } from "../lib/clock.ts";
import { ConflictError, NotFoundError, RuntimeError, UsageError } from "../lib/errors.ts";
import { privateDir, writePrivateFile } from "../lib/private_files.ts";
import { type ProcessInspector, waitGone } from "../lib/processes.ts";

/** One forward. */
export interface PortForward {
  sandbox: string;
  guest_port: number;
  host_port: number;
  bind: string;
  /** The guest address the relay connects to. */
  guest_address: string;
  pid: number;
  /** RFC 3339. */
  started: string;
}

/** Where the records live. */
export function portsDir(stateDir: string): string {
  return `${stateDir}/ports`;
}

function recordPath(stateDir: string, f: { bind: string; host_port: number }): string {
  return `${portsDir(stateDir)}/${f.bind.replace(/[^0-9A-Za-z.]/g, "_")}-${f.host_port}.json`;
}

/** Parses a port argument: a whole number 1–65535, or a one-line UsageError naming it. */
export function parsePort(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a port (1-65535)`);
  }
  return Number(text);
}

/** Splits `[name] <guest-port> [host-port]`. */
export function parseForwardArgs(
  args: string[],
): { name?: string; guestPort: number; hostPort?: number } {
  const isPort = (s: string) => /^\d+$/.test(s);
  if (args.length === 0 || args.length > 3) {
    throw new UsageError("port forward takes [name] <guest-port> [host-port]");
  }
  if (args.length === 3) {
    return {
      name: args[0],
      guestPort: parsePort(args[1], "guest port"),
      hostPort: parsePort(args[2], "host port"),
    };
  }
  if (args.length === 2) {
    if (isPort(args[0])) {
      return {
        guestPort: parsePort(args[0], "guest port"),
        hostPort: parsePort(args[1], "host port"),
      };
    }
    return { name: args[0], guestPort: parsePort(args[1], "guest port") };
  }
  return { guestPort: parsePort(args[0], "guest port") };
}

/** Reads every record (unreadable or foreign files are skipped). */
export async function readForwards(stateDir: string): Promise<PortForward[]> {
  const out: PortForward[] = [];
  try {
    for await (const e of Deno.readDir(portsDir(stateDir))) {
      if (!e.isFile || !e.name.endsWith(".json")) continue;
      try {
        const f = JSON.parse(await Deno.readTextFile(`${portsDir(stateDir)}/${e.name}`));
        if (
          typeof f.sandbox === "string" && Number.isInteger(f.guest_port) &&
          Number.isInteger(f.host_port) && typeof f.bind === "string" && Number.isInteger(f.pid)
        ) out.push(f as PortForward);
      } catch {
        // a record being replaced, or not ours
      }
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return out.sort((a, b) =>
    a.sandbox < b.sandbox ? -1 : a.sandbox > b.sandbox ? 1 : a.host_port - b.host_port
  );
}

async function dropRecord(stateDir: string, f: PortForward): Promise<void> {
  await Deno.remove(recordPath(stateDir, f)).catch(() => {});
}

/** Records whose relay still runs (the others are dropped). */
export async function liveForwards(
  stateDir: string,
  processes: ProcessInspector,
  sandbox?: string,
): Promise<PortForward[]> {
  const live: PortForward[] = [];
  for (const f of await readForwards(stateDir)) {
    if (sandbox !== undefined && f.sandbox !== sandbox) continue;
    if (await isRelay(processes, f)) live.push(f);
    else await dropRecord(stateDir, f);
  }
  return live;
}

/** True when `f.pid` is still the relay of `f` (not a reused pid). */
async function isRelay(processes: ProcessInspector, f: PortForward): Promise<boolean> {
  if (!(await processes.alive(f.pid))) return false;
  const cmd = await processes.commandLine(f.pid);
  return cmd === null || (cmd.includes("port") && cmd.includes(String(f.host_port)));
}

/**
 * Ends relays (all of a sandbox's, or the one on `hostPort`) and waits until each is gone (its
 * port free), SIGKILL after 5 s; returns what was ended.
 */
export async function endForwards(options: {
  stateDir: string;
  processes: ProcessInspector;
  sandbox: string;
  /** Only this host port's forward (default: all of the sandbox's). */
  hostPort?: number;
  clock: Clock;
}): Promise<PortForward[]> {
  const ended: PortForward[] = [];
  const { stateDir, processes, sandbox, hostPort, clock } = options;
  for (const f of await readForwards(stateDir)) {
    if (f.sandbox !== sandbox || (hostPort !== undefined && f.host_port !== hostPort)) continue;
    if (await isRelay(processes, f)) {
      processes.kill(f.pid, "SIGTERM");
      if (!(await waitGone(f.pid, 5000, { processes, clock }))) processes.kill(f.pid, "SIGKILL");
    }
    await dropRecord(stateDir, f);
    ended.push(f);
  }
  return ended;
}

/** What {@link startForward} needs. */
export interface StartForwardOptions {
  stateDir: string;
  sandbox: string;
  guestAddress: string;
  guestPort: number;
  hostPort: number;
  bind: string;
  clock: Clock;
  processes: ProcessInspector;
  /** Starts the detached relay; returns its pid and a promise of its exit code. */
  launch: (args: string[]) => { pid: number; exited: Promise<number> };
  signal?: AbortSignal;
}

/** Throws a one-line ConflictError when `bind:port` cannot be listened on. */
export function checkFree(bind: string, port: number): void {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: bind, port });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new ConflictError(`port ${bind}:${port} is in use`, {
        hint: "give another host port: tachikoma port forward [name] <guest-port> <host-port>",
      });
    }
    throw new UsageError(`cannot listen on ${bind}:${port}: ${(error as Error).message}`);
  }
  listener.close();
}

/** Starts a relay and records it once it accepts connections. */
export async function startForward(options: StartForwardOptions): Promise<PortForward> {
  const { stateDir, clock } = options;
  checkFree(options.bind, options.hostPort);
  const child = options.launch([
    "port",
    "serve",
    options.sandbox,
    options.guestAddress,
    String(options.guestPort),
    String(options.hostPort),
    "--bind",
    options.bind,
  ]);
  let exitCode: number | null = null;
  child.exited.then((c) => exitCode = c, () => exitCode = -1);
  const deadline = clock.now() + 10_000;
  for (let delay = 20;; delay = Math.min(delay * 2, 250)) {
    options.signal?.throwIfAborted();
    if (exitCode !== null) {
      throw new RuntimeError(
        "port_forward",
        `the relay for ${options.bind}:${options.hostPort} exited (${exitCode}) before listening`,
      );
    }
    try {
      const c = await Deno.connect({ hostname: options.bind, port: options.hostPort });
      c.close();
      break;
    } catch {
      // not listening yet
    }
    if (clock.now() > deadline) {
      options.processes.kill(child.pid, "SIGTERM");
      throw new RuntimeError(
        "port_forward",
        `the relay for ${options.bind}:${options.hostPort} did not listen within 10 s`,
      );
    }
    await clock.sleep(delay, options.signal);
  }
  const forward: PortForward = {
    sandbox: options.sandbox,
    guest_port: options.guestPort,
    host_port: options.hostPort,
    bind: options.bind,
    guest_address: options.guestAddress,
    pid: child.pid,
    started: new Date(clock.now()).toISOString(),
  };
  await privateDir(portsDir(stateDir));
  await writePrivateFile(recordPath(stateDir, forward), JSON.stringify(forward) + "\n");
  return forward;
}

/** The error for a `port rm` that matches nothing. */
export function unknownForward(sandbox: string, hostPort: number): NotFoundError {
  return new NotFoundError(`no port forward on host port ${hostPort} for ${sandbox}`, {
    hint: "`tachikoma port list` shows them",
  });
}

/** The part of the sandbox service a forward needs. */
export interface ForwardHost {
  ready(name?: string): Promise<{
    record: { name: string; ip: string | null };
    backend: { get(name: string): Promise<{ addresses: string[] }> };
  }>;
}

/** Options of {@link forwardPort}. */
export interface ForwardPortOptions {
  name?: string;
  guestPort: number;
  /** Default: the guest port. */
  hostPort?: number;
  /** Default: 127.0.0.1. */
  bind?: string;
  stateDir: string;
  clock: Clock;
  processes: ProcessInspector;
  launch: StartForwardOptions["launch"];
  signal?: AbortSignal;
  /** Runs `fn` under the sandbox's lock. */
  locked: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** Forwards a host port to a port of a running sandbox. */
export async function forwardPort(host: ForwardHost, o: ForwardPortOptions): Promise<PortForward> {
  const bind = o.bind ?? "127.0.0.1";
  if (!IPV4.test(bind) && bind !== "::1" && bind !== "::") {
    throw new UsageError(`--bind ${JSON.stringify(bind)} is not an IP address`);
  }
  const { record, backend } = await host.ready(o.name);
  const address = (await backend.get(record.name)).addresses[0] ?? record.ip;
  if (!address) {
    throw new ConflictError(`sandbox ${record.name} has no address yet`, {
      hint: "try again once it has booted",
    });
  }
  return await o.locked(record.name, () =>
    startForward({
      stateDir: o.stateDir,
      sandbox: record.name,
      guestAddress: address,
      guestPort: o.guestPort,
      hostPort: o.hostPort ?? o.guestPort,
      bind,
      clock: o.clock,
      processes: o.processes,
      launch: o.launch,
      signal: o.signal,
    }));
}
