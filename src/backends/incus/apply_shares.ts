/**
 * Putting a sandbox's shares on its instance before a start: access for the container's ids on
 * the host directories (`share_access.ts`), then the `tk-share-*` disk devices (stale ones
 * removed, other devices untouched) — one `PUT` with the instance's ETag, only when something
 * changed.
 *
 * @module
 */
import type { Share } from "../backend.ts";
import { UnsupportedError } from "../../lib/errors.ts";
import type { CommandRunner } from "../../lib/process.ts";
import type { IncusClient } from "./client.ts";
import { type IncusInstance, instancePath } from "./instances.ts";
import { grantShareAccess, guestHostIds } from "./share_access.ts";
import { type Ids, sameDevices, SHARE_DEVICE_PREFIX, withShares } from "./shares.ts";

/** What `GET /1.0` tells us. */
export interface ServerInfo {
  api_extensions: string[];
  environment?: { kernel_features?: Record<string, string>; server_version?: string };
}

/** What applying shares needs. */
export interface ShareContext {
  client: IncusClient;
  /** The invoking host user; null in remote mode. */
  hostIds: Ids | null;
  /** The sandbox user's ids in the guest. */
  guestIds: Ids;
  /** Runs setfacl/getfacl on the host. */
  runner: CommandRunner;
  operationTimeoutMs: number;
}

/** Gives the guest access to the shared directories, then puts the devices on the instance. */
export async function applyShares(
  ctx: ShareContext,
  target: { instance: IncusInstance; etag: string | undefined },
  shares: Share[],
): Promise<void> {
  const { instance, etag } = target;
  const hasOurs = Object.keys(instance.devices).some((k) => k.startsWith(SHARE_DEVICE_PREFIX));
  if (shares.length === 0 && !hasOurs) return;
  if (shares.length > 0) {
    if (!ctx.hostIds) {
      throw new UnsupportedError(
        `sandbox "${instance.name}": host directories cannot be shared with a remote Incus ` +
          `server (${ctx.client.where})`,
        { hint: "use the local socket ([incus] socket) to share the worktree" },
      );
    }
    await grantShareAccess({
      runner: ctx.runner,
      shares,
      guest: guestHostIds(instance.config, ctx.guestIds),
      hostUser: ctx.hostIds,
    });
  }
  const devices = withShares(instance.devices, shares);
  if (sameDevices(devices, instance.devices)) return;
  await ctx.client.mutate("PUT", instancePath(instance.name), {
    body: {
      architecture: instance.architecture,
      config: instance.config,
      devices,
      ephemeral: instance.ephemeral,
      profiles: instance.profiles,
      stateful: instance.stateful,
      description: instance.description,
    },
    headers: etag ? { "if-match": etag } : {},
    subject: `sandbox "${instance.name}"`,
    timeoutMs: ctx.operationTimeoutMs,
  });
}
