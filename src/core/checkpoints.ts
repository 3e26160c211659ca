/**
 * Checkpoints (engine snapshots) of a sandbox: create, list, restore, delete. A checkpoint
 * holds the sandbox's own disk (installed packages, home directory, caches); the worktree is a
 * host directory shared into the sandbox, so it is neither saved nor restored (git keeps that).
 *
 * Restore is a forced stop (the disk is replaced anyway) → restore → start with the sandbox's
 * shares (computed as spawn does) → wait for boot (address + SSH banner, `boot_timeout_secs`),
 * under the sandbox's lock; the label and the worktree are checked before anything is stopped. A restore that fails leaves the sandbox started again
 * (when it was running); a restored sandbox that does not boot is stopped and marked `failed`,
 * as spawn does.
 *
 * Engines without `capabilities.checkpoints` get an {@link UnsupportedError} with the
 * way out.
 *
 * @module
 */
import type { Backend, Checkpoint, Share } from "../backends/backend.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { withSandboxLock } from "../state/lock.ts";
import { openRepo } from "../git/repo.ts";
import type { SandboxService } from "./sandbox_service.ts";
import { sandboxShares } from "./sandbox_shares.ts";
import { isInterrupt, isNotFound, patchRecord, stopTimeoutMs } from "./lifecycle.ts";
import { startAgain } from "./checkpoint_start.ts";
import { step } from "./step.ts";
import {
  ConflictError,
  errorMessage,
  NotFoundError,
  UnsupportedError,
  UsageError,
} from "../lib/errors.ts";
import { log } from "../lib/log.ts";

/** Valid checkpoint labels: what every engine accepts (Incus snapshot names included). */
export const LABEL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** One checkpoint as `checkpoint list --json` shows it. */
export interface CheckpointView {
  label: string;
  /** RFC 3339 UTC. */
  created_at: string;
  /** Bytes the engine reports, null when it reports none. */
  size_bytes: number | null;
}

/** Result of {@link createCheckpoint}. */
export interface CheckpointCreated extends CheckpointView {
  name: string;
}

/** Result of {@link listCheckpoints}. */
export interface CheckpointList {
  name: string;
  backend: string;
  /** Oldest first. */
  checkpoints: CheckpointView[];
}

/** Result of {@link restoreCheckpoint}. */
export interface CheckpointRestored {
  name: string;
  label: string;
  /** Live state before the restore. */
  previous: string;
  status: "running";
  ip: string;
  /** Wall time of the whole restore (stop → boot), in ms. */
  elapsed_ms: number;
}

/** Result of {@link deleteCheckpoint}. */
export interface CheckpointDeleted {
  name: string;
  label: string;
  deleted: true;
}

/** The default label at a time: `tk-YYYYMMDD-HHMMSS` (UTC). */
export function defaultLabel(ms: number): string {
  const s = new Date(ms).toISOString(); // 2026-05-01T12:00:00.000Z
  return `tk-${s.slice(0, 10).replaceAll("-", "")}-${s.slice(11, 19).replaceAll(":", "")}`;
}

/** Throws a {@link UsageError} naming the value unless `label` is a valid checkpoint label. */
export function validateLabel(label: string): void {
  if (!LABEL_RE.test(label)) {
    throw new UsageError(
      `invalid checkpoint label ${JSON.stringify(label)}: use letters, digits, '.', '_' and ` +
        "'-' (at most 63, starting with a letter or digit)",
    );
  }
}

/** Throws an {@link UnsupportedError} (with the way out) when the engine has no checkpoints. */
export function requireCheckpoints(backend: Backend): void {
  if (backend.capabilities.checkpoints) return;
  const hint = backend.name === "tart"
    ? "tart has no snapshots; use `tachikoma destroy` and spawn again"
    : 'use the incus backend (`--backend incus` or `backend = "incus"`) for checkpoints';
  throw new UnsupportedError(`the ${backend.name} backend cannot take checkpoints`, { hint });
}

