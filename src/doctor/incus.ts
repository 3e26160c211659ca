/**
 * `tachikoma doctor`'s Incus checks: the API is reachable and trusts us, the extensions the
 * backend uses exist, the storage pool and network sandboxes land on are there, the image
 * exists, host directories can be shared (POSIX ACLs work) and egress can be enforced from the
 * host (nftables). Each check is independent and
 * never throws; every request has a short deadline.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { errorMessage, TachikomaError } from "../lib/errors.ts";
import { IncusClient } from "../backends/incus/client.ts";
import { imageServersOf, incusSettings } from "../backends/incus/mod.ts";
import { cacheAlias, parseImageRef } from "../backends/incus/image_ref.ts";
import { defaultImage } from "../config/defaults.ts";
import { type CommandRunner, defaultRunner } from "../lib/process.ts";
import type { CheckResult } from "./check.ts";
import { SocketIncusAdmin } from "../backends/incus/host_admin.ts";
import { AptPackages, RealHostSystem } from "../lib/host_system.ts";
import { localAccessCheck, type LocalIncusProbe, SETUP } from "./incus_access.ts";
import { egressCheck } from "./incus_egress.ts";

export { localAccessCheck, type LocalIncusProbe } from "./incus_access.ts";

/** API extensions the Incus backend relies on. */
export const REQUIRED_EXTENSIONS = [
  "operation_wait",
  "container_exec_user_group_cwd",
  "container_exec_signal_handling",
  "container_only_migration",
  "file_delete",
  "instance_file_head",
] as const;

/** Options of {@link incusChecks} (tests). */
export interface IncusCheckOptions {
  /** Deadline of each request (default 5 s). */
  timeoutMs?: number;
  /** Runs setfacl/getfacl (default: the real programs). */
  runner?: CommandRunner;
  /** Where the ACL probe makes its temporary directory (default: the system's temp dir). */
  probeDir?: string;
  /** What the local-socket diagnosis reads (default: the real host, apt and socket). */
  local?: LocalIncusProbe;
}

interface ServerInfo {
  api_version?: string;
  auth?: string;
  api_extensions?: string[];
  environment?: {
    server_version?: string;
    kernel_features?: Record<string, string>;
    project?: string;
  };
}

interface Profile {
  devices?: Record<string, Record<string, string>>;
}

function failure(name: string, error: unknown, hint?: string): CheckResult {
  const typedHint = error instanceof TachikomaError ? error.hint : undefined;
  return { name, ok: false, message: errorMessage(error), hint: typedHint ?? hint, required: true };
}

