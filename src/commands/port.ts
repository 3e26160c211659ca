/**
 * `tachikoma port forward [name] <guest-port> [host-port] [--bind ADDR]`: a host port (on
 * 127.0.0.1 unless `--bind`; default: the guest port) relayed to a port of the running sandbox;
 * `port list [name]`; `port rm [name] <host-port>`. Forwards end with halt and destroy. The relay
 * is a detached `tachikoma port serve` process.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { renderTable } from "../lib/table.ts";
import { hostProcesses } from "../lib/processes.ts";
import { withSandboxLock } from "../state/lock.ts";
import { launchRelay } from "../core/port_launch.ts";
import {
  endForwards,
  forwardPort,
  liveForwards,
  parseForwardArgs,
  parsePort,
  type PortForward,
  unknownForward,
} from "../core/ports.ts";
import { relay } from "../core/port_relay.ts";

const url = (f: PortForward) =>
  `${f.bind.includes(":") ? `[${f.bind}]` : f.bind}:${f.host_port} -> ${f.guest_port}`;

/** Runs `port forward`. */
export async function forward(
  ctx: CommandContext,
  opts: { args: string[]; bind?: string },
): Promise<void> {
  const parsed = parseForwardArgs(opts.args);
  const service = await ctx.app.service();
  const deps = service.deps;
  const f = await forwardPort(service, {
    name: parsed.name,
    guestPort: parsed.guestPort,
    hostPort: parsed.hostPort,
    bind: opts.bind,
    stateDir: deps.stateDir,
    clock: deps.clock,
    processes: hostProcesses,
    launch: launchRelay,
    signal: ctx.signal,
    locked: (name, fn) =>
      withSandboxLock({ dir: deps.stateDir, name, signal: ctx.signal, clock: deps.clock }, fn),
  });
  ctx.out.result(f, () => `Forwarding ${url(f)} in ${f.sandbox}`);
}

/** Runs `port list`. */
export async function list(ctx: CommandContext, opts: { name?: string }): Promise<void> {
  const service = await ctx.app.service();
  const sandbox = opts.name === undefined ? undefined : (await service.resolve(opts.name)).name;
  const forwards = await liveForwards(service.deps.stateDir, hostProcesses, sandbox);
  ctx.out.result(
    { forwards },
    () =>
      forwards.length === 0 ? "No port forwards." : renderTable<PortForward>([
        { header: "SANDBOX", value: (f) => f.sandbox },
        { header: "HOST", value: (f) => `${f.bind}:${f.host_port}` },
        { header: "GUEST PORT", value: (f) => String(f.guest_port) },
        { header: "PID", value: (f) => String(f.pid) },
      ], forwards),
  );
}

/** Runs `port rm`. */
export async function remove(
  ctx: CommandContext,
  opts: { args: string[] },
): Promise<void> {
  const args = opts.args;
  if (args.length < 1 || args.length > 2) {
    throw new (await import("../lib/errors.ts")).UsageError("port rm takes [name] <host-port>");
  }
  const hostPort = parsePort(args[args.length - 1], "host port");
  const service = await ctx.app.service();
  const record = await service.resolve(args.length === 2 ? args[0] : undefined);
  const { stateDir, clock } = service.deps;
  const ended = await withSandboxLock(
    { dir: stateDir, name: record.name, signal: ctx.signal, clock },
    () =>
      endForwards({ stateDir, processes: hostProcesses, sandbox: record.name, hostPort, clock }),
  );
  if (ended.length === 0) throw unknownForward(record.name, hostPort);
  ctx.out.result({ removed: ended }, () => ended.map((f) => `Removed ${url(f)}`).join("\n"));
}

/** Runs the hidden `port serve` (the relay). */
export async function serve(
  ctx: CommandContext,
  opts: { sandbox: string; address: string; guestPort: string; hostPort: string; bind?: string },
): Promise<void> {
  // Ended by SIGTERM (port rm, halt, destroy): open connections go with the process.
  const stop = new AbortController();
  const onTerm = () => Deno.exit(0);
  Deno.addSignalListener("SIGTERM", onTerm);
  ctx.signal?.addEventListener("abort", () => stop.abort(), { once: true });
  try {
    await relay({
      bind: opts.bind ?? "127.0.0.1",
      hostPort: parsePort(opts.hostPort, "host port"),
      guestAddress: opts.address,
      guestPort: parsePort(opts.guestPort, "guest port"),
      signal: stop.signal,
    });
  } finally {
    Deno.removeSignalListener("SIGTERM", onTerm);
  }
}