/** `1.5 KiB`, `23.4 MiB`… (IEC); `-` when unknown. */
export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0
    ? `${value} B`
    : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** `850 ms`, `4.2 s`, `37 s`, `2 min 05 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const secs = Math.round(ms / 1000);
  if (secs < 60) return `${secs} s`;
  return `${Math.floor(secs / 60)} min ${String(secs % 60).padStart(2, "0")} s`;
}

function view(c: Checkpoint): CheckpointView {
  return { label: c.name, created_at: c.createdAt, size_bytes: c.sizeBytes ?? null };
}

/** Takes a checkpoint (default label: {@link defaultLabel}, made unique). */
export async function createCheckpoint(
  service: SandboxService,
  options: { name?: string; label?: string } = {},
): Promise<CheckpointCreated> {
  if (options.label !== undefined) validateLabel(options.label);
  const record = await service.resolve(options.name);
  return await locked(service, record.name, async () => {
    const backend = await service.backend();
    requireCheckpoints(backend);
    const state = await requireLive(backend, record);
    let label = options.label;
    if (label === undefined) {
      const taken = new Set((await backend.listCheckpoints(record.name)).map((c) => c.name));
      const base = defaultLabel(service.deps.clock.now());
      label = base;
      for (let n = 2; taken.has(label); n++) label = `${base}-${n}`;
    }
    // Engines that checkpoint a stopped sandbox (tart: a clone): stop it, start it again after.
    const restart = backend.capabilities.checkpointsStopped === true && state === "running";
    const shares = restart ? await sharesOf(service, record) : [];
    if (restart) {
      await step(
        service.deps,
        `stopping ${record.name} (${backend.name} checkpoints it stopped)`,
        () =>
          backend.stop(record.name, {
            timeoutMs: stopTimeoutMs(service.deps.config, backend.name),
          }),
      );
      await patchRecord(service.deps.store, record.name, (r) => {
        r.status = "stopped";
        r.ip = null;
      });
    }
    const handle = service.deps.reporter.step(`taking checkpoint ${label} of ${record.name}`);
    let made: Checkpoint;
    try {
      made = await backend.createCheckpoint(record.name, label);
      handle.done();
    } catch (error) {
      handle.fail(errorMessage(error));
      if (restart) {
        await startAgain(service, backend, {
          name: record.name,
          shares,
          after: "a failed checkpoint",
        })
          .catch((e) => log.warn(`could not start ${record.name} again: ${errorMessage(e)}`));
      }
      if (error instanceof ConflictError && /exist/i.test(error.message)) {
        throw new ConflictError(`${record.name} already has a checkpoint "${label}"`, {
          hint: "pick another --label, or `tachikoma checkpoint delete " +
            `${record.name} ${label}\` first`,
          cause: error,
        });
      }
      throw error;
    }
    if (restart) {
      await startAgain(service, backend, {
        name: record.name,
        shares,
        after: `checkpointing "${label}"`,
      });
    }
    await service.touch(record.name);
    return { name: record.name, ...view(made) };
  });
}

/** The checkpoints of a sandbox, oldest first. */
export async function listCheckpoints(
  service: SandboxService,
  options: { name?: string } = {},
): Promise<CheckpointList> {
  const record = await service.resolve(options.name);
  const backend = await service.backend();
  requireCheckpoints(backend);
  let list: Checkpoint[];
  try {
    list = await backend.listCheckpoints(record.name);
  } catch (error) {
    if (isNotFound(error)) await requireLive(backend, record);
    throw error;
  }
  const checkpoints = list.map(view).sort((a, b) =>
    a.created_at.localeCompare(b.created_at) || a.label.localeCompare(b.label)
  );
  return { name: record.name, backend: backend.name, checkpoints };
}

