/**
 * Incus instance documents: their shape, how they map to {@link SandboxInfo}, and the body
 * that creates one.
 *
 * @module
 */
import type { SandboxInfo, SandboxState } from "../backend.ts";
import type { IncusClient } from "./client.ts";
import type { Device } from "./shares.ts";

/** One address of an instance network interface. */
export interface IncusAddress {
  family: string;
  address: string;
  netmask?: string;
  scope: string;
}

/** `state` of an instance (`GET …/state`, or inlined with recursion). */
export interface IncusInstanceState {
  status: string;
  status_code: number;
  pid?: number;
  network?:
    | Record<
      string,
      { addresses?: IncusAddress[]; hwaddr?: string; type?: string; host_name?: string }
    >
    | null;
}

/** An instance (`GET /1.0/instances/<n>`; `state` present with recursion). */
export interface IncusInstance {
  name: string;
  status: string;
  status_code: number;
  type?: string;
  created_at?: string;
  architecture?: string;
  description?: string;
  ephemeral?: boolean;
  stateful?: boolean;
  profiles?: string[];
  config: Record<string, string>;
  devices: Record<string, Device>;
  expanded_config?: Record<string, string>;
  expanded_devices?: Record<string, Device>;
  state?: IncusInstanceState | null;
}

/** The API path of an instance. */
export function instancePath(name: string): string {
  return `/1.0/instances/${encodeURIComponent(name)}`;
}

/** Config key recording the image a sandbox was made from. */
export const IMAGE_KEY = "user.tachikoma.image";

/** Incus status → sandbox state. */
export function mapStatus(status: string): SandboxState {
  switch (status) {
    case "Running":
    case "Ready":
    case "Thawed":
      return "running";
    case "Stopped":
      return "stopped";
    case "Frozen":
      return "suspended";
    case "Starting":
      return "starting";
    case "Stopping":
    case "Aborting":
    case "Freezing":
      return "stopping";
    default:
      return "unknown";
  }
}

/**
 * Host-reachable IPv4 addresses: every non-`lo` interface's `inet` addresses with global
 * scope, `eth0` first, then by interface name.
 */
export function ipv4Addresses(state: IncusInstanceState | null | undefined): string[] {
  const network = state?.network;
  if (!network) return [];
  const names = Object.keys(network).filter((n) => n !== "lo").sort((a, b) =>
    a === "eth0" ? -1 : b === "eth0" ? 1 : a.localeCompare(b)
  );
  const out: string[] = [];
  for (const name of names) {
    for (const a of network[name].addresses ?? []) {
      if (a.family === "inet" && a.scope === "global" && !out.includes(a.address)) {
        out.push(a.address);
      }
    }
  }
  return out;
}

/** One DHCP lease of a managed network (`GET /1.0/networks/<n>/leases`). */
export interface IncusLease {
  hostname: string;
  hwaddr: string;
  address: string;
  type: string;
}

/**
 * The managed networks an instance's NICs sit on, with each NIC's MAC address
 * (`volatile.<nic>.hwaddr`), `eth0` first.
 */
export function nicNetworks(instance: IncusInstance): { network: string; hwaddr: string }[] {
  const devices = instance.expanded_devices ?? instance.devices;
  const names = Object.keys(devices).filter((d) => devices[d].type === "nic").sort((a, b) =>
    a === "eth0" ? -1 : b === "eth0" ? 1 : a.localeCompare(b)
  );
  const out: { network: string; hwaddr: string }[] = [];
  for (const d of names) {
    const network = devices[d].network ?? devices[d].parent;
    const hwaddr = instance.config[`volatile.${d}.hwaddr`] ?? devices[d].hwaddr;
    if (network && hwaddr) out.push({ network, hwaddr: hwaddr.toLowerCase() });
  }
  return out;
}

/** IPv4 addresses leased to `hwaddr`. */
export function leasedIpv4(leases: IncusLease[], hwaddr: string): string[] {
  return leases.filter((l) =>
    l.hwaddr.toLowerCase() === hwaddr && (l.type === "dynamic" || l.type === "static") &&
    /^\d+\.\d+\.\d+\.\d+$/.test(l.address)
  ).map((l) => l.address);
}

/**
 * The IPv4 addresses a running instance's NICs hold according to the DHCP leases of their
 * managed networks (a few ms; the instance's own state view costs 40–100 ms). Empty when no
 * lease matches or a network has no leases (unmanaged): callers then ask the instance.
 */
export async function leasedAddresses(
  client: IncusClient,
  instance: IncusInstance,
): Promise<string[]> {
  const out: string[] = [];
  const cache = new Map<string, Promise<IncusLease[]>>();
  for (const nic of nicNetworks(instance)) {
    let leases = cache.get(nic.network);
    if (!leases) {
      leases = client.get<IncusLease[]>(`/1.0/networks/${encodeURIComponent(nic.network)}/leases`)
        .catch(() => []);
      cache.set(nic.network, leases);
    }
    for (const a of leasedIpv4(await leases, nic.hwaddr)) if (!out.includes(a)) out.push(a);
  }
  return out;
}

/** An instance document → what the backend interface reports. */
export function toInfo(instance: IncusInstance): SandboxInfo {
  const state = instance.state;
  const info: SandboxInfo = {
    name: instance.name,
    state: mapStatus(state?.status ?? instance.status),
    addresses: ipv4Addresses(state),
  };
  // In a list, an instance Incus is creating or deleting meanwhile comes with `config: null`
  // (seen on the shared lab): report it by name and status, never crash the whole list.
  const config: Record<string, string> = instance.config ?? {};
  const image = config[IMAGE_KEY] ?? config["image.description"];
  if (image) info.image = image;
  if (instance.created_at) info.createdAt = instance.created_at;
  return info;
}

/** Inputs of {@link createBody}. */
export interface CreateSpec {
  name: string;
  /** The reference as configured (recorded on the instance). */
  image: string;
  /** Where the root file system comes from (`imageSource`, or a pulled image's fingerprint). */
  source: Record<string, string>;
  cpus: number;
  memoryMb: number;
  storagePool?: string;
  network?: string;
  diskGb?: number;
}

/** The image source of a create request for a local alias or (partial) fingerprint. */
export function imageSource(
  ref: { kind: "alias"; alias: string } | { kind: "fingerprint"; fingerprint: string },
): Record<string, string> {
  return ref.kind === "fingerprint"
    ? { type: "image", fingerprint: ref.fingerprint }
    : { type: "image", alias: ref.alias };
}

/** The body of `POST /1.0/instances` creating a stopped container. */
export function createBody(spec: CreateSpec): Record<string, unknown> {
  const devices: Record<string, Device> = {};
  if (spec.storagePool) {
    // A root device of our own needs its pool; without [incus] storage_pool the profile's
    // root device applies as is (and a disk size cannot be set).
    devices.root = { type: "disk", path: "/", pool: spec.storagePool };
    if (spec.diskGb) devices.root.size = `${spec.diskGb}GiB`;
  }
  if (spec.network) devices.eth0 = { type: "nic", name: "eth0", network: spec.network };
  return {
    name: spec.name,
    type: "container",
    source: spec.source,
    config: {
      "limits.cpu": String(spec.cpus),
      "limits.memory": `${spec.memoryMb}MiB`,
      [IMAGE_KEY]: spec.image,
    },
    devices,
    start: false,
  };
}

/** The instance config a clone starts with: the source's minus every `volatile.*` key. */
export function cloneConfig(config: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(config)) if (!k.startsWith("volatile.")) out[k] = v;
  return out;
}
