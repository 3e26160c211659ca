/**
 * What the sandbox lifecycle (spawn, list, exec, halt, destroy, prune…) depends on, passed
 * explicitly so the CLI, the MCP server and the tests each supply their own, plus small shared
 * helpers (times, record patches, the backend's image/stop settings).
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { Config } from "../config/schema.ts";
import { defaultImage } from "../config/defaults.ts";
import type { Clock } from "../lib/clock.ts";
import type { CommandRunner } from "../lib/process.ts";
import type { Reporter } from "../lib/progress.ts";
import type { Provisioner } from "../provision/contract.ts";
import type { SshProbe } from "../lib/probe.ts";
import type { ProxyLink } from "./proxy_link.ts";
import type { StateStore } from "../state/store.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { InterruptedError, NotFoundError } from "../lib/errors.ts";

/** Everything the lifecycle needs. */
export interface LifecycleDeps {
  /** Opens the backend (once; called lazily so `list` survives an unreachable engine). */
  backend: () => Promise<Backend>;
  store: StateStore;
  config: Config;
  /** tachikoma's config/state directory (state.json, locks/). */
  stateDir: string;
  clock: Clock;
  reporter: Reporter;
  /** Loads the provisioner (lazily: reconnecting to a provisioned sandbox may not need it). */
  provisioner: () => Promise<Provisioner>;
  /**
   * The provisioner's recipe version when it is known without loading it (a cheap constant):
   * reconnecting to a sandbox completely provisioned at this version then skips the load.
   * Absent: the provisioner is loaded to compare versions.
   */
  provisionerVersion?: number;
  /** Runs git. */
  runner: CommandRunner;
  /** SSH banner probe for the boot wait. */
  probe: SshProbe;
  /** The host credential proxy: spawn makes sure it runs before the guest is used. */
  proxy?: ProxyLink;
  /** The user's home directory (shares, `~` in worktree_dir). */
  home: string;
  /** Aborted on Ctrl-C. */
  signal?: AbortSignal;
}

/** Memoises an async factory (the backend is opened once per service). */
export function once<T>(factory: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= factory();
    return value;
  };
}

/** RFC 3339 UTC of a clock time. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Changes one record under the state lock, reading the current version first (so concurrent
 * changes to other fields are kept). Returns the new record, or null when it is gone.
 */
export function patchRecord(
  store: StateStore,
  name: string,
  change: (record: SandboxRecord) => void,
): Promise<SandboxRecord | null> {
  return store.update((state) => {
    const record = state.vms.find((r) => r.name === name);
    if (!record) return null;
    change(record);
    return structuredClone(record);
  });
}

/**
 * How fresh a `last_used` exec leaves alone: a command run less than this after the last
 * recorded use does not rewrite the state file (a lock, two fsyncs) only to move it by seconds.
 * Prune counts in days.
 */
export const LAST_USED_RESOLUTION_MS = 60_000;

/** True when `record.last_used` is less than {@link LAST_USED_RESOLUTION_MS} old. */
export function usedRecently(record: { last_used: string }, clock: Clock): boolean {
  const age = clock.now() - Date.parse(record.last_used);
  return age >= 0 && age < LAST_USED_RESOLUTION_MS;
}

/** Records that a command used the sandbox (`last_used` = now). */
export async function touch(store: StateStore, name: string, clock: Clock): Promise<void> {
  await patchRecord(store, name, (r) => void (r.last_used = iso(clock.now())));
}

/** The image a new sandbox is created from on this backend (`[incus] image`, `base_image`). */
export function imageFor(config: Config, backend: string): string {
  if (backend === "incus" && config.incus.image) return config.incus.image;
  return config.base_image ?? defaultImage(backend);
}

/** Graceful stop budget for the backend, in ms (undefined: the backend's default). */
export function stopTimeoutMs(config: Config, backend: string): number | undefined {
  return backend === "tart" ? config.tart.stop_timeout_secs * 1000 : undefined;
}

/** True when the error means the user interrupted (Ctrl-C). */
export function isInterrupt(error: unknown, signal?: AbortSignal): boolean {
  return error instanceof InterruptedError || (signal?.aborted ?? false);
}

/** True for the backend's "no such sandbox". */
export function isNotFound(error: unknown): boolean {
  return error instanceof NotFoundError;
}