/** Runs the Incus checks for `config`. */
export async function incusChecks(
  config: Config,
  options: IncusCheckOptions = {},
): Promise<CheckResult[]> {
  const settings = incusSettings(config);
  const where = settings.endpoint.remote ?? settings.endpoint.socket;
  const timeoutMs = options.timeoutMs ?? 5_000;
  if (!settings.endpoint.remote) {
    const admin = new SocketIncusAdmin(settings.endpoint.socket, timeoutMs);
    try {
      const problem = await localAccessCheck(
        options.local ?? { admin, host: new RealHostSystem(), packages: new AptPackages() },
      );
      if (problem) return [problem];
    } finally {
      admin.close();
    }
  }
  let client: IncusClient;
  try {
    client = await IncusClient.open(settings.endpoint);
  } catch (error) {
    return [failure("incus api", error)];
  }
  const get = <T>(path: string, subject?: string) =>
    client.get<T>(path, { subject, signal: AbortSignal.timeout(timeoutMs) }).catch((error) => {
      if (error instanceof DOMException && error.name === "TimeoutError") {
        throw new Error(`no answer from Incus at ${where} within ${timeoutMs / 1000} s`);
      }
      throw error;
    });
  const results: CheckResult[] = [];
  try {
    let server: ServerInfo;
    try {
      server = await get<ServerInfo>("/1.0");
    } catch (error) {
      results.push(failure("incus api", error, "is incusd running? (sudo systemctl start incus)"));
      return results;
    }
    const version = server.environment?.server_version ?? "?";
    if (server.auth !== "trusted") {
      results.push({
        name: "incus api",
        ok: false,
        message: `Incus ${version} at ${where} does not trust this client (auth: ${server.auth})`,
        hint: settings.endpoint.remote
          ? "on the server: incus config trust add-certificate <[incus] client_cert>"
          : "add your user to the incus-admin group and log in again",
        required: true,
      });
      return results;
    }
    results.push({
      name: "incus api",
      ok: true,
      message: `Incus ${version} at ${where} (API ${server.api_version ?? "?"}${
        settings.endpoint.project ? `, project ${settings.endpoint.project}` : ""
      })`,
      required: true,
    });

    const have = new Set(server.api_extensions ?? []);
    const missing = REQUIRED_EXTENSIONS.filter((e) => !have.has(e));
    results.push(
      missing.length === 0
        ? {
          name: "incus extensions",
          ok: true,
          message: `${REQUIRED_EXTENSIONS.length} needed, all present`,
          required: true,
        }
        : {
          name: "incus extensions",
          ok: false,
          message: `missing API extensions: ${missing.join(", ")}`,
          hint: "upgrade Incus (6.0 LTS or newer)",
          required: true,
        },
    );

    let profile: Profile = {};
    try {
      profile = await get<Profile>("/1.0/profiles/default", 'profile "default"');
    } catch {
      // reported by the pool and network checks below when they need it
    }
    const devices = Object.values(profile.devices ?? {});
    results.push(await poolCheck(get, settings.storagePool, devices));
    results.push(await networkCheck(get, settings.network, devices));
    results.push(
      await imageCheck(
        get,
        settings.image ?? config.base_image ?? defaultImage("incus"),
        imageServersOf(settings),
      ),
    );
    if (!settings.endpoint.remote) {
      results.push(await sharesCheck(options));
    }
    results.push(await egressCheck(settings.endpoint.remote, options.runner));
  } finally {
    client.close();
  }
  return results;
}

/** Reads an API path (the checks' view of the Incus API). */
export type Getter = <T>(path: string, subject?: string) => Promise<T>;

/**
 * The storage pool sandboxes land on: `[incus] storage_pool`, else the default profile's root
 * disk; a host without either is an uninitialised Incus, which `tachikoma setup` initialises.
 */
export async function poolCheck(
  get: Getter,
  configured: string | undefined,
  profileDevices: Record<string, string>[],
): Promise<CheckResult> {
  const name = "incus storage pool";
  const pool = configured ?? profileDevices.find((d) => d.type === "disk" && d.path === "/")?.pool;
  if (!pool) {
    return {
      name,
      ok: false,
      message: "Incus is not initialised: no storage pool ([incus] storage_pool is unset and " +
        "the default profile has no root disk)",
      hint: `${SETUP} initialises it (or set [incus] storage_pool)`,
      required: true,
    };
  }
  try {
    const info = await get<{ driver?: string; status?: string }>(
      `/1.0/storage-pools/${encodeURIComponent(pool)}`,
      `storage pool "${pool}"`,
    );
    const fast = info.driver === "btrfs" || info.driver === "zfs" || info.driver === "lvm";
    return {
      name,
      ok: true,
      message: `${pool} (${info.driver ?? "?"}${configured ? "" : ", from the default profile"})`,
      hint: fast
        ? undefined
        : "a btrfs or zfs pool makes create, checkpoints and clones near-instant",
      required: true,
    };
  } catch (error) {
    return failure(
      name,
      error,
      `create it (incus storage create ${pool} btrfs) or fix [incus] storage_pool`,
    );
  }
}

/**
 * The network sandboxes join: `[incus] network`, else the default profile's NIC; a host
 * without either is an uninitialised Incus, which `tachikoma setup` initialises.
 */
