/**
 * The one interface every sandbox engine implements (tart, incus, truenas, and the in-memory
 * test double). Core logic (spawn, lifecycle, provisioning, MCP) talks only to this.
 *
 * Errors: implementations throw the typed errors from `src/lib/errors.ts` —
 * {@link NotFoundError} (no such sandbox/checkpoint), {@link ConflictError} (name taken, wrong
 * state), {@link UnreachableError} (engine not reachable), {@link TimeoutError},
 * {@link UnsupportedError} (capability missing).
 *
 * @module
 */
import type { StdinSource } from "../lib/stdin.ts";
import type { Clock } from "../lib/clock.ts";
import type { ShellSession, TermSize } from "../lib/terminal.ts";
export type { ShellSession, TermSize } from "../lib/terminal.ts";
export {
  ConflictError,
  NotFoundError,
  TimeoutError,
  UnreachableError,
  UnsupportedError,
} from "../lib/errors.ts";

/** Live state of a sandbox as the engine reports it. */
export type SandboxState =
  | "running"
  | "stopped"
  | "suspended"
  | "starting"
  | "stopping"
  | "unknown";

/** What the engine knows about one sandbox. */
export interface SandboxInfo {
  name: string;
  state: SandboxState;
  /** IPv4 addresses reachable from the host, best first; empty when none yet. */
  addresses: string[];
  /** Image or source it was made from, when known. */
  image?: string;
  /** ISO-8601 creation time, when known. */
  createdAt?: string;
}

/** A host directory shared into the guest. */
export interface Share {
  /** Share name: `code`, `dotgit`, `claude-rules`… (`[a-z0-9-]+`). */
  name: string;
  /** Absolute host path. */
  hostPath: string;
  /** Absolute guest path where it must appear (`/mnt/tachikoma/<name>`). */
  guestPath: string;
  readOnly: boolean;
}

/** How to create a sandbox. */
export interface CreateOptions {
  /** Image reference, alias, fingerprint or tart VM/OCI name. */
  image: string;
  /** The reference as configured, recorded on the sandbox (default: `image`). */
  label?: string;
  cpus?: number;
  memoryMb?: number;
  diskGb?: number;
}

/** Where a clone comes from. */
export interface CloneSource {
  sandbox: string;
  /** Clone from this checkpoint of `sandbox` instead of its current state. */
  checkpoint?: string;
}

/** Options for {@link Backend.start}. */
export interface StartOptions {
  /** Shares to make available in the guest (mounted again on every start). */
  shares: Share[];
}

/** Options for {@link Backend.stop}. */
export interface StopOptions {
  /** Graceful stop budget before forcing, in milliseconds. */
  timeoutMs?: number;
  /** Skip the graceful attempt. */
  force?: boolean;
}

/** One non-interactive command in the guest. */
export interface ExecRequest {
  /** Program and arguments, passed exactly (never joined with spaces). */
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  /** `root` or the sandbox user (default: the sandbox user). */
  user?: "root" | "user";
  /**
   * The command's stdin: bytes or text, or a stream forwarded as it arrives (the command starts
   * at once; the rest is no longer read once the command ends). Absent: empty stdin.
   */
  stdin?: StdinSource;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with output chunks as they arrive (streaming); the result still holds all of it. */
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
}

/** Result of {@link Backend.exec}. */
export interface ExecResult {
  code: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
}

/** An interactive PTY session request. */
export interface ShellRequest {
  /** Command to run instead of a login shell. */
  argv?: string[];
  env?: Record<string, string>;
  cwd?: string;
  user?: "root" | "user";
  size: TermSize;
}

/** Ownership and mode of a pushed file. */
export interface FileOptions {
  /** Octal permission bits, e.g. 0o600. */
  mode?: number;
  /** `root` or the sandbox user (default: the sandbox user). */
  owner?: "root" | "user";
}

