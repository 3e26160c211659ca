/**
 * The tart {@link Backend}: Linux VMs on Apple silicon driven through the tart CLI
 * (tart-contract.md §9). Lifecycle goes through {@link TartCli}; `tart run` is detached by a
 * {@link RunLauncher}; guest commands go through {@link GuestAccess} (SSH, `tart exec` or
 * password SSH before tachikoma's key is authorised).
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
  SandboxState,
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
  RuntimeError,
  TimeoutError,
  UnsupportedError,
} from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import { isCheckpointVm, TartCheckpoints } from "./checkpoints.ts";
import type { TartCli } from "./cli.ts";
import { DEFAULT_TAG, dirArgs, GUEST_MOUNT_ROOT } from "./dir_spec.ts";
import type { TartListEntry, TartState } from "./parse.ts";
import { logTail, type RunHandle, type RunLauncher, runLogPath } from "./run.ts";
import { type GuestAccess } from "./guest_access.ts";
import { mountSharesArgv } from "./guest.ts";
import { readTartEgress, removeTartEgress, softnetArgs, writeTartEgress } from "./egress.ts";
import { getTartEgress, setTartEgress } from "./egress_policy.ts";
import { TART_CAPABILITIES, type TartParts, type TartSettings } from "./parts.ts";
import {
  checkShares,
  ipTimeoutError,
  runExitedError,
  stoppedWhileWaitingError,
} from "./failures.ts";

/** Poll interval while waiting for `tart list` to show `running`. */
const START_POLL_MS = 150;
/** Minimum time between two `tart ip` attempts (no busy loop when ip fails fast). */
const IP_MIN_PERIOD_MS = 1000;
/** Largest `tart ip --wait` chunk. */
const IP_CHUNK_SECS = 10;

function sandboxState(state: TartState): SandboxState {
  return state;
}

/** The tart backend. */
export class TartBackend implements Backend {
  readonly name = "tart";
  readonly capabilities: Capabilities = TART_CAPABILITIES;
  readonly #cli: TartCli;
  readonly #launcher: RunLauncher;
  readonly #clock: Clock;
  readonly #guest: GuestAccess;
  readonly #settings: TartSettings;
  /** `tart run` processes started by this backend, by VM name. */
  readonly #runs = new Map<string, RunHandle>();
  readonly #checkpoints: TartCheckpoints;

  constructor(parts: TartParts) {
    this.#cli = parts.cli;
    this.#launcher = parts.launcher;
    this.#clock = parts.clock;
    this.#guest = parts.guest;
    this.#settings = parts.settings;
    this.#checkpoints = new TartCheckpoints(parts.cli, () => parts.clock.now());
  }

  /** The run log of a VM. */
  logPath(name: string): string {
    return runLogPath(this.#settings.stateDir, name);
  }

  async list(): Promise<SandboxInfo[]> {
    const entries = await this.#cli.list();
    return entries.filter((e) => e.source === "local" && !isCheckpointVm(e.name)).map((e) => ({
      name: e.name,
      state: sandboxState(e.state),
      addresses: this.#guest.cachedAddress(e.name) && e.state === "running"
        ? [this.#guest.cachedAddress(e.name)!]
        : [],
    }));
  }

  async get(name: string): Promise<SandboxInfo> {
    const entry = await this.#require(name);
    const addresses: string[] = [];
    if (entry.state === "running") {
      const ip = this.#guest.cachedAddress(name) ??
        await this.#cli.ip(name, this.#settings.resolver);
      if (ip) addresses.push(ip);
    }
    return { name, state: sandboxState(entry.state), addresses };
  }

  async create(name: string, options: CreateOptions): Promise<void> {
    await this.#cli.clone(options.image, name);
    try {
      await this.#cli.set(name, {
        cpu: options.cpus ?? this.#settings.cpus,
        memoryMb: options.memoryMb ?? this.#settings.memoryMb,
        diskSizeGb: options.diskGb ?? this.#settings.diskSizeGb,
      });
    } catch (error) {
      await this.#cli.delete(name).catch(() => {});
      throw error;
    }
  }