export async function networkCheck(
  get: Getter,
  configured: string | undefined,
  profileDevices: Record<string, string>[],
): Promise<CheckResult> {
  const name = "incus network";
  const nic = profileDevices.find((d) => d.type === "nic");
  const network = configured ?? nic?.network ?? nic?.parent;
  if (!network) {
    return {
      name,
      ok: false,
      message: "Incus is not initialised: no network ([incus] network is unset and the " +
        "default profile has no NIC)",
      hint: `${SETUP} creates a bridge with its own subnet and adds it to the default profile ` +
        "(or set [incus] network)",
      required: true,
    };
  }
  try {
    const info = await get<{ managed?: boolean; type?: string; config?: Record<string, string> }>(
      `/1.0/networks/${encodeURIComponent(network)}`,
      `network "${network}"`,
    );
    if (!info.managed) {
      return {
        name,
        ok: true,
        message: `${network} (${info.type ?? "unmanaged"}, not managed by Incus)`,
        required: true,
      };
    }
    const v4 = info.config?.["ipv4.address"];
    if (!v4 || v4 === "none") {
      return {
        name,
        ok: false,
        message: `${network} has no IPv4 address: sandboxes would get none`,
        hint: `incus network set ${network} ipv4.address=<a.b.c.1/24> ipv4.nat=true`,
        required: true,
      };
    }
    const nat = info.config?.["ipv4.nat"] === "true" ? ", NAT" : "";
    return { name, ok: true, message: `${network} (${v4}${nat})`, required: true };
  } catch (error) {
    return failure(name, error, `create it or fix [incus] network`);
  }
}

async function imageCheck(
  get: Getter,
  image: string,
  servers: Parameters<typeof parseImageRef>[1],
): Promise<CheckResult> {
  const name = "incus image";
  let ref;
  try {
    ref = parseImageRef(image, servers);
  } catch (error) {
    return failure(name, error, "fix base_image / [incus] image or [incus.image_servers]");
  }
  try {
    if (ref.kind === "remote") {
      try {
        const alias = await get<{ target: string }>(
          `/1.0/images/aliases/${encodeURIComponent(cacheAlias(ref))}`,
          `image "${image}"`,
        );
        return { name, ok: true, message: `${image} (pulled, ${alias.target.slice(0, 12)})` };
      } catch {
        return {
          name,
          ok: true,
          message:
            `${image} (from ${ref.server.url}: pulled on first use, or: tachikoma image pull)`,
        };
      }
    }
    if (ref.kind === "fingerprint") {
      const info = await get<{ fingerprint: string }>(
        `/1.0/images/${ref.fingerprint}`,
        `image "${image}"`,
      );
      return { name, ok: true, message: `${image} (${info.fingerprint.slice(0, 12)})` };
    }
    const alias = await get<{ target: string }>(
      `/1.0/images/aliases/${encodeURIComponent(ref.alias)}`,
      `image "${image}"`,
    );
    return { name, ok: true, message: `${image} (${alias.target.slice(0, 12)})` };
  } catch (error) {
    return {
      name,
      ok: false,
      message: errorMessage(error),
      hint: 'set base_image to a server image (e.g. "images:debian/12"), or import one ' +
        "(incus image import <tarball> --alias <name>) and name it",
      required: false,
    };
  }
}

/**
 * Shares need POSIX ACLs on the host (see src/backends/incus/share_access.ts): `setfacl` must
 * run and the file system must keep an ACL entry for the container's ids.
 */
async function sharesCheck(options: IncusCheckOptions): Promise<CheckResult> {
  const name = "incus shares";
  const runner = options.runner ?? defaultRunner;
  let dir: string | undefined;
  try {
    dir = await Deno.makeTempDir({ dir: options.probeDir, prefix: ".tachikoma-acl-" });
    const set = await runner.run("setfacl", ["-m", "u:1001000:rwx", "--", dir]);
    if (set.code !== 0) throw new Error(set.stderr.trim() || `setfacl exited ${set.code}`);
    const get = await runner.run("getfacl", ["-n", "-p", "--omit-header", "--", dir]);
    if (!get.stdout.includes("user:1001000:rwx")) {
      throw new Error("the file system did not keep the ACL entry");
    }
    return {
      name,
      ok: true,
      message: "POSIX ACLs work: the sandbox's own unprivileged ids get access to shared dirs",
    };
  } catch (error) {
    const missing = error instanceof TachikomaError && /not installed/.test(error.message);
    return {
      name,
      ok: false,
      message: missing
        ? "setfacl is not installed: worktrees cannot be shared with sandboxes"
        : `POSIX ACLs do not work here: ${errorMessage(error)}`,
      hint: missing
        ? "install the acl package (sudo apt install acl)"
        : "keep worktrees (worktree_dir) on a file system with ACLs (ext4, btrfs, xfs, tmpfs)",
      required: false,
    };
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
