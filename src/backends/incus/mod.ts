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
 * This module loads statically only what `exec` and `get` need (the client, the instance
 * documents, the exec path): that is what `Engine.preload` loads while the configuration does.
 * The rest — lifecycle, images, checkpoints and clones, egress, files, PTY sessions — is imported
 * by the method that needs it, on its first call (about 1 ms each, on rare paths).
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
  ImageStore,
  PushedFile,
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
import { UnreachableError } from "../../lib/errors.ts";
import { type CommandRunner, defaultRunner } from "../../lib/process.ts";
import { IncusClient } from "./client.ts";
import { fetchInstance, type IncusContext } from "./context.ts";
import { execCommand } from "./exec.ts";
import type { ExecContext } from "./exec_ops.ts";
import type { ImageStoreOptions } from "./image_store.ts";
import { type IncusInstance, leasedAddresses, toInfo } from "./instances.ts";
import { imageServersOf, type IncusSettings, incusSettings } from "./settings.ts";
import type { Ids } from "./shares.ts";

export { IncusClient, type IncusEndpoint } from "./client.ts";
export { imageServersOf, type IncusSettings, incusSettings } from "./settings.ts";

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
    mountHost: true,
  };
  readonly client: IncusClient;
  readonly settings: IncusSettings;
  readonly #ctx: IncusContext;

  constructor(client: IncusClient, settings: IncusSettings, options: IncusBackendOptions = {}) {
    this.client = client;
    this.settings = settings;
    this.#ctx = {
      client,
      settings,
      clock: options.clock ?? systemClock,
      guestIds: options.guestIds ?? GUEST_IDS,
      runner: options.runner ?? defaultRunner,
      operationTimeoutMs: options.operationTimeoutMs ?? 120_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 30_000,
      egressTable: options.egressTable,
      hostIds: options.hostIds !== undefined
        ? options.hostIds
        : settings.endpoint.remote
        ? null
        : localIds(),
      imageOptions: () => this.#imageOptions(),
    };
    this.capabilities = { ...this.capabilities, mountHost: !settings.endpoint.remote };
    this.images = lazyImageStore(() => this.#imageOptions());
  }

  #execContext(): ExecContext {
    return {
      client: this.client,
      clock: this.#ctx.clock,
      sshUser: this.settings.sshUser,
      guestUid: this.#ctx.guestIds.uid,
      guestGid: this.#ctx.guestIds.gid,
    };
  }

  async list(): Promise<SandboxInfo[]> {
    const all = await this.client.get<IncusInstance[]>("/1.0/instances", {
      query: { recursion: "2" },
    });
    return all.map(toInfo);
  }

  /** Names only (`recursion=0`): no state, so no helper enters each container. */
  async listNames(): Promise<string[]> {
    const urls = await this.client.get<string[]>("/1.0/instances");
    return urls.map((url) => decodeURIComponent(url.split("?")[0].split("/").pop() ?? ""))
      .filter((name) => name !== "");
  }

  /**
   * State comes from the instance document. For a running instance the addresses come from
   * the DHCP leases of its managed network (matched by MAC): a few milliseconds, where the
   * full state (`…/state`: processes, disk, OS info, network via a helper entering the
   * container) takes 40–100 ms on every CLI command. The instance's own view (`…/state`) is the
   * fallback when it has no lease (static address, unmanaged network), and the only source of
   * `list` and of `waitForAddress`'s answer (which reads it when a lease shows up), so "has an
   * address" always means the guest configured it.
   */
  async get(name: string): Promise<SandboxInfo> {
    const instance = await fetchInstance(this.#ctx, name);
    const info = toInfo(instance);
    if (info.state !== "running") return info;
    const leased = await leasedAddresses(this.client, instance);
    if (leased.length > 0) return { ...info, addresses: leased };
    return toInfo(await fetchInstance(this.#ctx, name, true));
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
      publishTimeoutMs: this.#ctx.operationTimeoutMs * 5,
    };
  }

  async create(name: string, options: CreateOptions): Promise<void> {
    await (await import("./lifecycle.ts")).createInstance(this.#ctx, name, options);
  }

  async clone(name: string, source: CloneSource): Promise<void> {
    await (await import("./snapshots.ts")).cloneInstance(this.client, name, source);
  }

  async start(name: string, options: StartOptions): Promise<void> {
    await (await import("./lifecycle.ts")).startInstance(this.#ctx, name, options);
  }

  async stop(name: string, options: StopOptions = {}): Promise<void> {
    await (await import("./lifecycle.ts")).stopInstance(this.#ctx, name, options);
  }

  async suspend(name: string): Promise<void> {
    await (await import("./lifecycle.ts")).suspendInstance(this.#ctx, name);
  }

  async delete(name: string): Promise<void> {
    await (await import("./lifecycle.ts")).deleteInstance(this.#ctx, name);
  }

  async waitForAddress(name: string, options: WaitOptions): Promise<string> {
    return await (await import("./lifecycle.ts")).waitForAddress(this.#ctx, name, options);
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

  async shell(name: string, request: ShellRequest): Promise<ShellSession> {
    return await (await import("./shell_session.ts")).openShell(this.#execContext(), name, request);
  }

  async pushFile(name: string, file: PushedFile): Promise<void> {
    await (await import("./files.ts")).pushFile(this.#fileContext(), name, file);
  }

  async pullFile(name: string, path: string): Promise<Uint8Array> {
    return await (await import("./files.ts")).pullFile(this.#fileContext(), name, path);
  }

  #fileContext() {
    const { uid, gid } = this.#ctx.guestIds;
    return { client: this.client, guestUid: uid, guestGid: gid };
  }

  async createCheckpoint(name: string, checkpoint: string): Promise<Checkpoint> {
    return await (await import("./snapshots.ts")).createCheckpoint(this.client, name, checkpoint);
  }

  async listCheckpoints(name: string): Promise<Checkpoint[]> {
    return await (await import("./snapshots.ts")).listCheckpoints(this.client, name);
  }

  async restoreCheckpoint(name: string, checkpoint: string): Promise<void> {
    await (await import("./snapshots.ts")).restoreCheckpoint(this.client, name, checkpoint);
  }

  async deleteCheckpoint(name: string, checkpoint: string): Promise<void> {
    await (await import("./snapshots.ts")).deleteCheckpoint(this.client, name, checkpoint);
  }

  /** The stored policy; throws when a restricted policy is not in force on a running guest. */
  async getEgress(name: string): Promise<EgressPolicy> {
    return await (await import("./egress_policy.ts")).getEgress(this.#ctx, name);
  }

  /** Stores the policy and enforces it on the host now when the guest runs (egress_policy.ts). */
  async setEgress(name: string, policy: EgressPolicy): Promise<void> {
    await (await import("./egress_policy.ts")).setEgress(this.#ctx, name, policy);
  }

  close(): Promise<void> {
    this.client.close();
    return Promise.resolve();
  }
}

/**
 * The image store (image_store.ts), its module imported by the first call: no `exec` or `get`
 * loads images, prepared images or references.
 */
function lazyImageStore(options: () => ImageStoreOptions): ImageStore {
  let store: Promise<Required<ImageStore>> | undefined;
  const open = () => store ??= import("./image_store.ts").then((m) => m.incusImageStore(options()));
  return {
    local: async (ref) => await (await open()).local(ref),
    pull: async (ref, pullOptions) => await (await open()).pull(ref, pullOptions),
    prepared: async (base, recipe) => await (await open()).prepared(base, recipe),
    publishPrepared: async (sandbox, base, recipe) =>
      await (await open()).publishPrepared(sandbox, base, recipe),
  };
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
