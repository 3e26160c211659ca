/**
 * Putting a sandbox's shares on its instance before a start: `tk-share-*` disk devices (stale
 * ones removed, other devices untouched) and, when the ownership plan needs it, `raw.idmap` —
 * one `PUT` with the instance's ETag, only when something changed.
 *
 * @module
 */
import type { Share } from "../backend.ts";
import { ConfigError, UnsupportedError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import type { IncusClient } from "./client.ts";
import { type IncusInstance, instancePath } from "./instances.ts";
import {
  delegatedToRoot,
  type Ids,
  type OwnershipPlan,
  ownershipPlan,
  sameDevices,
  SHARE_DEVICE_PREFIX,
  withShares,
} from "./shares.ts";

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
  guestIds: Ids;
  server(): Promise<ServerInfo>;
  operationTimeoutMs: number;
  /** Reads `/etc/subuid`-style files (default: the real files). */
  readFile?: (path: string) => Promise<string>;
}

/** Puts the share devices (and the idmap they need) on the instance when they differ. */
export async function applyShares(
  ctx: ShareContext,
  instance: IncusInstance,
  etag: string | undefined,
  shares: Share[],
  stopped: boolean,
): Promise<void> {
  const hasOurs = Object.keys(instance.devices).some((k) => k.startsWith(SHARE_DEVICE_PREFIX));
  if (shares.length === 0 && !hasOurs) return;
  let plan: OwnershipPlan = { kind: "none", reason: "no shares" };
  if (shares.length > 0) {
    if (!ctx.hostIds) {
      throw new UnsupportedError(
        `sandbox "${instance.name}": host directories cannot be shared with a remote Incus ` +
          `server (${ctx.client.where})`,
        { hint: "use the local socket ([incus] socket) to share the worktree" },
      );
    }
    const server = await ctx.server();
    const idmapped = server.environment?.kernel_features?.idmapped_mounts === "true";
    plan = ownershipPlan(ctx.hostIds, ctx.guestIds, idmapped);
    if (plan.kind === "none") log.warn(`shares of ${instance.name}: ${plan.reason}`);
    if (plan.kind === "idmap") await checkDelegation(ctx, instance.name);
  }
  const devices = withShares(instance.devices, shares, plan);
  const config = { ...instance.config };
  if (plan.kind === "idmap" && config["raw.idmap"] !== plan.rawIdmap) {
    if (stopped) config["raw.idmap"] = plan.rawIdmap;
    else log.warn(`sandbox ${instance.name}: the uid mapping changes at its next restart`);
  }
  if (
    sameDevices(devices, instance.devices) && config["raw.idmap"] === instance.config["raw.idmap"]
  ) {
    return;
  }
  await ctx.client.mutate("PUT", instancePath(instance.name), {
    body: {
      architecture: instance.architecture,
      config,
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

/** Fails early, saying what to do, when the host ids are not delegated to Incus. */
async function checkDelegation(ctx: ShareContext, name: string): Promise<void> {
  const ids = ctx.hostIds;
  if (!ids) return;
  const read = ctx.readFile ?? ((path: string) => Deno.readTextFile(path));
  const missing: string[] = [];
  for (const [file, id] of [["/etc/subuid", ids.uid], ["/etc/subgid", ids.gid]] as const) {
    let text: string;
    try {
      text = await read(file);
    } catch {
      return; // unreadable: let Incus decide
    }
    if (!delegatedToRoot(text, id)) missing.push(`"root:${id}:1" to ${file}`);
  }
  if (missing.length === 0) return;
  throw new ConfigError(
    `sandbox "${name}": Incus may not map host uid ${ids.uid} onto the guest user, so the ` +
      "shared worktree would not be writable",
    { hint: `add ${missing.join(" and ")}, restart incusd, then: tachikoma doctor` },
  );
}
