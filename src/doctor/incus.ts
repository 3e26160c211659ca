/**
 * `tachikoma doctor`'s Incus checks: the API is reachable and trusts us, the extensions the
 * backend uses exist, the storage pool and network sandboxes land on are there, the image
 * exists, and host files can be shared with the right owner. Each check is independent and
 * never throws; every request has a short deadline.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { errorMessage, TachikomaError } from "../lib/errors.ts";
import { IncusClient } from "../backends/incus/client.ts";
import { incusSettings } from "../backends/incus/mod.ts";
import { imageSource } from "../backends/incus/instances.ts";
import { delegatedToRoot, ownershipPlan } from "../backends/incus/shares.ts";
import type { CheckResult } from "./check.ts";

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
  /** The invoking user's ids (default: this process'). */
  hostIds?: { uid: number; gid: number } | null;
  /** Reads `/etc/subuid`-style files (default: the real files). */
  readFile?: (path: string) => Promise<string>;
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
    results.push(await imageCheck(get, settings.image ?? config.base_image));
    if (!settings.endpoint.remote) {
      results.push(
        await ownershipCheck(
          server,
          options.hostIds === undefined ? localIds() : options.hostIds,
          options,
        ),
      );
    }
  } finally {
    client.close();
  }
  return results;
}

type Getter = <T>(path: string, subject?: string) => Promise<T>;

async function poolCheck(
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
      message:
        "no storage pool: [incus] storage_pool is unset and the default profile has no root disk",
      hint:
        "set [incus] storage_pool, or: incus profile device add default root disk path=/ pool=<pool>",
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

async function networkCheck(
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
      message: "no network: [incus] network is unset and the default profile has no NIC",
      hint:
        "set [incus] network, or add a bridge with an explicit ipv4.address to the default profile",
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

async function imageCheck(get: Getter, image: string): Promise<CheckResult> {
  const name = "incus image";
  const source = imageSource(image);
  if (source.server) {
    return { name, ok: true, message: `${image} (downloaded from ${source.server} on first use)` };
  }
  try {
    if (source.fingerprint) {
      const info = await get<{ fingerprint: string }>(
        `/1.0/images/${source.fingerprint}`,
        `image "${image}"`,
      );
      return { name, ok: true, message: `${image} (${info.fingerprint.slice(0, 12)})` };
    }
    const alias = await get<{ target: string }>(
      `/1.0/images/aliases/${encodeURIComponent(image)}`,
      `image "${image}"`,
    );
    return { name, ok: true, message: `${image} (${alias.target.slice(0, 12)})` };
  } catch (error) {
    return {
      name,
      ok: false,
      message: errorMessage(error),
      hint:
        "import one (incus image import <tarball> --alias <name>) and set [incus] image or base_image",
      required: false,
    };
  }
}

async function ownershipCheck(
  server: ServerInfo,
  host: { uid: number; gid: number } | null,
  options: IncusCheckOptions,
): Promise<CheckResult> {
  const name = "incus shares";
  const idmapped = server.environment?.kernel_features?.idmapped_mounts === "true";
  const plan = ownershipPlan(host, { uid: 1000, gid: 1000 }, idmapped);
  if (plan.kind === "shift") {
    return {
      name,
      ok: true,
      message: host?.uid === 0
        ? "idmapped mounts; as root, the guest user writes shared files as uid 1000"
        : "idmapped mounts (host uid 1000 is the guest user)",
    };
  }
  if (plan.kind === "none") {
    return {
      name,
      ok: false,
      message: `worktree shares unavailable: ${plan.reason}`,
      required: false,
    };
  }
  const read = options.readFile ?? ((p: string) => Deno.readTextFile(p));
  const missing: string[] = [];
  for (const [file, id] of [["/etc/subuid", host!.uid], ["/etc/subgid", host!.gid]] as const) {
    try {
      if (!delegatedToRoot(await read(file), id)) missing.push(`"root:${id}:1" to ${file}`);
    } catch (error) {
      return {
        name,
        ok: false,
        message: `cannot read ${file}: ${errorMessage(error)}`,
        required: false,
      };
    }
  }
  if (missing.length > 0) {
    return {
      name,
      ok: false,
      message: `host uid ${
        host!.uid
      } is not delegated to Incus: shared worktrees would not be writable`,
      hint: `add ${missing.join(" and ")}, then restart incusd`,
      required: false,
    };
  }
  return { name, ok: true, message: `raw.idmap maps host uid ${host!.uid} to the guest user` };
}

function localIds(): { uid: number; gid: number } | null {
  const uid = Deno.uid();
  const gid = Deno.gid();
  return uid === null || gid === null ? null : { uid, gid };
}
