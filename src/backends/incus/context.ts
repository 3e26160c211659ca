/**
 * What the Incus backend's operations share (the client, the settings and the tuning seams),
 * and the two requests most of them make: read an instance, change its state.
 *
 * @module
 */
import type { Clock } from "../../lib/clock.ts";
import type { CommandRunner } from "../../lib/process.ts";
import type { IncusClient } from "./client.ts";
import type { ImageStoreOptions } from "./image_store.ts";
import { type IncusInstance, instancePath } from "./instances.ts";
import type { IncusSettings } from "./settings.ts";
import type { Ids } from "./shares.ts";

/** The backend's state, as its lifecycle and egress operations see it. */
export interface IncusContext {
  client: IncusClient;
  settings: IncusSettings;
  clock: Clock;
  /** The invoking host user (null in remote mode). */
  hostIds: Ids | null;
  /** The sandbox user's ids. */
  guestIds: Ids;
  /** Runs setfacl/getfacl and nft. */
  runner: CommandRunner;
  /** Budget of one background operation. */
  operationTimeoutMs: number;
  /** Default graceful stop budget. */
  stopTimeoutMs: number;
  /** The host nftables table of the egress chains (undefined: the default). */
  egressTable: string | undefined;
  /** How the image store resolves and publishes images. */
  imageOptions: () => ImageStoreOptions;
}

/** Reads the instance document (with `withState`, its runtime state too). */
export async function fetchInstance(
  ctx: IncusContext,
  name: string,
  withState = false,
): Promise<IncusInstance> {
  return await ctx.client.get<IncusInstance>(instancePath(name), {
    query: withState ? { recursion: "1" } : {},
    subject: `sandbox "${name}"`,
  });
}

/** A state change (`start`, `stop`, `freeze`, …) and its budget (default: one operation's). */
export interface StateChange {
  body: Record<string, unknown>;
  timeoutMs?: number;
}

/** Changes the instance's state and waits for the operation. */
export async function setState(
  ctx: IncusContext,
  name: string,
  change: StateChange,
): Promise<void> {
  await ctx.client.mutate("PUT", `${instancePath(name)}/state`, {
    body: change.body,
    subject: `sandbox "${name}"`,
    timeoutMs: change.timeoutMs ?? ctx.operationTimeoutMs,
  });
}
