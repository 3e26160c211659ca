/**
 * Port tools: forward_port, list_ports, remove_port — the same core as `tachikoma port …`
 * (`src/core/ports.ts`): a host port (127.0.0.1 unless `bind`) relayed to a port of a running
 * sandbox by a detached relay process; forwards end with halt and destroy.
 *
 * @module
 */
import { z } from "zod";
import { endForwards, forwardPort, liveForwards, unknownForward } from "../core/ports.ts";
import { launchRelay } from "../core/port_launch.ts";
import { hostProcesses } from "../lib/processes.ts";
import { withSandboxLock } from "../state/lock.ts";
import { repoArg, sandboxArg } from "./schemas.ts";
import { changes, READ_ONLY, type ToolSpec } from "./tooling.ts";

const port = z.number().int().min(1).max(65535);

const forwardSchema = {
  sandbox: z.string(),
  guest_port: z.number().int(),
  host_port: z.number().int(),
  bind: z.string(),
  guest_address: z.string(),
  pid: z.number().int().describe("the relay process on the host"),
  started: z.string().describe("RFC 3339 UTC"),
};

const forwardInput = {
  sandbox: sandboxArg,
  repo: repoArg,
  guest_port: port.describe("port a server listens on in the sandbox"),
  host_port: port.optional().describe("port on the host (default: the guest port)"),
  bind: z.string().optional().describe(
    "host address to listen on (default 127.0.0.1; anything else exposes the port beyond " +
      "this machine)",
  ),
};

/** forward_port */
export const forwardPortTool: ToolSpec<typeof forwardInput, typeof forwardSchema> = {
  name: "forward_port",
  title: "Forward a host port to a sandbox port",
  description: "Make a server running in a sandbox reachable on the host: host_port on " +
    "127.0.0.1 (unless `bind`) is relayed to guest_port of the running sandbox until " +
    "remove_port, halt or destroy. A host port in use is an error.",
  input: forwardInput,
  output: forwardSchema,
  annotations: changes(false, false),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const deps = service.deps;
    const f = await forwardPort(service, {
      name: args.sandbox,
      guestPort: args.guest_port,
      hostPort: args.host_port,
      bind: args.bind,
      stateDir: deps.stateDir,
      clock: deps.clock,
      processes: hostProcesses,
      launch: launchRelay,
      signal: call.signal,
      locked: (name, fn) => withSandboxLock({ dir: deps.stateDir, name, clock: deps.clock }, fn),
    });
    return { data: f };
  },
};

const listInput = {
  sandbox: sandboxArg.optional().describe("only this sandbox's forwards (default: all)"),
  repo: repoArg,
};
const listOutput = { forwards: z.array(z.object(forwardSchema)) };

/** list_ports */
export const listPortsTool: ToolSpec<typeof listInput, typeof listOutput> = {
  name: "list_ports",
  title: "List port forwards",
  description: "List the port forwards whose relay still runs on the host (all of them, or one " +
    "sandbox's): host address and port, guest port, relay pid.",
  input: listInput,
  output: listOutput,
  annotations: READ_ONLY,
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const sandbox = args.sandbox === undefined
      ? undefined
      : (await service.resolve(args.sandbox)).name;
    return {
      data: { forwards: await liveForwards(service.deps.stateDir, hostProcesses, sandbox) },
    };
  },
};

const removeInput = {
  sandbox: sandboxArg,
  repo: repoArg,
  host_port: port.describe("the host port of the forward"),
};
const removeOutput = { removed: z.array(z.object(forwardSchema)) };

/** remove_port */
export const removePortTool: ToolSpec<typeof removeInput, typeof removeOutput> = {
  name: "remove_port",
  title: "Remove a port forward",
  description: "End the forward on host_port of a sandbox (its relay stops, the port closes).",
  input: removeInput,
  output: removeOutput,
  annotations: changes(true, true),
  async run(args, call) {
    const service = await call.service({ repo: args.repo });
    const record = await service.resolve(args.sandbox);
    const deps = service.deps;
    const removed = await withSandboxLock(
      { dir: deps.stateDir, name: record.name, clock: deps.clock },
      () =>
        endForwards({
          stateDir: deps.stateDir,
          processes: hostProcesses,
          sandbox: record.name,
          hostPort: args.host_port,
          clock: deps.clock,
        }),
    );
    if (removed.length === 0) throw unknownForward(record.name, args.host_port);
    return { data: { removed } };
  },
};