/** A file to push: where, what, and its owner and mode. */
export interface PushedFile extends FileOptions {
  /** Absolute guest path. */
  path: string;
  data: Uint8Array;
}

/** A checkpoint (snapshot). */
export interface Checkpoint {
  name: string;
  createdAt: string;
  sizeBytes?: number;
}

/** Guest egress modes: `none` refuses everything, the others as in docs/security.md. */
export type EgressMode = "unrestricted" | "agent" | "allowlist" | "none";

/** Guest egress policy. */
export interface EgressPolicy {
  mode: EgressMode;
  /** Hosts allowed on top of the mode's preset. */
  allow: string[];
  /**
   * Where the guest reaches the host proxy (engine-level enforcement in a restricted mode lets
   * the guest reach this address and port and nothing else). Absent: the engine's gateway and
   * no proxy port (nothing is reachable).
   */
  proxy?: { host: string; port: number };
}

/** Where SSH reaches a sandbox. */
export interface SshEndpoint {
  host: string;
  port: number;
}

/** What an engine can do beyond the basics. */
export interface Capabilities {
  /** Real suspend (memory kept). When false, suspend means stop. */
  suspend: boolean;
  checkpoints: boolean;
  /**
   * Checkpoints are taken of the stopped sandbox (tart: a clone of the VM): core stops a running
   * one, checkpoints it and starts it again. Absent or false: taken live.
   */
  checkpointsStopped?: boolean;
  /** Clone from another sandbox or a checkpoint. */
  clone: boolean;
  /** Engine-level egress policy. */
  egress: boolean;
  /** Engine-level PTY sessions (without SSH). */
  pty: boolean;
  /** Engine-level file push/pull (without SSH). */
  files: boolean;
  /**
   * `exec`, shells and files go through the guest's sshd (tart), so boot waits for an SSH banner.
   * False: they go through the engine's API (incus) and nothing but `ssh` itself waits for sshd.
   */
  execOverSsh: boolean;
  /**
   * The engine can share host directories into the guest (local Incus, tart). False (a remote
   * Incus server, TrueNAS): spawn shares nothing and brings the branch in by git instead
   * ("code by git": `src/provision/code_git.ts`; `tachikoma pull` brings commits back).
   */
  mountHost: boolean;
}

/** A base image in the engine's local image store. */
export interface ImageInfo {
  /** The reference as configured: `images:debian/12`, a local alias or a fingerprint. */
  ref: string;
  fingerprint: string;
  /** For a remote reference: where it comes from. */
  source?: { server: string; url: string; protocol: string; alias: string };
  /** The local alias that caches a remote image. */
  localAlias?: string;
  sizeBytes?: number;
  /** True when this call downloaded it. */
  pulled: boolean;
}

/** Options of {@link ImageStore.pull}. */
export interface ImagePullOptions {
  /** Ask the server again even when the image is in the local store (get its newest version). */
  refresh?: boolean;
  /** Download progress, e.g. `rootfs: 45% (12.3MB/s)`. */
  onProgress?: (text: string) => void;
  signal?: AbortSignal;
}

/** The engine's image store, for engines that pull base images from image servers. */
export interface ImageStore {
  /** The image if it is in the local store, else null (it must be pulled). Throws for a bad ref. */
  local(ref: string): Promise<ImageInfo | null>;
  /** Makes the image local, downloading it when needed (always with `refresh`). */
  pull(ref: string, options?: ImagePullOptions): Promise<ImageInfo>;
  /**
   * The image prepared from `base` by the provisioning recipe `recipe` (a stock image once
   * bootstrapped), or null when there is none yet.
   */
  prepared?(base: ImageInfo, recipe: string): Promise<ImageInfo | null>;
  /**
   * Keeps `sandbox`'s system — just bootstrapped, nothing of the user's in it yet — as the
   * prepared image of (`base`, `recipe`), without the sandbox's identity.
   */
  publishPrepared?(sandbox: string, base: ImageInfo, recipe: string): Promise<ImageInfo>;
}

