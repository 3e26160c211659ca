/**
 * TrueNAS virt instances as tachikoma sees them (truenas-api.md §6): state, IPv4 aliases, the
 * bare sandbox name, the image reference, refused shares and the clone label's stamp.
 *
 * @module
 */
import type { SandboxInfo, SandboxState, Share } from "../backend.ts";
import { UnsupportedError } from "../../lib/errors.ts";

/** Prefix of every instance tachikoma makes on TrueNAS. */
export const INSTANCE_PREFIX = "px-";

/** An instance row, the fields read. */
export interface Instance {
  name: string;
  status: string;
  cpu?: string | null;
  memory?: number | null;
  aliases?: { type?: string; address?: string }[];
  image?: { os?: string; release?: string };
}

/** TrueNAS status → sandbox state (anything else: `unknown`). */
export const STATES: Record<string, SandboxState> = {
  RUNNING: "running",
  STOPPED: "stopped",
  STARTING: "starting",
  STOPPING: "stopping",
  FROZEN: "suspended",
};

/** The IPv4 (`INET` or `ipv4`) aliases of an instance. */
export function addresses(i: Instance): string[] {
  return (i.aliases ?? []).filter((a) => (a.type === "INET" || a.type === "ipv4") && a.address)
    .map((a) => a.address!);
}

/** `images:debian/12` → `debian/12` (TrueNAS' default remote is the images server). */
export function truenasImage(ref: string): string {
  return ref.replace(/^images:/, "");
}

/** The {@link SandboxInfo} of an instance row (bare name, state, addresses when running). */
export function infoOf(i: Instance): SandboxInfo {
  const name = i.name.startsWith(INSTANCE_PREFIX) ? i.name.slice(INSTANCE_PREFIX.length) : i.name;
  return {
    name,
    state: STATES[i.status] ?? "unknown",
    addresses: i.status === "RUNNING" ? addresses(i) : [],
    image: i.image?.os ? `${i.image.os} ${i.image.release ?? ""}`.trim() : undefined,
  };
}

/** Throws one UnsupportedError line when there are shares: TrueNAS cannot mount host paths. */
export function refuseShares(host: string, shares: Share[]): void {
  if (shares.length === 0) return;
  throw new UnsupportedError(
    `TrueNAS ${host} cannot mount directories of this host (${
      shares.map((s) => s.name).join(", ")
    })`,
    { hint: "the truenas backend runs sandboxes without host shares" },
  );
}

/** `YYYYMMDD-HHMMSS` (UTC) of `ms`. */
export function stamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${
    p(d.getUTCMinutes())
  }${p(d.getUTCSeconds())}`;
}
