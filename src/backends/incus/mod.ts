/**
 * The Incus backend: Linux system containers driven through the Incus REST API (local unix
 * socket or remote HTTPS), no `incus` CLI.
 *
 * Suspend is Incus' freeze: the container's processes are paused in place with their memory
 * (cgroup freezer), and `start` thaws them; so `capabilities.suspend` is true. A frozen
 * container does not survive a host reboot (neither does a suspended VM without a saved
 * state file), and it keeps its IP address.
 *
 * Shares are `disk` devices applied by `start`, never shifted; the container's own unprivileged
 * ids get access through ACLs (`share_access.ts`); `mountShares` has nothing left to do.
 *
 * Egress (`capabilities.egress`): the policy is kept in the instance's config and enforced on
 * the host with nftables on the container's NICs (egress.ts); `start` applies it again to the
 * new veth, `delete` removes it. Local socket only (nft runs on this host, as root).
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
  ImageStore,
  SandboxInfo,
  Share,
  ShellRequest,
  ShellSession,
  SshEndpoint,
  StartOptions,
  StopOptions,
  WaitOptions,
} from "../backend.ts";
import type { BackendContext } from "../backend.ts";
import type { Config } from "../../config/schema.ts";
import { type Clock, systemClock } from "../../lib/clock.ts";
import {
  ConflictError,
  errorMessage,
  InterruptedError,
  NotFoundError,
  RuntimeError,
  TachikomaError,
  TimeoutError,
  UnreachableError,
  UnsupportedError,
} from "../../lib/errors.ts";
import { EGRESS_CONFIG_KEY, HostNft, type HostNic, parseStoredPolicy } from "./egress.ts";
import { log } from "../../lib/log.ts";
import { applyShares } from "./apply_shares.ts";
import { type CommandRunner, defaultRunner } from "../../lib/process.ts";
import { IncusClient } from "./client.ts";
import { execCommand, type ExecContext, openShell } from "./exec.ts";
import { pullFile, pushFile } from "./files.ts";
import { type ImageStoreOptions, incusImageStore, instanceSource } from "./image_store.ts";
import {
  createBody,
  type IncusInstance,
  type IncusInstanceState,
  instancePath,
  ipv4Addresses,
  leasedAddresses,
  mapStatus,
  toInfo,
} from "./instances.ts";
import { imageServersOf, type IncusSettings, incusSettings } from "./settings.ts";
import { checkShares, type Ids } from "./shares.ts";
import {
  cloneInstance,
  createCheckpoint,
  deleteCheckpoint,
  listCheckpoints,
  restoreCheckpoint,
} from "./snapshots.ts";

export { IncusClient, type IncusEndpoint } from "./client.ts";
export { imageServersOf, type IncusSettings, incusSettings } from "./settings.ts";

/** The longest pause between two polls for a sandbox's IPv4 address. */
const ADDRESS_POLL_MAX_MS = 250;

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
  /** Runs setfacl/getfacl for shares (default: the real programs). */
  runner?: CommandRunner;
  /** Budget of one background operation (default 120 s). */
  operationTimeoutMs?: number;
  /** Default graceful stop budget (default 30 s). */
  stopTimeoutMs?: number;
  /** The host nftables table of the egress chains (default `tachikoma_egress`; tests). */
  egressTable?: string;
}

const GUEST_IDS: Ids = { uid: 1000, gid: 1000 };

/** Incus as a sandbox engine. */
export class IncusBackend implements Backend {
  readonly name = "incus";
  readonly capabilities: Capabilities = {
    suspend: true,
    checkpoints: true,
    clone: true,
    egress: true,
    pty: true,
    files: true,
    execOverSsh: false,
  };
  readonly client: IncusClient;
  readonly settings: IncusSettings;
  readonly #clock: Clock;
  readonly #hostIds: Ids | null;
  readonly #guest: Ids;
  readonly #runner: CommandRunner;
  readonly #opTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  readonly #egressTable: string | undefined;

