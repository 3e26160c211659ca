/**
 * Host directories shared into Incus containers as `disk` devices: one device per share, at its
 * guest path (nested shares — a read-write part of `.git` over the read-only `.git` — mount
 * after their parent, Incus orders disk devices by path), `readonly` as the share says, never
 * `shift`: a shifted (idmapped) device maps guest root onto host root, so a file guest root
 * writes would belong to host root, setuid bit included. Without shifting, the container's own
 * unprivileged ids write to the host (guest root is host uid 1000000, the guest user 1001000 with
 * Incus' default map); `share_access.ts` grants them access to the shared directories.
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

/** An Incus device definition. */
export type Device = Record<string, string>;

/** The device name for a share. */
export function shareDeviceName(share: Share): string {
  return `${SHARE_DEVICE_PREFIX}${share.name}`;
}

/** The disk device for one share. */
export function shareDevice(share: Share): Device {
  return {
    type: "disk",
    source: share.hostPath,
    path: share.guestPath,
    readonly: share.readOnly ? "true" : "false",
  };
}

/**
 * The instance's local devices with tachikoma's share devices replaced by `shares` (stale ones
 * removed, others kept as they are).
 */
export function withShares(
  devices: Record<string, Device>,
  shares: Share[],
): Record<string, Device> {
  const out: Record<string, Device> = {};
  for (const [name, device] of Object.entries(devices)) {
    if (!name.startsWith(SHARE_DEVICE_PREFIX)) out[name] = device;
  }
  for (const share of shares) out[shareDeviceName(share)] = shareDevice(share);
  return out;
}

/** The local devices without tachikoma's share devices (for clones). */
export function withoutShares(devices: Record<string, Device>): Record<string, Device> {
  return withShares(devices, []);
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
