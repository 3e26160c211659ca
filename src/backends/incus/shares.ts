/**
 * Host directories shared into Incus containers as `disk` devices, and the ownership mapping
 * that lets the guest user (uid/gid 1000) write the worktree.
 *
 * Containers are unprivileged (guest uid 0 is host uid 1000000), so a plain bind mount shows
 * host files as `nobody`. Two remedies, chosen by {@link ownershipPlan}:
 * - `shift: "true"` on the device (an idmapped mount; needs kernel support, reported by the
 *   server as `kernel_features.idmapped_mounts`): host uid N appears as guest uid N. Right when
 *   the invoking host user is uid 1000 like the guest user, and the only safe choice for host
 *   root (mapping host root into a container breaks setuid binaries and is a privilege risk):
 *   then root's files appear as root in the guest, and files the guest user creates land as
 *   uid 1000 on the host.
 * - otherwise `raw.idmap` maps the invoking host user onto guest uid/gid 1000 for the whole
 *   container. Incus only allows host ids delegated to root in `/etc/subuid` and
 *   `/etc/subgid` (`root:<uid>:1`), which `tachikoma doctor` checks.
 *
 * @module
 */
import type { Share } from "../backend.ts";
import { UsageError } from "../../lib/errors.ts";

/** Prefix of the disk devices tachikoma manages (`tk-share-<share name>`). */
export const SHARE_DEVICE_PREFIX = "tk-share-";

/** Numeric user and group ids. */
export interface Ids {
  uid: number;
  gid: number;
}

/** How host files get the right owner in the guest. */
export type OwnershipPlan =
  | { kind: "shift" }
  | { kind: "idmap"; rawIdmap: string }
  | { kind: "none"; reason: string };

/** An Incus device definition. */
export type Device = Record<string, string>;

/**
 * Picks the ownership mapping for shares: `host` is the invoking user (null when unknown, e.g.
 * a remote server), `guest` the sandbox user, `idmappedMounts` whether the server supports
 * shifted disk devices.
 */
export function ownershipPlan(
  host: Ids | null,
  guest: Ids,
  idmappedMounts: boolean,
): OwnershipPlan {
  if (!host) return { kind: "none", reason: "the invoking user's ids are unknown" };
  if (host.uid === 0) {
    return idmappedMounts ? { kind: "shift" } : {
      kind: "none",
      reason: "host root cannot be mapped into a container without idmapped mounts",
    };
  }
  if (host.uid === guest.uid && host.gid === guest.gid && idmappedMounts) return { kind: "shift" };
  return { kind: "idmap", rawIdmap: rawIdmap(host, guest) };
}

/** The `raw.idmap` value mapping `host` ids onto `guest` ids. */
export function rawIdmap(host: Ids, guest: Ids): string {
  if (host.uid === host.gid && guest.uid === guest.gid) return `both ${host.uid} ${guest.uid}`;
  return `uid ${host.uid} ${guest.uid}\ngid ${host.gid} ${guest.gid}`;
}

/**
 * True when an `/etc/subuid`-style text delegates `id` to root (`root:<start>:<count>` or
 * `0:<start>:<count>` covering it), which Incus needs before a `raw.idmap` may use it.
 */
export function delegatedToRoot(text: string, id: number): boolean {
  for (const line of text.split("\n")) {
    const [owner, start, count] = line.trim().split(":");
    if (owner !== "root" && owner !== "0") continue;
    const from = Number(start);
    const n = Number(count);
    if (Number.isInteger(from) && Number.isInteger(n) && id >= from && id < from + n) return true;
  }
  return false;
}

/** The device name for a share. */
export function shareDeviceName(share: Share): string {
  return `${SHARE_DEVICE_PREFIX}${share.name}`;
}

/** The disk device for one share under a plan. */
export function shareDevice(share: Share, plan: OwnershipPlan): Device {
  const device: Device = {
    type: "disk",
    source: share.hostPath,
    path: share.guestPath,
    readonly: share.readOnly ? "true" : "false",
  };
  if (plan.kind === "shift") device.shift = "true";
  return device;
}

/**
 * The instance's local devices with tachikoma's share devices replaced by `shares` (stale ones
 * removed, others kept as they are).
 */
export function withShares(
  devices: Record<string, Device>,
  shares: Share[],
  plan: OwnershipPlan,
): Record<string, Device> {
  const out: Record<string, Device> = {};
  for (const [name, device] of Object.entries(devices)) {
    if (!name.startsWith(SHARE_DEVICE_PREFIX)) out[name] = device;
  }
  for (const share of shares) out[shareDeviceName(share)] = shareDevice(share, plan);
  return out;
}

/** The local devices without tachikoma's share devices (for clones). */
export function withoutShares(devices: Record<string, Device>): Record<string, Device> {
  return withShares(devices, [], { kind: "none", reason: "" });
}

/** True when two device maps are the same. */
export function sameDevices(a: Record<string, Device>, b: Record<string, Device>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    const x = a[k];
    const y = b[k];
    if (!y) return false;
    const fields = Object.keys(x);
    if (fields.length !== Object.keys(y).length) return false;
    if (fields.some((f) => x[f] !== y[f])) return false;
  }
  return true;
}

/** Validates shares before they reach Incus: absolute paths, `[a-z0-9-]+` names. */
export function checkShares(shares: Share[]): void {
  for (const s of shares) {
    if (!/^[a-z0-9-]+$/.test(s.name)) {
      throw new UsageError(`invalid share name ${JSON.stringify(s.name)}`);
    }
    if (!s.hostPath.startsWith("/")) {
      throw new UsageError(
        `share ${s.name}: host path must be absolute: ${JSON.stringify(s.hostPath)}`,
      );
    }
    if (!s.guestPath.startsWith("/")) {
      throw new UsageError(
        `share ${s.name}: guest path must be absolute: ${JSON.stringify(s.guestPath)}`,
      );
    }
  }
}
