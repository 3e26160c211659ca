/**
 * The Incus backend: Linux system containers driven through the Incus REST API (local unix
 * socket or remote HTTPS), no `incus` CLI.
 *
 * Suspend is Incus' freeze: the container's processes are paused in place with their memory
 * (cgroup freezer), and `start` thaws them; so `capabilities.suspend` is true. A frozen
 * container does not survive a host reboot (neither does a suspended VM without a saved
 * state file), and it keeps its IP address.
 *
 * Shares are `disk` devices applied by `start` (see `shares.ts` for ownership); `mountShares`
 * has nothing left to do. Egress policy is not implemented on this engine yet
 * (`capabilities.egress` false: the guest-side proxy configuration applies).
 *
 * @module
 */
import type {
  Backend,
  Capabilities,
  Checkpoint,
  CloneSource,
  CreateOptions,
  EgressPolicy,
  ExecRequest,
  ExecResult,
  FileOptions,
  SandboxInfo,
  Share,
  ShellRequest,
  ShellSession,
  SshEndpoint,
  StartOptions,
  StopOptions,
  WaitOptions,
} from "../backend.ts";
import type { BackendContext } from "../mod.ts";
import type { Config } from "../../config/schema.ts";
import { type Clock, systemClock } from "../../core/clock.ts";
import {
  ConfigError,
  ConflictError,
  InterruptedError,
  NotFoundError,
  TachikomaError,
  TimeoutError,
  UnreachableError,
  UnsupportedError,
} from "../../core/errors.ts";
import { log } from "../../core/log.ts";
import { IncusClient, type IncusEndpoint } from "./client.ts";
import { execCommand, type ExecContext, openShell } from "./exec.ts";
import { pullFile, pushFile } from "./files.ts";
import {
  createBody,
  type IncusInstance,
  type IncusInstanceState,
  instancePath,
  ipv4Addresses,
  mapStatus,
  toInfo,
} from "./instances.ts";
import {
  checkShares,
  delegatedToRoot,
  type Ids,
  type OwnershipPlan,
  ownershipPlan,
  sameDevices,
  SHARE_DEVICE_PREFIX,
  withShares,
} from "./shares.ts";
import {
  cloneInstance,
  createCheckpoint,
  deleteCheckpoint,
  listCheckpoints,
  restoreCheckpoint,
} from "./snapshots.ts";

export { IncusClient, type IncusEndpoint } from "./client.ts";

/** What the backend takes from the configuration. */
export interface IncusSettings {
  endpoint: IncusEndpoint;
  /** `[incus] image`: overrides the image passed to `create` (`base_image`). */
  image?: string;
  cpus: number;
  memoryMb: number;
  storagePool?: string;
  network?: string;
  /** The sandbox user (`ssh_user`). */
  sshUser: string;
  sshPort: number;
}

/** The backend's settings from a validated config. */
export function incusSettings(config: Config): IncusSettings {
  const i = config.incus;
  return {
    endpoint: {
      socket: i.socket,
      remote: i.remote,
      clientCert: i.client_cert,
      clientKey: i.client_key,
      serverCert: i.server_cert,
      project: i.project,
    },
    image: i.image,
    cpus: config.vm_cpus,
    memoryMb: config.vm_memory,
    storagePool: i.storage_pool,
    network: i.network,
    sshUser: config.ssh_user,
    sshPort: config.ssh_port,
  };
}

/** Test and tuning seams. */
export interface IncusBackendOptions {
  clock?: Clock;
  /**
   * The invoking host user, whose files the shares expose (default: this process' uid/gid;
   * null in remote mode, where host paths are not the server's).
   */
  hostIds?: Ids | null;
  /** The sandbox user's ids (default 1000/1000). */
  guestIds?: Ids;
  /** Budget of one background operation (default 120 s). */
  operationTimeoutMs?: number;
  /** Default graceful stop budget (default 30 s). */
  stopTimeoutMs?: number;
}

