/**
 * The local Incus daemon as `tachikoma setup` and `doctor` see it: can its socket be reached
 * (missing, refused, permission denied), and its storage pools, networks and the default
 * profile — read, and created or extended when setup initialises Incus. Behind
 * {@link IncusAdmin} so the decision logic is tested with doubles; {@link SocketIncusAdmin} is
 * the real adapter over the REST API.
 *
 * @module
 */
import { IncusClient } from "./client.ts";
import { errorMessage } from "../../lib/errors.ts";

/** How the local socket answers. */
export type SocketState = "ok" | "missing" | "denied" | "down";

/** A storage pool. */
export interface PoolInfo {
  name: string;
  driver: string;
}

/** A network Incus knows. */
export interface NetworkInfo {
  name: string;
  managed: boolean;
  type: string;
  /** `ipv4.address` of a managed network, null when unset or `none`. */
  ipv4: string | null;
}

/** A profile's devices. */
export type Devices = Record<string, Record<string, string>>;

/** What setup reads and changes in the local Incus. */
export interface IncusAdmin {
  /** Where the socket is (for messages). */
  readonly where: string;
  /** Can the socket be used? `detail` says why not. */
  reach(): Promise<{ state: SocketState; detail: string }>;
  pools(): Promise<PoolInfo[]>;
  networks(): Promise<NetworkInfo[]>;
  /** The devices of a profile. */
  profileDevices(profile: string): Promise<Devices>;
  createPool(pool: PoolInfo): Promise<void>;
  /** Creates a managed bridge with this explicit `ipv4.address` (NAT on, no IPv6). */
  createBridge(name: string, ipv4: string): Promise<void>;
  /** Adds devices to a profile, keeping the others. */
  addProfileDevices(profile: string, devices: Devices): Promise<void>;
  close(): void;
}

interface ProfileDoc {
  description?: string;
  config?: Record<string, string>;
  devices?: Devices;
}

/** The real adapter: the local unix socket. */
export class SocketIncusAdmin implements IncusAdmin {
  readonly where: string;
  #client: IncusClient | null = null;

  constructor(private readonly socket: string, private readonly timeoutMs = 10_000) {
    this.where = socket;
  }

  async #api(): Promise<IncusClient> {
    this.#client ??= await IncusClient.open({ socket: this.socket });
    return this.#client;
  }

  async reach(): Promise<{ state: SocketState; detail: string }> {
    try {
      const info = await Deno.stat(this.socket);
      if (!info.isSocket) return { state: "missing", detail: `${this.socket} is not a socket` };
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        return { state: "missing", detail: `${this.socket} does not exist` };
      }
      if (error instanceof Deno.errors.PermissionDenied) {
        return { state: "denied", detail: `${this.socket}: permission denied` };
      }
      return { state: "down", detail: errorMessage(error) };
    }
    try {
      const api = await this.#api();
      const server = await api.get<{ auth?: string }>("/1.0", {
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      if (server.auth !== "trusted") {
        return { state: "denied", detail: `Incus does not trust this user (auth: ${server.auth})` };
      }
      return { state: "ok", detail: this.socket };
    } catch (error) {
      const text = `${errorMessage(error)} ${String((error as { cause?: unknown }).cause ?? "")}`;
      if (/permission denied|os error 13/i.test(text)) {
        return { state: "denied", detail: `${this.socket}: permission denied` };
      }
      return { state: "down", detail: errorMessage(error) };
    }
  }

  async pools(): Promise<PoolInfo[]> {
    const list = await (await this.#api()).get<{ name: string; driver: string }[]>(
      "/1.0/storage-pools",
      { query: { recursion: "1" } },
    );
    return list.map((p) => ({ name: p.name, driver: p.driver }));
  }

  async networks(): Promise<NetworkInfo[]> {
    const list = await (await this.#api()).get<
      { name: string; managed: boolean; type: string; config?: Record<string, string> }[]
    >("/1.0/networks", { query: { recursion: "1" } });
    return list.map((n) => {
      const v4 = n.config?.["ipv4.address"];
      return {
        name: n.name,
        managed: n.managed,
        type: n.type,
        ipv4: v4 && v4 !== "none" ? v4 : null,
      };
    });
  }

  async profileDevices(profile: string): Promise<Devices> {
    const doc = await (await this.#api()).get<ProfileDoc>(
      `/1.0/profiles/${encodeURIComponent(profile)}`,
      { subject: `profile "${profile}"` },
    );
    return doc.devices ?? {};
  }

  async createPool(pool: PoolInfo): Promise<void> {
    await (await this.#api()).mutate("POST", "/1.0/storage-pools", {
      body: { name: pool.name, driver: pool.driver, config: {} },
      subject: `storage pool "${pool.name}"`,
    });
  }

  async createBridge(name: string, ipv4: string): Promise<void> {
    await (await this.#api()).mutate("POST", "/1.0/networks", {
      body: {
        name,
        type: "bridge",
        config: { "ipv4.address": ipv4, "ipv4.nat": "true", "ipv6.address": "none" },
      },
      subject: `network "${name}"`,
    });
  }

  async addProfileDevices(profile: string, devices: Devices): Promise<void> {
    const api = await this.#api();
    const path = `/1.0/profiles/${encodeURIComponent(profile)}`;
    const current = await api.call<ProfileDoc>("GET", path, { subject: `profile "${profile}"` });
    const doc = current.metadata;
    await api.mutate("PUT", path, {
      body: {
        description: doc.description ?? "",
        config: doc.config ?? {},
        devices: { ...doc.devices, ...devices },
      },
      headers: current.etag ? { "If-Match": current.etag } : {},
      subject: `profile "${profile}"`,
    });
  }

  close(): void {
    this.#client?.close();
    this.#client = null;
  }
}