  constructor(client: IncusClient, settings: IncusSettings, options: IncusBackendOptions = {}) {
    this.client = client;
    this.settings = settings;
    this.#clock = options.clock ?? systemClock;
    this.#guest = options.guestIds ?? GUEST_IDS;
    this.#runner = options.runner ?? defaultRunner;
    this.#opTimeoutMs = options.operationTimeoutMs ?? 120_000;
    this.#stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
    this.#egressTable = options.egressTable;
    this.#hostIds = options.hostIds !== undefined
      ? options.hostIds
      : settings.endpoint.remote
      ? null
      : localIds();
    this.images = incusImageStore(this.#imageOptions());
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

  async list(): Promise<SandboxInfo[]> {
    const all = await this.client.get<IncusInstance[]>("/1.0/instances", {
      query: { recursion: "2" },
    });
    return all.map(toInfo);
  }

  /**
   * State comes from the instance document. For a running instance the addresses come from
   * the DHCP leases of its managed network (matched by MAC): a few milliseconds, where the
   * full state (`…/state`: processes, disk, OS info, network via a helper entering the
   * container) takes 40–100 ms on every CLI command. The instance's own view (`…/state`) is the
   * fallback when it has no lease (static address, unmanaged network), and the only source of
   * `list` and `waitForAddress`, so "has an address" always means the guest configured it.
   */
  async get(name: string): Promise<SandboxInfo> {
    const instance = await this.#instance(name);
    const info = toInfo(instance);
    if (info.state !== "running") return info;
    const leased = await leasedAddresses(this.client, instance);
    if (leased.length > 0) return { ...info, addresses: leased };
    return toInfo(await this.#instance(name, true));
  }

  async #instance(name: string, withState = false): Promise<IncusInstance> {
    return await this.client.get<IncusInstance>(instancePath(name), {
      query: withState ? { recursion: "1" } : {},
      subject: `sandbox "${name}"`,
    });
  }

  /** Base images: remote references pulled into the local store once, prepared images. */
  readonly images: ImageStore;

  #imageOptions(): ImageStoreOptions {
    return {
      client: this.client,
      servers: imageServersOf(this.settings),
      exec: () => this.#execContext(),
      sshUser: this.settings.sshUser,
      configuredImage: this.settings.image,
      publishTimeoutMs: this.#opTimeoutMs * 5,
    };
  }

  async create(name: string, options: CreateOptions): Promise<void> {
    const image = options.image;
    const source = await instanceSource(this.#imageOptions(), image);
    const body = createBody({
      name,
      image: options.label ?? image,
      source,
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
    await applyShares(
      {
        client: this.client,
        hostIds: this.#hostIds,
        guestIds: this.#guest,
        runner: this.#runner,
        operationTimeoutMs: this.#opTimeoutMs,
      },
      instance,
      response.etag,
      options.shares,
    );
    if (state === "running" || state === "starting") return;
    const action = state === "suspended" ? "unfreeze" : "start";
    try {
      await this.#setState(name, { action });
    } catch (error) {
      if (error instanceof ConflictError && /already running/i.test(error.message)) return;
      throw error;
    }
    // A restart gives the guest a new veth: its stored egress policy follows at once.
    if (parseStoredPolicy(instance.config?.[EGRESS_CONFIG_KEY])) {
      await this.#enforce(name).catch((error) => {
        if (!(error instanceof UnsupportedError)) throw error;
        log.warn(`${name}: egress is enforced by the proxy only: ${errorMessage(error)}`);
      });
    }
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
    // A container whose start just failed can still read as running for a moment: stop it
    // again and retry a few times before giving up.
    for (let attempt = 1;; attempt++) {
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
        if (!this.settings.endpoint.remote) {
          await this.#nft().unrestrict(name).catch((e) =>
            log.warn(`could not remove the egress rules of ${name}: ${errorMessage(e)}`)
          );
        }
        return;
      } catch (error) {
        if (error instanceof NotFoundError) return;
        const running = error instanceof ConflictError && /is running/i.test(error.message);
        if (!running || attempt >= 3) throw error;
        await this.#clock.sleep(500 * attempt);
      }
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
      // A local API call: an address seen up to 250 ms late costs more than the polls (DHCP
      // takes seconds; a 1 s cap made spawn wait ~0.5 s past the lease on average).
      if (poll > 10) delay = Math.min(ADDRESS_POLL_MAX_MS, Math.round(delay * 1.5));
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

  /** The stored policy; throws when a restricted policy is not in force on a running guest. */
  async getEgress(name: string): Promise<EgressPolicy> {
    const instance = await this.#instance(name);
    const policy = parseStoredPolicy(instance.config?.[EGRESS_CONFIG_KEY]) ??
      { mode: "unrestricted" as const, allow: [] };
    if (policy.mode !== "unrestricted" && mapStatus(instance.status) === "running") {
      const nft = this.#nft();
      if ((await nft.chains(name)).length === 0) {
        throw new RuntimeError(
          "egress_not_applied",
          `the ${policy.mode} egress policy of ${name} is not in force on the host`,
          { hint: `apply it again: tachikoma network set ${name} ${policy.mode}` },
        );
      }
    }
    return policy;
  }

  /**
   * Stores the policy in the instance and enforces it on the host now when the guest runs
   * (egress.ts); a stopped guest gets it when it starts.
   */
  async setEgress(name: string, policy: EgressPolicy): Promise<void> {
    this.#nft(); // refuses remote engines before anything changes
    await this.client.mutate("PATCH", instancePath(name), {
      body: { config: { [EGRESS_CONFIG_KEY]: JSON.stringify(policy) } },
      subject: `sandbox "${name}"`,
      timeoutMs: this.#opTimeoutMs,
    });
    await this.#enforce(name, policy);
  }

  #nft(): HostNft {
    if (this.settings.endpoint.remote) {
      throw new UnsupportedError(
        "egress enforcement on a remote Incus server is not supported (host nftables)",
        { hint: "the proxy enforces the policy for proxied traffic only" },
      );
    }
    return new HostNft(this.#runner, this.#egressTable);
  }

  /** Applies `policy` (or the stored one) to the running guest's NICs. */
  async #enforce(name: string, policy?: EgressPolicy | null): Promise<void> {
    if (this.settings.endpoint.remote) return;
    const nft = this.#nft();
    if (policy === undefined) {
      const instance = await this.#instance(name);
      policy = parseStoredPolicy(instance.config?.[EGRESS_CONFIG_KEY]);
    }
    if (!policy || policy.mode === "unrestricted") {
      if (policy || (await nft.chains(name)).length > 0) await nft.unrestrict(name);
      return;
    }
    const state = await this.client.get<IncusInstanceState>(`${instancePath(name)}/state`, {
      subject: `sandbox "${name}"`,
    });
    if (mapStatus(state.status) !== "running") return;
    const nics: HostNic[] = Object.entries(state.network ?? {})
      .filter(([nic, n]) => nic !== "lo" && typeof n?.host_name === "string" && n.host_name)
      .map(([nic, n]) => ({ nic, device: n.host_name! }));
    if (nics.length === 0) {
      throw new RuntimeError("egress_no_nic", `${name} has no host-side NIC to restrict`);
    }
    await nft.restrict({ instance: name, nics, proxy: policy.proxy ?? null });
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
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
