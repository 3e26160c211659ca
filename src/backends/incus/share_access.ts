/**
 * Access to shared host directories for a container that is not shifted: the container's own
 * ids (from its id map: guest root and the guest user, both unprivileged on the host) get
 * read-write access through POSIX ACLs on each read-write share, and default ACLs make what they
 * create readable and writable by the host user who runs tachikoma. Files the guest writes
 * therefore belong to an unprivileged host id, never to host root, and a setuid bit on them
 * gives nobody privileges (guest root is host uid 1000000 with Incus' default map).
 *
 * The first time a directory is shared the ACLs are applied to its whole tree (`setfacl -R`,
 * ~0.3 s for 20,000 files); later starts only check its top. Read-only shares get no ACL: the
 * guest reads them through their "other" permission bits.
 *
 * @module
 */
import type { Share } from "../backend.ts";
import { ConfigError, RuntimeError, UnreachableError } from "../../lib/errors.ts";
import type { CommandRunner } from "../../lib/process.ts";
import type { Ids } from "./shares.ts";

/** One range of a container's id map (`volatile.idmap.current` / `.next`). */
interface IdmapEntry {
  Isuid: boolean;
  Isgid: boolean;
  Hostid: number;
  Nsid: number;
  Maprange: number;
}

/** The host ids of a container's root and sandbox user. */
export interface GuestHostIds {
  root: Ids;
  user: Ids;
}

/**
 * Reads the host ids that a container's uid/gid 0 and the sandbox user's ids map to, from its
 * configuration (`volatile.idmap.current`, else `.next`, set at creation).
 */
export function guestHostIds(config: Record<string, string>, guest: Ids): GuestHostIds {
  const text = config["volatile.idmap.current"] || config["volatile.idmap.next"] || "";
  let map: IdmapEntry[];
  try {
    map = JSON.parse(text);
    if (!Array.isArray(map)) throw new Error("not a list");
  } catch {
    throw new RuntimeError("incus_idmap", "the container has no id map (volatile.idmap.next)", {
      hint: "privileged containers cannot get tachikoma's shares; use an unprivileged one",
    });
  }
  const host = (id: number, kind: "Isuid" | "Isgid"): number => {
    const e = map.find((m) => m[kind] && id >= m.Nsid && id < m.Nsid + m.Maprange);
    if (!e) {
      throw new RuntimeError("incus_idmap", `the container's id map does not map ${id}`);
    }
    return e.Hostid + (id - e.Nsid);
  };
  return {
    root: { uid: host(0, "Isuid"), gid: host(0, "Isgid") },
    user: { uid: host(guest.uid, "Isuid"), gid: host(guest.gid, "Isgid") },
  };
}

/** The `setfacl -m` specification of {@link grantShareAccess}. */
export function aclSpec(guest: GuestHostIds, hostUser: Ids | null): string {
  const entries: string[] = [];
  for (const ids of [guest.user, guest.root]) {
    entries.push(`u:${ids.uid}:rwX`, `g:${ids.gid}:rwX`);
  }
  const defaults = entries.map((e) => `d:${e}`);
  if (hostUser) defaults.push(`d:u:${hostUser.uid}:rwX`, `d:g:${hostUser.gid}:rwX`);
  return [...entries, ...defaults].join(",");
}

/** Inputs of {@link grantShareAccess}. */
export interface ShareAccessOptions {
  runner: CommandRunner;
  shares: Share[];
  guest: GuestHostIds;
  /** The host user running tachikoma (null: unknown). */
  hostUser: Ids | null;
}

/**
 * Grants the container's ids access to every read-write share (see the module doc); the shares
 * are distinct trees, so they are granted concurrently.
 */
export async function grantShareAccess(options: ShareAccessOptions): Promise<void> {
  const spec = aclSpec(options.guest, options.hostUser);
  const writable = options.shares.filter((share) => !share.readOnly);
  const results = await Promise.allSettled(writable.map((share) => grant(options, share, spec)));
  for (const r of results) if (r.status === "rejected") throw r.reason;
}

async function grant(options: ShareAccessOptions, share: Share, spec: string): Promise<void> {
  const recursive = !(await hasEntry(options.runner, share.hostPath, options.guest.user.uid));
  const args = recursive
    ? ["-R", "-m", spec, "--", share.hostPath]
    : ["-m", spec, "--", share.hostPath];
  let r;
  try {
    r = await options.runner.run("setfacl", args);
  } catch (error) {
    if (error instanceof UnreachableError) throw setfaclMissing();
    throw error;
  }
  if (r.code === 0) return;
  throw new RuntimeError(
    "share_access",
    `cannot give the sandbox access to ${share.hostPath}: ${r.stderr.trim()}`,
    { hint: "the file system must support POSIX ACLs (ext4, btrfs, xfs, tmpfs do)" },
  );
}

function setfaclMissing(): ConfigError {
  return new ConfigError("setfacl is not installed: tachikoma needs it to share directories", {
    hint: "install the acl package (sudo apt install acl), then: tachikoma doctor",
  });
}

/** True when `path` already has an access ACL entry for `uid`. */
async function hasEntry(runner: CommandRunner, path: string, uid: number): Promise<boolean> {
  let r;
  try {
    r = await runner.run("getfacl", ["-n", "-p", "--omit-header", "--", path]);
  } catch (error) {
    if (error instanceof UnreachableError) throw setfaclMissing();
    throw error;
  }
  if (r.code !== 0) return false;
  return r.stdout.split("\n").some((l) => l.startsWith(`user:${uid}:`));
}