/** Options for {@link Backend.waitForAddress}. */
export interface WaitOptions {
  /** Absolute deadline (ms since epoch, on `clock`). */
  deadline: number;
  clock: Clock;
  signal?: AbortSignal;
}

/** A sandbox engine. */
export interface Backend {
  /** `tart`, `incus`, `truenas` or `memory`. */
  readonly name: string;
  readonly capabilities: Capabilities;
  /** Base images pulled from image servers (absent: the engine takes images as they are). */
  readonly images?: ImageStore;

  /** Every sandbox this engine holds (not only tachikoma's). */
  list(): Promise<SandboxInfo[]>;
  /**
   * The names of every sandbox, where the engine has a cheaper way than {@link Backend.list}
   * (Incus: no per-instance state, which it gathers by entering each container). Absent: use
   * `list()`. See {@link sandboxNames}.
   */
  listNames?(): Promise<string[]>;
  /** One sandbox; throws NotFoundError. */
  get(name: string): Promise<SandboxInfo>;
  /** Creates a stopped sandbox; throws ConflictError if the name is taken. */
  create(name: string, options: CreateOptions): Promise<void>;
  /** Creates a stopped sandbox from another one or from its checkpoint. */
  clone(name: string, source: CloneSource): Promise<void>;
  /** Starts a stopped or suspended sandbox with its shares. Starting a running one is a no-op. */
  start(name: string, options: StartOptions): Promise<void>;
  /** Stops gracefully, forcing after the timeout. Stopping a stopped sandbox is a no-op. */
  stop(name: string, options?: StopOptions): Promise<void>;
  /** Suspends; throws UnsupportedError when `capabilities.suspend` is false. */
  suspend(name: string): Promise<void>;
  /** Deletes, stopping first if needed. Succeeds when already gone. */
  delete(name: string): Promise<void>;
  /** Polls until the sandbox has an address; throws TimeoutError at the deadline. */
  waitForAddress(name: string, options: WaitOptions): Promise<string>;
  /** Where SSH reaches the sandbox once it has an address. */
  sshEndpoint(name: string): Promise<SshEndpoint>;
  /**
   * Makes the shares visible at their guest paths after a (re)start, when the engine needs a
   * step inside the guest for that (tart: virtiofs mount). No-op elsewhere. Idempotent.
   */
  mountShares(name: string, shares: Share[]): Promise<void>;

  /** Runs a command to completion. */
  exec(name: string, request: ExecRequest): Promise<ExecResult>;
  /** Opens an interactive PTY session. */
  shell(name: string, request: ShellRequest): Promise<ShellSession>;
  /** Writes `file.data` at `file.path` (parents created) with its owner and mode. */
  pushFile(name: string, file: PushedFile): Promise<void>;
  /** Reads a file; throws NotFoundError. */
  pullFile(name: string, path: string): Promise<Uint8Array>;

  createCheckpoint(name: string, checkpoint: string): Promise<Checkpoint>;
  listCheckpoints(name: string): Promise<Checkpoint[]>;
  restoreCheckpoint(name: string, checkpoint: string): Promise<void>;
  deleteCheckpoint(name: string, checkpoint: string): Promise<void>;

  getEgress(name: string): Promise<EgressPolicy>;
  setEgress(name: string, policy: EgressPolicy): Promise<void>;

  /** Releases connections. */
  close(): Promise<void>;
}

/** What an engine may need besides the config when it is opened. */
export interface BackendContext {
  /** tachikoma's config/state directory (logs, known_hosts…). */
  stateDir: string;
}

/** The names of every sandbox `backend` holds, the cheapest way it offers. */
export async function sandboxNames(backend: Backend): Promise<string[]> {
  if (backend.listNames) return await backend.listNames();
  return (await backend.list()).map((s) => s.name);
}
