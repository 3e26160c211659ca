/**
 * The memory backend's world access and test controls: options, injected failures and delays,
 * the call log, seeding and mutating sandboxes behind tachikoma's back. `MemoryBackend`
 * (`backend.ts`) builds the `Backend` methods on it.
 *
 * @module
 */
import type {
  Capabilities,
  ExecRequest,
  ExecResult,
  SandboxInfo,
  ShellRequest,
  ShellSession,
} from "../backend.ts";
import { type Clock, systemClock } from "../../lib/clock.ts";
import { ConflictError, NotFoundError, UnsupportedError } from "../../lib/errors.ts";
import {
  type CallRecord,
  failureError,
  type FailureSpec,
  InMemoryStorage,
  type MemorySandbox,
  type MemoryWorldData,
  type WorldStorage,
} from "./world.ts";
import type { EchoSession } from "./sessions.ts";

/** Every method name, for delays and failure injection. */
export type MemoryMethod =
  | "list"
  | "get"
  | "create"
  | "clone"
  | "start"
  | "stop"
  | "suspend"
  | "delete"
  | "waitForAddress"
  | "sshEndpoint"
  | "mountShares"
  | "exec"
  | "shell"
  | "pushFile"
  | "pullFile"
  | "createCheckpoint"
  | "listCheckpoints"
  | "restoreCheckpoint"
  | "deleteCheckpoint"
  | "getEgress"
  | "setEgress";

/** Handles exec requests of the in-process backend. */
export type ExecHandler = (
  name: string,
  request: ExecRequest,
) => ExecResult | Promise<ExecResult>;

/** Opens shell sessions of the in-process backend. */
export type ShellHandler = (
  name: string,
  request: ShellRequest,
) => ShellSession | Promise<ShellSession>;

/** Hook run at the start of every call (after its delay); may block to gate a call. */
export type CallHook = (method: MemoryMethod, name: string | undefined) => void | Promise<void>;

/** Options of {@link MemoryBackend}. */
export interface MemoryBackendOptions {
  clock?: Clock;
  capabilities?: Partial<Capabilities>;
  /** Where the world lives (default: this process). */
  storage?: WorldStorage;
  /** Milliseconds each method waits (on `clock`) before acting. */
  delays?: Partial<Record<MemoryMethod, number>>;
  /** Milliseconds from a start until the address appears (default 0). */
  addressDelayMs?: number;
  /** Sandboxes (all, or those this returns true for) never get an address. */
  neverAddress?: boolean | ((name: string) => boolean);
  /** Address of a sandbox (default: `127.0.0.1`). */
  address?: (name: string) => string;
  exec?: ExecHandler;
  shell?: ShellHandler;
  onCall?: CallHook;
}

const DEFAULT_CAPABILITIES: Capabilities = {
  suspend: true,
  checkpoints: true,
  clone: true,
  egress: true,
  pty: true,
  files: true,
  execOverSsh: true,
  mountHost: true,
};

const MUTATING = new Set<MemoryMethod>([
  "create",
  "clone",
  "start",
  "stop",
  "suspend",
  "delete",
  "mountShares",
  "exec",
  "shell",
  "pushFile",
  "createCheckpoint",
  "restoreCheckpoint",
  "deleteCheckpoint",
  "setEgress",
]);

/** An in-memory (or world-file) {@link Backend}. */
/** World access and test controls shared by the memory backend's methods. */
export class MemoryWorldAccess {
  readonly capabilities: Capabilities;
  readonly clock: Clock;
  readonly storage: WorldStorage;
  /** Sessions opened by the default shell handler, newest last. */
  readonly sessions: EchoSession[] = [];
  /** Exec requests seen by the in-process backend, in order. */
  readonly execs: { name: string; request: ExecRequest }[] = [];
  protected options: MemoryBackendOptions;
  #failures = new Map<MemoryMethod, FailureSpec[]>();
  protected closed = false;

  constructor(options: MemoryBackendOptions = {}, world?: MemoryWorldData) {
    this.options = options;
    this.clock = options.clock ?? systemClock;
    this.storage = options.storage ?? new InMemoryStorage(world);
    this.capabilities = {
      ...DEFAULT_CAPABILITIES,
      ...world?.capabilities,
      ...options.capabilities,
    };
  }

  // ---------------------------------------------------------------- test controls

  /** Makes the next `times` calls of `method` (for `name` only, if given) fail with `kind`. */
  fail(method: MemoryMethod, spec: FailureSpec): void {
    const list = this.#failures.get(method) ?? [];
    list.push({ ...spec });
    this.#failures.set(method, list);
  }

  /** Removes every injected failure. */
  clearFailures(): void {
    this.#failures.clear();
  }

  /** Changes test knobs after construction. */
  configure(options: Partial<MemoryBackendOptions>): void {
    Object.assign(this.options, options);
  }