/** Restores a checkpoint: stop → restore → start with the shares → boot wait. */
export async function restoreCheckpoint(
  service: SandboxService,
  options: { name?: string; label: string },
): Promise<CheckpointRestored> {
  validateLabel(options.label);
  const label = options.label;
  const record = await service.resolve(options.name);
  const { clock, reporter, store } = service.deps;
  return await locked(service, record.name, async () => {
    const backend = await service.backend();
    requireCheckpoints(backend);
    const started = clock.now();
    const previous = await requireLive(backend, record);
    await requireCheckpoint(backend, record.name, label);
    // Everything that can fail without touching the sandbox happens before the stop.
    const shares = await sharesOf(service, record);
    const name = record.name;

    if (previous !== "stopped") {
      // Forced: the disk is about to be replaced, a graceful shutdown would save nothing.
      await step(service.deps, `stopping ${name}`, () => backend.stop(name, { force: true }));
    }
    await patchRecord(store, name, (r) => {
      r.status = r.status === "failed" ? "failed" : "stopped";
      r.ip = null;
    });
    try {
      await step(
        service.deps,
        `restoring checkpoint ${label}`,
        () => backend.restoreCheckpoint(name, label),
      );
    } catch (error) {
      if (previous === "running" && !isInterrupt(error, service.deps.signal)) {
        reporter.note(`restore failed; starting ${name} again as it was`);
        try {
          await backend.start(name, { shares });
          await patchRecord(store, name, (r) => void (r.status = "running"));
        } catch (startError) {
          log.warn(`could not start ${name} again: ${errorMessage(startError)}`);
        }
      }
      throw error;
    }

    const address = await startAgain(service, backend, {
      name,
      shares,
      after: `restoring "${label}"`,
    });
    return {
      name,
      label,
      previous,
      status: "running",
      ip: address,
      elapsed_ms: clock.now() - started,
    };
  });
}

/** Deletes a checkpoint. */
export async function deleteCheckpoint(
  service: SandboxService,
  options: { name?: string; label: string },
): Promise<CheckpointDeleted> {
  validateLabel(options.label);
  const record = await service.resolve(options.name);
  return await locked(service, record.name, async () => {
    const backend = await service.backend();
    requireCheckpoints(backend);
    await requireLive(backend, record);
    try {
      await backend.deleteCheckpoint(record.name, options.label);
    } catch (error) {
      if (isNotFound(error)) throw noSuchCheckpoint(record.name, options.label, error);
      throw error;
    }
    return { name: record.name, label: options.label, deleted: true };
  });
}

/** The live state; NotFoundError (with the way out) when the engine no longer has it. */
async function requireLive(backend: Backend, record: SandboxRecord): Promise<string> {
  try {
    return (await backend.get(record.name)).state;
  } catch (error) {
    if (!isNotFound(error)) throw error;
    throw new NotFoundError(`sandbox ${record.name} no longer exists in ${backend.name}`, {
      hint: `\`tachikoma spawn ${record.branch}\` creates it again (its checkpoints are gone); ` +
        "`tachikoma prune` drops the stale entry",
      cause: error,
    });
  }
}

async function requireCheckpoint(backend: Backend, name: string, label: string): Promise<void> {
  const all = await backend.listCheckpoints(name);
  if (!all.some((c) => c.name === label)) throw noSuchCheckpoint(name, label);
}

function noSuchCheckpoint(name: string, label: string, cause?: unknown): NotFoundError {
  return new NotFoundError(`${name} has no checkpoint "${label}"`, {
    hint: `\`tachikoma checkpoint list ${name}\` shows its checkpoints`,
    cause,
  });
}

/** The shares a start of this sandbox gets (as spawn computes them). */
async function sharesOf(service: SandboxService, record: SandboxRecord): Promise<Share[]> {
  // An engine that cannot mount the host gets none (the code is in the guest: code by git).
  if ((await service.backend()).capabilities.mountHost === false) return [];
  try {
    if (!(await Deno.stat(record.worktree_path)).isDirectory) throw new Error("not a directory");
    const mainRoot = record.repo_root ??
      (await openRepo(service.deps.runner, record.worktree_path)).mainRoot;
    return await sandboxShares({
      runner: service.deps.runner,
      mainRoot,
      worktreePath: record.worktree_path,
      home: service.deps.home,
      claudeDirs: service.deps.config.share_claude_dirs,
    });
  } catch (error) {
    throw new NotFoundError(
      `the worktree of ${record.name} is gone or broken (${record.worktree_path}): ` +
        `${errorMessage(error).split("\n")[0]}`,
      {
        hint: `nothing was changed; \`tachikoma spawn ${record.branch}\` makes the worktree again`,
        cause: error,
      },
    );
  }
}

function locked<T>(service: SandboxService, name: string, fn: () => Promise<T>): Promise<T> {
  return withSandboxLock({
    dir: service.deps.stateDir,
    name,
    signal: service.deps.signal,
    clock: service.deps.clock,
  }, fn);
}
