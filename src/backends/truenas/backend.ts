/**
 * The TrueNAS SCALE {@link Backend}: Incus containers driven through the TrueNAS middleware's
 * `virt.instance.*` API (truenas-api.md). Instances are `px-<name>`, as pixels named them.
 * A new instance is made from a stock image and bootstrapped on its first boot (bootstrap.ts);
 * commands and files go over SSH once that boot has run; checkpoints are ZFS snapshots.
 *
 * A TrueNAS server cannot mount directories of this host: shares are refused.
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
import type { Clock } from "../../lib/clock.ts";
import {
  ConflictError,
  NotFoundError,
  TimeoutError,
  UnreachableError,
  UnsupportedError,
} from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { toBase64 } from "../../lib/shell.ts";
import type { TruenasClient } from "./client.ts";
import { isNotFound } from "./rpc_errors.ts";
import { bootstrapFiles, rootfsPath } from "./bootstrap.ts";
import { detectNic } from "./nic.ts";
import { cloneCommand, runAsCron, TruenasSnapshots } from "./checkpoints.ts";
import type { TruenasGuest } from "./guest.ts";
import {
  addresses,
  infoOf,
  type Instance,
  INSTANCE_PREFIX,
  refuseShares,
  stamp,
  truenasImage,
} from "./instances.ts";

export { INSTANCE_PREFIX, truenasImage } from "./instances.ts";

/** What TrueNAS can do. */
export const TRUENAS_CAPABILITIES: Capabilities = {
  suspend: false,
  checkpoints: true,
  clone: true,
  egress: false,
  pty: false,
  files: false,
  execOverSsh: true,
  /** A TrueNAS server cannot mount this host's directories: code travels by git. */
  mountHost: false,
};

/** Settings of a {@link TruenasBackend}. */
export interface TruenasSettings {
  sshUser: string;
  sshPort: number;
  cpus: number;
  memoryMb: number;
  /** Image of clone shells (the configured base image). */
  image: string;
  /** tachikoma's public key line (made when missing). */
  publicKey(): Promise<string>;
}

/** Everything a {@link TruenasBackend} is made of. */
export interface TruenasParts {
  client: TruenasClient;
  guest: TruenasGuest;
  clock: Clock;
  settings: TruenasSettings;
}

/** The TrueNAS backend. */
export class TruenasBackend implements Backend {
  readonly name = "truenas";
  readonly capabilities: Capabilities = TRUENAS_CAPABILITIES;
  readonly #api: TruenasClient;
  readonly #guest: TruenasGuest;
  readonly #clock: Clock;
  readonly #s: TruenasSettings;
  readonly #snapshots: TruenasSnapshots;

  constructor(parts: TruenasParts) {
    this.#api = parts.client;
    this.#guest = parts.guest;
    this.#clock = parts.clock;
    this.#s = parts.settings;
    this.#snapshots = new TruenasSnapshots(parts.client);
  }