  /** Puts a sandbox into the world directly (no call recorded). */
  seed(name: string, sandbox: Partial<MemorySandbox> = {}): Promise<void> {
    return this.storage.transact((world) => {
      world.sandboxes[name] = {
        state: "stopped",
        created_at: new Date(this.clock.now()).toISOString(),
        ...sandbox,
      };
    });
  }

  /** Changes a sandbox behind tachikoma's back (e.g. it crashed, or an address arrives). */
  mutate(name: string, fn: (sandbox: MemorySandbox) => void): Promise<void> {
    return this.storage.transact((world) => {
      const sb = world.sandboxes[name];
      if (!sb) throw new NotFoundError(`memory: no sandbox '${name}'`);
      fn(sb);
    });
  }

  /** Deletes a sandbox behind tachikoma's back. */
  vanish(name: string): Promise<void> {
    return this.storage.transact((world) => void delete world.sandboxes[name]);
  }

  /** A copy of one sandbox's raw record, or undefined. */
  peek(name: string): Promise<MemorySandbox | undefined> {
    return this.storage.transact((world) => structuredClone(world.sandboxes[name]));
  }

  /** The calls recorded so far (mutating calls only), optionally of one method. */
  calls(method?: MemoryMethod): Promise<CallRecord[]> {
    return this.storage.transact((world) =>
      structuredClone((world.calls ?? []).filter((c) => !method || c.method === method))
    );
  }

  // ---------------------------------------------------------------- internals

  /**
   * One backend call in (usually) one world transaction: injected failures and delays, the
   * call record, then `op`. An error `op` throws is raised after the transaction, so the call
   * record is kept.
   */
  protected async call<T>(
    method: MemoryMethod,
    subject: { name?: string; detail?: Record<string, unknown> },
    op: (world: MemoryWorldData) => T,
  ): Promise<T> {
    const { name, detail } = subject;
    if (this.closed) throw new ConflictError("memory backend is closed");
    const local = this.#failures.get(method);
    const spec = local?.find((s) => !s.name || s.name === name);
    if (spec) {
      if (spec.times !== undefined && --spec.times <= 0) local!.splice(local!.indexOf(spec), 1);
      throw failureError(method, spec);
    }
    const localDelay = this.options.delays?.[method];
    if (localDelay) await this.clock.sleep(localDelay);
    await this.options.onCall?.(method, name);
    type Outcome = { ok: true; value: T } | { ok: false; error: unknown } | { delay: number };
    const attempt = (world: MemoryWorldData): Outcome => {
      try {
        return { ok: true, value: op(world) };
      } catch (error) {
        return { ok: false, error };
      }
    };
    let outcome = await this.storage.transact((world): Outcome => {
      const f = world.failures?.[method];
      if (f && (!f.name || f.name === name) && (f.times === undefined || f.times > 0)) {
        if (f.times !== undefined) f.times--;
        return { ok: false, error: failureError(method, f) };
      }
      if (MUTATING.has(method)) {
        world.calls ??= [];
        const call: CallRecord = { method, at: this.clock.now(), pid: Deno.pid };
        if (name !== undefined) call.name = name;
        if (detail) call.detail = detail;
        world.calls.push(call);
      }
      const delay = localDelay === undefined ? world.delays?.[method] ?? 0 : 0;
      return delay > 0 ? { delay } : attempt(world);
    });
    if ("delay" in outcome) {
      await this.clock.sleep(outcome.delay);
      outcome = await this.storage.transact(attempt);
    }
    if ("delay" in outcome) throw new Error("unreachable");
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  protected sandbox(world: MemoryWorldData, name: string): MemorySandbox {
    const sb = world.sandboxes[name];
    if (!sb) throw new NotFoundError(`sandbox '${name}' does not exist`);
    return sb;
  }

  protected require(capability: keyof Capabilities, what: string): void {
    if (!this.capabilities[capability]) {
      throw new UnsupportedError(`the memory backend is configured without ${what}`);
    }
  }

  protected info(world: MemoryWorldData, name: string, sb: MemorySandbox): SandboxInfo {
    const info: SandboxInfo = {
      name,
      state: sb.state,
      addresses: this.addresses(world, name, sb),
      createdAt: sb.created_at,
    };
    if (sb.image !== undefined) info.image = sb.image;
    return info;
  }

  protected addresses(world: MemoryWorldData, name: string, sb: MemorySandbox): string[] {
    if (sb.state !== "running") return [];
    if (sb.address_at === null || sb.address_at === undefined) return [];
    if (this.clock.now() < sb.address_at) return [];
    return [sb.address ?? this.options.address?.(name) ?? world.defaults?.address ?? "127.0.0.1"];
  }

  protected neverAddress(world: MemoryWorldData, name: string): boolean {
    const opt = this.options.neverAddress;
    if (typeof opt === "function") return opt(name);
    return opt ?? world.defaults?.never_address ?? false;
  }
}