  async clone(name: string, source: CloneSource): Promise<void> {
    if (source.checkpoint !== undefined) {
      await this.#cli.clone(
        await this.#checkpoints.source(source.sandbox, source.checkpoint),
        name,
      );
      return;
    }
    const entry = await this.#require(source.sandbox);
    if (entry.state === "running") {
      throw new ConflictError(
        `cannot clone ${source.sandbox} while it runs: tart would copy a live disk`,
        { hint: `halt it first: tachikoma halt ${source.sandbox}` },
      );
    }
    await this.#cli.clone(source.sandbox, name);
  }

  async start(name: string, options: StartOptions): Promise<void> {
    const dirs = dirArgs(checkShares(options.shares));
    const entry = await this.#require(name);
    if (entry.state === "running") return;
    if (entry.state === "suspended") {
      // A Linux VM with a snapshot cannot run (tart: "You can only suspend macOS VMs");
      // `tart stop` drops the snapshot.
      log.info(`${name}: dropping an unusable tart snapshot before starting`);
      await this.#cli.stop(name, 0);
    }
    this.#guest.forget(name);
    const egress = await readTartEgress(this.#settings.stateDir, name);
    const net = softnetArgs(egress?.policy ?? null);
    if (egress) {
      await writeTartEgress(this.#settings.stateDir, name, {
        policy: egress.policy,
        running_restricted: net.length > 0,
      });
    }
    const args = this.#cli.runArgs(name, {
      noGraphics: this.#settings.display === "none",
      dirs,
      net,
    });
    const handle = await this.#launcher.launch({
      binary: this.#cli.binary,
      args,
      logPath: this.logPath(name),
      env: this.#cli.env,
    });
    this.#runs.set(name, handle);
    const deadline = this.#clock.now() + this.#settings.startTimeoutMs;
    while (true) {
      await this.#checkAlive(name, handle, "before the VM started");
      const vm = await this.#cli.find(name);
      if (vm?.state === "running") return;
      await this.#checkAlive(name, handle, "before the VM started");
      if (this.#clock.now() >= deadline) {
        throw new TimeoutError(
          `tart run ${name} did not start the VM within ${
            Math.round(this.#settings.startTimeoutMs / 1000)
          } s`,
          { hint: `see ${handle.logPath}` },
        );
      }
      await Promise.race([this.#clock.sleep(START_POLL_MS), handle.exited]);
    }
  }

  async stop(name: string, options: StopOptions = {}): Promise<void> {
    const entry = await this.#require(name);
    if (entry.state === "stopped") {
      this.#guest.forget(name);
      return;
    }
    if (entry.state === "running" && !options.force) {
      // `tart stop` cuts the power: flush the guest's page cache first (best effort).
      await this.#guest.syncQuietly(name);
    }
    const secs = options.force
      ? 0
      : options.timeoutMs === undefined
      ? this.#settings.stopTimeoutSecs
      : Math.ceil(options.timeoutMs / 1000);
    await this.#cli.stop(name, secs);
    this.#guest.forget(name);
    // `tart stop` returns right after SIGKILL without waiting: wait for the lock to go.
    const deadline = this.#clock.now() + 10_000;
    while ((await this.#cli.find(name))?.state === "running") {
      if (this.#clock.now() >= deadline) {
        throw new TimeoutError(`${name} still runs after tart stop`);
      }
      await this.#clock.sleep(200);
    }
    this.#runs.delete(name);
  }

  suspend(name: string): Promise<void> {
    return Promise.reject(
      new UnsupportedError(
        `tart cannot suspend Linux guests (${name}); stop it instead — memory is not kept`,
      ),
    );
  }

  async delete(name: string): Promise<void> {
    const entry = await this.#cli.find(name);
    if (entry?.state === "running") await this.stop(name);
    if (entry) await this.#cli.delete(name);
    await this.#checkpoints.deleteAll(name);
    this.#guest.forget(name);
    this.#runs.delete(name);
    await Deno.remove(this.logPath(name)).catch(() => {});
    await removeTartEgress(this.#settings.stateDir, name);
  }

  async waitForAddress(name: string, options: WaitOptions): Promise<string> {
    const { deadline, clock, signal } = options;
    while (true) {
      signal?.throwIfAborted();
      const remaining = deadline - clock.now();
      if (remaining <= 0) throw ipTimeoutError(name, this.logPath(name));
      const handle = this.#runs.get(name);
      if (handle) await this.#checkAlive(name, handle, "while waiting for an IP address");
      const vm = await this.#cli.find(name);
      if (!vm) throw new NotFoundError(`tart VM ${name} does not exist`);
      if (vm.state !== "running") {
        if (handle?.exitCode() === null) {
          // Our `tart run` has not taken the lock yet.
          await clock.sleep(Math.min(IP_MIN_PERIOD_MS, remaining), signal);
          continue;
        }
        throw await this.#stoppedWhileWaiting(name, vm.state);
      }
      const started = clock.now();
      // tart ip sleeps 1 s after a miss even with --wait 0: keep a chunk under the deadline.
      const wait = Math.max(0, Math.min(IP_CHUNK_SECS, Math.floor((remaining - 1000) / 1000)));
      const ip = await this.#cli.ip(name, this.#settings.resolver, {
        waitSecs: wait,
        timeoutMs: Math.max(1, remaining),
        signal,
      });
      if (ip) {
        this.#guest.rememberAddress(name, ip);
        return ip;
      }
      const elapsed = clock.now() - started;
      const pause = Math.min(IP_MIN_PERIOD_MS - elapsed, deadline - clock.now());
      if (pause > 0) await clock.sleep(pause, signal);
    }
  }

  async sshEndpoint(name: string): Promise<SshEndpoint> {
    return { host: await this.#guest.address(name), port: this.#guest.sshPort };
  }

  async mountShares(name: string, shares: Share[]): Promise<void> {
    checkShares(shares);
    if (shares.length === 0) return;
    const argv = mountSharesArgv(DEFAULT_TAG, GUEST_MOUNT_ROOT, shares);
    const result = await this.exec(name, { argv, user: "root", timeoutMs: 60_000 });
    if (result.code !== 0) {
      const err = new TextDecoder().decode(result.stderr).trim() ||
        new TextDecoder().decode(result.stdout).trim();
      throw new RuntimeError(
        "mount_failed",
        `mounting the shared directories in ${name} failed (exit ${result.code}): ${err}`,
        { hint: `see ${this.logPath(name)}` },
      );
    }
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

  createCheckpoint(name: string, checkpoint: string): Promise<Checkpoint> {
    return this.#checkpoints.create(name, checkpoint);
  }
  listCheckpoints(name: string): Promise<Checkpoint[]> {
    return this.#checkpoints.list(name);
  }
  async restoreCheckpoint(name: string, checkpoint: string): Promise<void> {
    await this.#checkpoints.restore(name, checkpoint);
    this.#guest.forget(name);
    this.#runs.delete(name);
  }
  deleteCheckpoint(name: string, checkpoint: string): Promise<void> {
    return this.#checkpoints.delete(name, checkpoint);
  }
  /** The policy; throws when the running VM's Softnet does not match it yet. */
  getEgress(name: string): Promise<EgressPolicy> {
    return getTartEgress({ cli: this.#cli, stateDir: this.#settings.stateDir }, name);
  }

  /** Keeps the policy for the next `tart run`; a running VM whose Softnet must change: Conflict. */
  setEgress(name: string, policy: EgressPolicy): Promise<void> {
    return setTartEgress({ cli: this.#cli, stateDir: this.#settings.stateDir }, name, policy);
  }

  async close(): Promise<void> {
    await this.#guest.close();
  }

  async #require(name: string): Promise<TartListEntry> {
    const entry = await this.#cli.find(name);
    if (!entry) throw new NotFoundError(`tart VM ${name} does not exist`);
    return entry;
  }

  /** Throws the early-exit error when our `tart run` for `name` has exited. */
  async #checkAlive(name: string, handle: RunHandle, when: string): Promise<void> {
    const code = handle.exitCode();
    if (code === null) return;
    this.#runs.delete(name);
    throw runExitedError(name, { code, when }, {
      tail: await logTail(handle.logPath),
      path: handle.logPath,
    });
  }

  async #stoppedWhileWaiting(name: string, state: TartState): Promise<Error> {
    const path = this.logPath(name);
    return stoppedWhileWaitingError(name, state, { tail: await logTail(path), path });
  }
}