  get #host(): string {
    return this.#api.host;
  }

  async list(): Promise<SandboxInfo[]> {
    const rows = await this.#api.call<Instance[]>("virt.instance.query", [[[
      "name",
      "^",
      INSTANCE_PREFIX,
    ]]]);
    return (rows ?? []).map((i) => infoOf(i));
  }

  async get(name: string): Promise<SandboxInfo> {
    return infoOf(await this.#require(name));
  }

  async create(name: string, options: CreateOptions): Promise<void> {
    const full = INSTANCE_PREFIX + name;
    if (await this.#find(name)) {
      throw new ConflictError(`TrueNAS ${this.#host}: instance ${full} already exists`);
    }
    const publicKey = await this.#s.publicKey();
    const nic = await detectNic(this.#api, this.#host);
    try {
      await this.#api.callJob("virt.instance.create", [{
        name: full,
        instance_type: "CONTAINER",
        image: truenasImage(options.image),
        cpu: String(options.cpus ?? this.#s.cpus),
        memory: (options.memoryMb ?? this.#s.memoryMb) * 1024 * 1024,
        autostart: true,
        environment: null,
        ...(nic ? { devices: [nic] } : {}),
      }]);
      await this.#require(name);
      await this.#inject(full, publicKey);
      // The first boot (rc.local) happens on the next start.
      await this.stop(name);
    } catch (error) {
      await this.#removeGhost(name);
      throw error;
    }
  }

  async clone(name: string, source: CloneSource): Promise<void> {
    const src = await this.#require(source.sandbox);
    const srcFull = INSTANCE_PREFIX + source.sandbox;
    const full = INSTANCE_PREFIX + name;
    if (await this.#find(name)) {
      throw new ConflictError(`TrueNAS ${this.#host}: instance ${full} already exists`);
    }
    let label = source.checkpoint;
    let temporary = false;
    if (label === undefined) {
      label = `px-clone-${stamp(this.#clock.now())}`;
      await this.#snapshots.create(srcFull, label);
      temporary = true;
    } else {
      await this.#snapshots.require(srcFull, label);
    }
    try {
      await this.#api.callJob("virt.instance.create", [{
        name: full,
        instance_type: "CONTAINER",
        image: truenasImage(this.#s.image),
        cpu: src.cpu ?? String(this.#s.cpus),
        memory: src.memory ?? this.#s.memoryMb * 1024 * 1024,
        autostart: false,
        environment: null,
      }]);
      await this.stop(name);
      const command = cloneCommand({
        source: await this.#snapshots.dataset(srcFull),
        label,
        target: await this.#snapshots.dataset(full),
        name: full,
      });
      await runAsCron(this.#api, command, `clone ${srcFull}@${label} into ${full}`);
    } catch (error) {
      await this.#removeGhost(name);
      throw error;
    } finally {
      if (temporary) await this.#snapshots.deleteQuietly(srcFull, label);
    }
  }

  async start(name: string, options: StartOptions): Promise<void> {
    refuseShares(this.#host, options.shares);
    const i = await this.#require(name);
    if (i.status === "RUNNING") return;
    this.#guest.forget(name);
    await this.#api.callJob("virt.instance.start", [INSTANCE_PREFIX + name]);
  }

  async stop(name: string, options: StopOptions = {}): Promise<void> {
    const i = await this.#find(name);
    if (!i || i.status !== "RUNNING") return;
    const timeout = options.force ? 0 : Math.ceil((options.timeoutMs ?? 120_000) / 1000);
    this.#guest.forget(name);
    await this.#api.callJob("virt.instance.stop", [
      INSTANCE_PREFIX + name,
      timeout > 0 ? { timeout } : {},
    ]);
  }

  suspend(name: string): Promise<void> {
    return Promise.reject(
      new UnsupportedError(`TrueNAS cannot suspend ${name}; stop it instead — memory is not kept`),
    );
  }

  async delete(name: string): Promise<void> {
    await this.stop(name).catch((e) => log.debug(`stop before delete: ${(e as Error).message}`));
    if (!(await this.#find(name))) return;
    this.#guest.forget(name);
    for (let attempt = 1;; attempt++) {
      try {
        await this.#api.callJob("virt.instance.delete", [INSTANCE_PREFIX + name]);
        return;
      } catch (error) {
        if (isNotFound(error) && !(await this.#find(name))) return;
        if (attempt >= 3) throw error;
        log.debug(
          `TrueNAS ${this.#host}: delete ${name} failed (${(error as Error).message}); retrying`,
        );
        await this.#clock.sleep(2000);
      }
    }
  }

  async waitForAddress(name: string, options: WaitOptions): Promise<string> {
    const { deadline, clock, signal } = options;
    while (true) {
      signal?.throwIfAborted();
      const i = await this.#require(name);
      const ip = i.status === "RUNNING" ? addresses(i)[0] : undefined;
      if (ip) return ip;
      if (i.status === "STOPPED") {
        throw new ConflictError(
          `TrueNAS ${this.#host}: ${name} stopped while waiting for its address`,
        );
      }
      if (clock.now() >= deadline) {
        throw new TimeoutError(`TrueNAS ${this.#host}: ${name} got no IPv4 address in time`, {
          hint: "check the instance's NIC and DHCP on the TrueNAS network",
        });
      }
      await clock.sleep(Math.min(1000, Math.max(1, deadline - clock.now())), signal);
    }
  }

  async sshEndpoint(name: string): Promise<SshEndpoint> {
    return { host: await this.address(name), port: this.#s.sshPort };
  }

  /** The running instance's first IPv4 address. */
  async address(name: string): Promise<string> {
    const i = await this.#require(name);
    if (i.status !== "RUNNING") {
      throw new ConflictError(`${name} is not running (${i.status})`, {
        hint: `start it: tachikoma enter ${name}`,
      });
    }
    const ip = addresses(i)[0];
    if (!ip) throw new UnreachableError(`TrueNAS ${this.#host}: ${name} has no IPv4 address yet`);
    return ip;
  }

  mountShares(_name: string, shares: Share[]): Promise<void> {
    try {
      refuseShares(this.#host, shares);
    } catch (error) {
      return Promise.reject(error);
    }
    return Promise.resolve();
  }

  exec(name: string, request: ExecRequest): Promise<ExecResult> {
    return this.#guest.exec(name, request);
  }
  shell(name: string, request: ShellRequest): Promise<ShellSession> {
    return this.#guest.shell(name, request);
  }
  pushFile(name: string, file: PushedFile): Promise<void> {
    return this.#guest.pushFile(name, file);
  }
  pullFile(name: string, path: string): Promise<Uint8Array> {
    return this.#guest.pullFile(name, path);
  }

  async createCheckpoint(name: string, checkpoint: string): Promise<Checkpoint> {
    await this.#require(name);
    return await this.#snapshots.create(INSTANCE_PREFIX + name, checkpoint);
  }
  async listCheckpoints(name: string): Promise<Checkpoint[]> {
    await this.#require(name);
    return await this.#snapshots.list(INSTANCE_PREFIX + name);
  }
  async restoreCheckpoint(name: string, checkpoint: string): Promise<void> {
    const i = await this.#require(name);
    await this.#snapshots.require(INSTANCE_PREFIX + name, checkpoint);
    const wasRunning = i.status === "RUNNING";
    await this.stop(name);
    try {
      await this.#snapshots.rollback(INSTANCE_PREFIX + name, checkpoint);
    } finally {
      if (wasRunning) await this.#api.callJob("virt.instance.start", [INSTANCE_PREFIX + name]);
    }
  }
  async deleteCheckpoint(name: string, checkpoint: string): Promise<void> {
    await this.#require(name);
    await this.#snapshots.delete(INSTANCE_PREFIX + name, checkpoint);
  }

  /** Always unrestricted: TrueNAS enforces no egress policy for tachikoma. */
  async getEgress(name: string): Promise<EgressPolicy> {
    await this.#require(name);
    return { mode: "unrestricted", allow: [] };
  }

  async setEgress(name: string, policy: EgressPolicy): Promise<void> {
    await this.#require(name);
    if (policy.mode !== "unrestricted") {
      throw new UnsupportedError(
        `TrueNAS ${this.#host}: egress mode ${policy.mode} cannot be enforced on ${name} (the truenas backend has no engine-level egress control)`,
      );
    }
  }

  async close(): Promise<void> {
    await this.#guest.close();
    await this.#api.close();
  }

  async #inject(full: string, publicKey: string): Promise<void> {
    const config = await this.#api.call<{ pool?: string }>("virt.global.config");
    const pool = config?.pool ?? "";
    for (const f of bootstrapFiles(this.#s.sshUser, publicKey)) {
      await this.#api.call("filesystem.file_receive", [
        rootfsPath(pool, full, f.path),
        toBase64(f.content),
        { mode: f.mode, uid: f.uid, gid: f.gid },
      ]);
    }
  }

  /** Removes a half-made instance (no ghost after a failure); never throws. */
  async #removeGhost(name: string): Promise<void> {
    try {
      await this.delete(name);
    } catch (error) {
      log.warn(
        `TrueNAS ${this.#host}: could not remove the half-made ${INSTANCE_PREFIX}${name}: ${
          (error as Error).message
        }`,
      );
    }
  }

  async #find(name: string): Promise<Instance | null> {
    try {
      return await this.#api.call<Instance>("virt.instance.get_instance", [INSTANCE_PREFIX + name]);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw error;
    }
  }

  async #require(name: string): Promise<Instance> {
    const i = await this.#find(name);
    if (!i) {
      throw new NotFoundError(
        `TrueNAS ${this.#host}: instance ${INSTANCE_PREFIX}${name} does not exist`,
      );
    }
    return i;
  }
}