/** What `GET /1.0` tells us. */
interface ServerInfo {
  api_extensions: string[];
  environment?: { kernel_features?: Record<string, string>; server_version?: string };
}

const GUEST_IDS: Ids = { uid: 1000, gid: 1000 };

/** Incus as a sandbox engine. */
export class IncusBackend implements Backend {
  readonly name = "incus";
  readonly capabilities: Capabilities = {
    suspend: true,
    checkpoints: true,
    clone: true,
    egress: false,
    pty: true,
    files: true,
  };
  readonly client: IncusClient;
  readonly settings: IncusSettings;
  readonly #clock: Clock;
  readonly #hostIds: Ids | null;
  readonly #guest: Ids;
  readonly #opTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  #server?: Promise<ServerInfo>;

  constructor(client: IncusClient, settings: IncusSettings, options: IncusBackendOptions = {}) {
    this.client = client;
    this.settings = settings;
    this.#clock = options.clock ?? systemClock;
    this.#guest = options.guestIds ?? GUEST_IDS;
    this.#opTimeoutMs = options.operationTimeoutMs ?? 120_000;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
    this.#hostIds = options.hostIds !== undefined
      ? options.hostIds
      : settings.endpoint.remote
      ? null
      : localIds();
  }

  #execContext(): ExecContext {
    return {
      client: this.client,
      clock: this.#clock,
      sshUser: this.settings.sshUser,
      guestUid: this.#guest.uid,
      guestGid: this.#guest.gid,
    };
  }

  /** Server info (`GET /1.0`), fetched once. */
  server(): Promise<ServerInfo> {
    this.#server ??= this.client.get<ServerInfo>("/1.0").catch((error) => {
      this.#server = undefined;
      throw error;
    });
    return this.#server;
  }

  async list(): Promise<SandboxInfo[]> {
    const all = await this.client.get<IncusInstance[]>("/1.0/instances", {
      query: { recursion: "2" },
    });
    return all.map(toInfo);
  }

  async get(name: string): Promise<SandboxInfo> {
    return toInfo(await this.#instance(name, true));
  }

  async #instance(name: string, withState = false): Promise<IncusInstance> {
    return await this.client.get<IncusInstance>(instancePath(name), {
      query: withState ? { recursion: "1" } : {},
      subject: `sandbox "${name}"`,
    });
  }

  async create(name: string, options: CreateOptions): Promise<void> {
    const image = this.settings.image ?? options.image;
    const body = createBody({
      name,
      image,
      cpus: options.cpus ?? this.settings.cpus,
      memoryMb: options.memoryMb ?? this.settings.memoryMb,
      storagePool: this.settings.storagePool,
      network: this.settings.network,
      diskGb: options.diskGb,
    });
    try {
      await this.client.mutate("POST", "/1.0/instances", {
        body,
        subject: `sandbox "${name}"`,
        timeoutMs: this.#opTimeoutMs,
      });
    } catch (error) {
      if (
        error instanceof TachikomaError &&
        /image not provided|image.*not found/i.test(error.message)
      ) {
        throw new NotFoundError(`image "${image}" not found in Incus at ${this.client.where}`, {
          hint: "import it (incus image import <tarball> --alias <name>) or set [incus] image / " +
            "base_image to an alias or fingerprint listed by `incus image list`",
        });
      }
      throw error;
    }
  }

  async clone(name: string, source: CloneSource): Promise<void> {
    await cloneInstance(this.client, name, source);
  }

  async start(name: string, options: StartOptions): Promise<void> {
    checkShares(options.shares);
    const response = await this.client.call<IncusInstance>("GET", instancePath(name), {
      subject: `sandbox "${name}"`,
    });
    const instance = response.metadata;
    const state = mapStatus(instance.status);
    await this.#applyShares(instance, response.etag, options.shares, state === "stopped");
    if (state === "running" || state === "starting") return;
    const action = state === "suspended" ? "unfreeze" : "start";
    try {
      await this.#setState(name, { action });
    } catch (error) {
      if (error instanceof ConflictError && /already running/i.test(error.message)) return;
      throw error;
    }
  }

  async #plan(): Promise<OwnershipPlan> {
    const server = await this.server();
    const idmapped = server.environment?.kernel_features?.idmapped_mounts === "true";
    return ownershipPlan(this.#hostIds, this.#guest, idmapped);
  }

  /** Puts the share devices (and the idmap they need) on the instance when they differ. */
  async #applyShares(
    instance: IncusInstance,
    etag: string | undefined,
    shares: Share[],
    stopped: boolean,
  ): Promise<void> {
    const hasOurs = Object.keys(instance.devices).some((k) => k.startsWith(SHARE_DEVICE_PREFIX));
    if (shares.length === 0 && !hasOurs) return;
    let plan: OwnershipPlan = { kind: "none", reason: "no shares" };
    if (shares.length > 0) {
      if (!this.#hostIds) {
        throw new UnsupportedError(
          `sandbox "${instance.name}": host directories cannot be shared with a remote Incus ` +
            `server (${this.client.where})`,
          { hint: "use the local socket ([incus] socket) to share the worktree" },
        );
      }
      plan = await this.#plan();
      if (plan.kind === "none") log.warn(`shares of ${instance.name}: ${plan.reason}`);
      if (plan.kind === "idmap") await this.#checkDelegation(instance.name);
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
    await this.client.mutate("PUT", instancePath(instance.name), {
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
      timeoutMs: this.#opTimeoutMs,
    });
  }

  /** Fails early, saying what to do, when the host ids are not delegated to Incus. */
  async #checkDelegation(name: string): Promise<void> {
    const ids = this.#hostIds;
    if (!ids) return;
    const missing: string[] = [];
    for (const [file, id] of [["/etc/subuid", ids.uid], ["/etc/subgid", ids.gid]] as const) {
      let text: string;
      try {
        text = await Deno.readTextFile(file);
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

  async #setState(name: string, body: Record<string, unknown>, timeoutMs = this.#opTimeoutMs) {
    await this.client.mutate("PUT", `${instancePath(name)}/state`, {
      body,
      subject: `sandbox "${name}"`,
      timeoutMs,
    });
  }

  async stop(name: string, options: StopOptions = {}): Promise<void> {
    const instance = await this.#instance(name);
    const state = mapStatus(instance.status);
    if (state === "stopped") return;
    const budget = options.timeoutMs ?? this.#stopTimeoutMs;
    if (!options.force) {
      try {
        if (state === "suspended") await this.#setState(name, { action: "unfreeze" });
        await this.#setState(
          name,
          { action: "stop", timeout: Math.max(1, Math.ceil(budget / 1000)), force: false },
          budget + 15_000,
        );
        return;
      } catch (error) {
        if (alreadyStopped(error)) return;
        if (error instanceof NotFoundError) throw error;
        log.debug(`incus: graceful stop of ${name} failed (${String(error)}); forcing`);
      }
    }
    try {
      await this.#setState(name, { action: "stop", force: true });
    } catch (error) {
      if (!alreadyStopped(error)) throw error;
    }
  }

  async suspend(name: string): Promise<void> {
    const instance = await this.#instance(name);
    const state = mapStatus(instance.status);
    if (state === "suspended") return;
    if (state !== "running") {
      throw new ConflictError(
        `sandbox "${name}" is ${state}: only a running sandbox can be suspended`,
      );
    }
    await this.#setState(name, { action: "freeze" });
  }

  async delete(name: string): Promise<void> {
    try {
      await this.#setState(name, { action: "stop", force: true });
    } catch (error) {
      if (error instanceof NotFoundError) return;
      if (!alreadyStopped(error)) throw error;
    }
    try {
      await this.client.mutate("DELETE", instancePath(name), {
        subject: `sandbox "${name}"`,
        timeoutMs: this.#opTimeoutMs,
      });
    } catch (error) {
      if (error instanceof NotFoundError) return;
      throw error;
    }
  }

  async waitForAddress(name: string, options: WaitOptions): Promise<string> {
    const { clock, deadline, signal } = options;
    let delay = 100;
    for (let poll = 1;; poll++) {
      if (signal?.aborted) throw signal.reason ?? new InterruptedError();
      const state = await this.client.get<IncusInstanceState>(`${instancePath(name)}/state`, {
        subject: `sandbox "${name}"`,
        signal,
      });
      const addresses = ipv4Addresses(state);
      if (addresses.length > 0) return addresses[0];
      if (mapStatus(state.status) === "stopped") {
        throw new ConflictError(`sandbox "${name}" is stopped: it will not get an address`, {
          hint: `tachikoma spawn starts it again`,
        });
      }
      const now = clock.now();
      if (now >= deadline) {
        throw new TimeoutError(`sandbox "${name}" has no IPv4 address yet (gave up waiting)`, {
          hint: "check the Incus network (DHCP on the bridge): tachikoma doctor",
        });
      }
      if (poll > 10) delay = Math.min(1000, Math.round(delay * 1.5));
      await clock.sleep(Math.min(delay, deadline - now), signal);
    }
  }

  async sshEndpoint(name: string): Promise<SshEndpoint> {
    const info = await this.get(name);
    const host = info.addresses[0];
    if (!host) {
      throw new UnreachableError(`sandbox "${name}" has no IPv4 address (${info.state})`, {
        hint: info.state === "running"
          ? "wait for its network, or: tachikoma doctor"
          : `start it first`,
      });
    }
    return { host, port: this.settings.sshPort };
  }

  /** Shares are disk devices attached by `start`: nothing to do in the guest. */
  async mountShares(_name: string, _shares: Share[]): Promise<void> {}

  exec(name: string, request: ExecRequest): Promise<ExecResult> {
    return execCommand(this.#execContext(), name, request);
  }

  shell(name: string, request: ShellRequest): Promise<ShellSession> {
    return openShell(this.#execContext(), name, request);
  }

  pushFile(name: string, path: string, data: Uint8Array, options?: FileOptions): Promise<void> {
    return pushFile(this.#fileContext(), name, path, data, options);
  }

  pullFile(name: string, path: string): Promise<Uint8Array> {
    return pullFile(this.#fileContext(), name, path);
  }

  #fileContext() {
    return { client: this.client, guestUid: this.#guest.uid, guestGid: this.#guest.gid };
  }

  createCheckpoint(name: string, checkpoint: string): Promise<Checkpoint> {
    return createCheckpoint(this.client, name, checkpoint);
  }

  listCheckpoints(name: string): Promise<Checkpoint[]> {
    return listCheckpoints(this.client, name);
  }

  restoreCheckpoint(name: string, checkpoint: string): Promise<void> {
    return restoreCheckpoint(this.client, name, checkpoint);
  }

  deleteCheckpoint(name: string, checkpoint: string): Promise<void> {
    return deleteCheckpoint(this.client, name, checkpoint);
  }

  getEgress(_name: string): Promise<EgressPolicy> {
    return Promise.reject(egressUnsupported());
  }

  setEgress(_name: string, _policy: EgressPolicy): Promise<void> {
    return Promise.reject(egressUnsupported());
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}

function egressUnsupported(): UnsupportedError {
  return new UnsupportedError("the incus backend has no engine-level egress policy yet", {
    hint: "egress is enforced by the guest's proxy settings on this backend",
  });
}

function alreadyStopped(error: unknown): boolean {
  return error instanceof ConflictError && /already stopped|not running/i.test(error.message);
}

function localIds(): Ids | null {
  try {
    const uid = Deno.uid();
    const gid = Deno.gid();
    return uid === null || gid === null ? null : { uid, gid };
  } catch {
    return null;
  }
}

/** Opens the Incus backend from the configuration. Makes no request until first used. */
export async function openIncus(
  config: Config,
  _context: BackendContext,
  options: IncusBackendOptions = {},
): Promise<IncusBackend> {
  const settings = incusSettings(config);
  const client = await IncusClient.open(settings.endpoint);
  return new IncusBackend(client, settings, options);
}
