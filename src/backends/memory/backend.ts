/**
 * The memory backend: every {@link Backend} method, in memory (or in a shared JSON world
 * file), with controllable delays, per-method failure injection, address timing ("never gets
 * an address"), SSH endpoints, exec/shell handlers and configurable capabilities (see
 * `access.ts` for the controls). It is a test double, never selectable by users.
 *
 * @module
 */
import type {
  Backend,
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
import { ConflictError, NotFoundError, TimeoutError, UnsupportedError } from "../../lib/errors.ts";
import { fromBase64, toBase64 } from "../../lib/shell.ts";
import { MemoryWorldAccess } from "./access.ts";
import { cannedExec, EchoSession, hostExec, hostShell } from "./sessions.ts";
import { dropCheckpoint, filesOf, listOf, takeCheckpoint } from "./checkpoints.ts";

export * from "./access.ts";

/** An in-memory (or world-file) {@link Backend}. */
export class MemoryBackend extends MemoryWorldAccess implements Backend {
  readonly name = "memory";

  // ---------------------------------------------------------------- Backend

  async list(): Promise<SandboxInfo[]> {
    return await this.call(
      "list",
      {},
      (world) => Object.entries(world.sandboxes).map(([name, sb]) => this.info(world, name, sb)),
    );
  }

  async get(name: string): Promise<SandboxInfo> {
    return await this.call(
      "get",
      { name },
      (world) => this.info(world, name, this.sandbox(world, name)),
    );
  }

  async create(name: string, options: CreateOptions): Promise<void> {
    await this.call("create", { name, detail: { image: options.image } }, (world) => {
      if (world.sandboxes[name]) throw new ConflictError(`sandbox '${name}' already exists`);
      world.sandboxes[name] = {
        state: "stopped",
        image: options.image,
        created_at: new Date(this.clock.now()).toISOString(),
        cpus: options.cpus,
        memory_mb: options.memoryMb,
        disk_gb: options.diskGb,
        files: {},
        checkpoints: [],
        starts: 0,
      };
    });
  }

  async clone(name: string, source: CloneSource): Promise<void> {
    this.require("clone", "clone");
    await this.call(
      "clone",
      { name, detail: { source: source.sandbox, checkpoint: source.checkpoint } },
      (world) => {
        const src = this.sandbox(world, source.sandbox);
        if (world.sandboxes[name]) throw new ConflictError(`sandbox '${name}' already exists`);
        const files = source.checkpoint === undefined
          ? structuredClone(src.files ?? {})
          : filesOf(src, source.sandbox, source.checkpoint);
        world.sandboxes[name] = {
          state: "stopped",
          image: src.image,
          created_at: new Date(this.clock.now()).toISOString(),
          files,
          checkpoints: [],
          starts: 0,
        };
      },
    );
  }

  async start(name: string, options: StartOptions): Promise<void> {
    await this.call(
      "start",
      { name, detail: { shares: options.shares.map((s) => s.name) } },
      (world) => {
        const sb = this.sandbox(world, name);
        if (sb.state === "running") return;
        sb.state = "running";
        sb.shares = structuredClone(options.shares);
        sb.mounted = false;
        sb.starts = (sb.starts ?? 0) + 1;
        const delay = this.options.addressDelayMs ?? world.defaults?.address_delay_ms ?? 0;
        sb.address_at = this.neverAddress(world, name) ? null : this.clock.now() + delay;
      },
    );
  }

  async stop(name: string, options: StopOptions = {}): Promise<void> {
    await this.call("stop", { name, detail: { force: options.force ?? false } }, (world) => {
      const sb = this.sandbox(world, name);
      if (sb.state === "stopped") return;
      sb.state = "stopped";
      sb.address_at = null;
      sb.mounted = false;
    });
  }

  async suspend(name: string): Promise<void> {
    if (!this.capabilities.suspend) {
      throw new UnsupportedError("the memory backend is configured without suspend");
    }
    await this.call("suspend", { name }, (world) => {
      const sb = this.sandbox(world, name);
      if (sb.state === "suspended") return;
      if (sb.state !== "running") {
        throw new ConflictError(`sandbox '${name}' is ${sb.state}, not running`);
      }
      sb.state = "suspended";
      sb.address_at = null;
    });
  }

  async delete(name: string): Promise<void> {
    await this.call("delete", { name }, (world) => void delete world.sandboxes[name]);
  }

  async waitForAddress(name: string, options: WaitOptions): Promise<string> {
    await this.call("waitForAddress", { name }, () => undefined);
    // Like the real engines: 100 ms apart at first, backing off (×1.5) to 750 ms.
    for (let attempt = 0;; attempt++) {
      const delay = attempt < 5 ? 100 : Math.min(750, Math.round(100 * 1.5 ** (attempt - 4)));
      options.signal?.throwIfAborted();
      const info = await this.storage.transact((world) =>
        this.info(world, name, this.sandbox(world, name))
      );
      if (info.addresses.length > 0) return info.addresses[0];
      if (info.state !== "running" && info.state !== "starting") {
        throw new ConflictError(`sandbox '${name}' is ${info.state}; it will not get an address`);
      }
      const remaining = options.deadline - options.clock.now();
      if (remaining <= 0) {
        throw new TimeoutError(`sandbox '${name}' got no address in time`);
      }
      await options.clock.sleep(Math.min(delay, remaining), options.signal);
    }
  }

  async sshEndpoint(name: string): Promise<SshEndpoint> {
    return await this.call("sshEndpoint", { name }, (world) => {
      const sb = this.sandbox(world, name);
      const [address] = this.addresses(world, name, sb);
      if (!address) throw new ConflictError(`sandbox '${name}' has no address`);
      const ep = sb.ssh ?? world.defaults?.ssh;
      return ep ? { host: ep.host, port: ep.port } : { host: address, port: 22 };
    });
  }

  async mountShares(name: string, shares: Share[]): Promise<void> {
    await this.call(
      "mountShares",
      { name, detail: { shares: shares.map((s) => s.name) } },
      (world) => {
        const sb = this.sandbox(world, name);
        if (sb.state !== "running") throw new ConflictError(`sandbox '${name}' is not running`);
        sb.mounted = true;
      },
    );
  }

  async exec(name: string, request: ExecRequest): Promise<ExecResult> {
    const { sb, mode } = await this.call(
      "exec",
      { name, detail: { argv: request.argv } },
      (world) => ({
        sb: structuredClone(this.sandbox(world, name)),
        mode: world.exec,
      }),
    );
    if (sb.state !== "running") throw new ConflictError(`sandbox '${name}' is ${sb.state}`);
    this.execs.push({ name, request });
    if (this.options.exec) return await this.options.exec(name, request);
    if (mode?.mode === "host") return await hostExec(name, request, sb.shares ?? []);
    return cannedExec(mode?.mode === "canned" ? mode.results : [], request);
  }

  async shell(name: string, request: ShellRequest): Promise<ShellSession> {
    this.require("pty", "PTY sessions");
    const { sb, mode } = await this.call(
      "shell",
      { name, detail: { argv: request.argv ?? null } },
      (world) => ({
        sb: structuredClone(this.sandbox(world, name)),
        mode: world.exec,
      }),
    );
    if (sb.state !== "running") throw new ConflictError(`sandbox '${name}' is ${sb.state}`);
    if (this.options.shell) return await this.options.shell(name, request);
    if (mode?.mode === "host") {
      return hostShell(name, request, sb.shares ?? []);
    }
    const session = new EchoSession(request.size);
    this.sessions.push(session);
    return session;
  }

  async pushFile(name: string, file: PushedFile): Promise<void> {
    const { path, data, mode, owner } = file;
    await this.call("pushFile", { name, detail: { path } }, (world) => {
      const sb = this.sandbox(world, name);
      sb.files ??= {};
      sb.files[path] = { data: toBase64(data), mode, owner };
    });
  }

  async pullFile(name: string, path: string): Promise<Uint8Array> {
    return await this.call("pullFile", { name, detail: { path } }, (world) => {
      const file = this.sandbox(world, name).files?.[path];
      if (!file) throw new NotFoundError(`${path}: no such file in sandbox '${name}'`);
      return fromBase64(file.data);
    });
  }

  async createCheckpoint(name: string, checkpoint: string): Promise<Checkpoint> {
    this.require("checkpoints", "checkpoints");
    return await this.call(
      "createCheckpoint",
      { name, detail: { checkpoint } },
      (world) =>
        takeCheckpoint(this.sandbox(world, name), name, {
          checkpoint,
          createdAt: new Date(this.clock.now()).toISOString(),
        }),
    );
  }

  async listCheckpoints(name: string): Promise<Checkpoint[]> {
    this.require("checkpoints", "checkpoints");
    return await this.call(
      "listCheckpoints",
      { name },
      (world) => listOf(this.sandbox(world, name)),
    );
  }

  async restoreCheckpoint(name: string, checkpoint: string): Promise<void> {
    this.require("checkpoints", "checkpoints");
    await this.call("restoreCheckpoint", { name, detail: { checkpoint } }, (world) => {
      const sb = this.sandbox(world, name);
      sb.files = filesOf(sb, name, checkpoint);
    });
  }

  async deleteCheckpoint(name: string, checkpoint: string): Promise<void> {
    this.require("checkpoints", "checkpoints");
    await this.call("deleteCheckpoint", { name, detail: { checkpoint } }, (world) => {
      dropCheckpoint(this.sandbox(world, name), name, checkpoint);
    });
  }

  async getEgress(name: string): Promise<EgressPolicy> {
    this.require("egress", "egress policies");
    return await this.call(
      "getEgress",
      { name },
      (world) =>
        structuredClone(this.sandbox(world, name).egress ?? { mode: "unrestricted", allow: [] }),
    );
  }

  async setEgress(name: string, policy: EgressPolicy): Promise<void> {
    this.require("egress", "egress policies");
    await this.call("setEgress", { name, detail: { mode: policy.mode } }, (world) => {
      this.sandbox(world, name).egress = { mode: policy.mode, allow: [...policy.allow] };
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}
