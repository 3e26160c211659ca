/**
 * Checkpoints of a memory sandbox: copies of its files, restored or cloned from later.
 *
 * @module
 */
import type { Checkpoint } from "../backend.ts";
import { ConflictError, NotFoundError } from "../../lib/errors.ts";
import type { MemoryFile, MemorySandbox } from "./world.ts";

/** Approximate bytes held by a set of files (decoded base64). */
export function sizeOf(files: Record<string, MemoryFile>): number {
  let n = 0;
  for (const f of Object.values(files)) n += Math.floor(f.data.length * 3 / 4);
  return n;
}

/** Takes checkpoint `checkpoint` of sandbox `name`; ConflictError when it exists. */
export function takeCheckpoint(
  sb: MemorySandbox,
  name: string,
  taken: { checkpoint: string; createdAt: string },
): Checkpoint {
  const { checkpoint, createdAt } = taken;
  sb.checkpoints ??= [];
  if (sb.checkpoints.some((c) => c.name === checkpoint)) {
    throw new ConflictError(`checkpoint '${checkpoint}' of '${name}' already exists`);
  }
  sb.checkpoints.push({
    name: checkpoint,
    created_at: createdAt,
    files: structuredClone(sb.files ?? {}),
  });
  return { name: checkpoint, createdAt, sizeBytes: sizeOf(sb.files ?? {}) };
}

/** The checkpoints of a sandbox, oldest first. */
export function listOf(sb: MemorySandbox): Checkpoint[] {
  return (sb.checkpoints ?? []).map((c) => ({
    name: c.name,
    createdAt: c.created_at,
    sizeBytes: sizeOf(c.files),
  }));
}

/** The files of checkpoint `checkpoint`; NotFoundError when there is none. */
export function filesOf(
  sb: MemorySandbox,
  name: string,
  checkpoint: string,
): Record<string, MemoryFile> {
  const cp = (sb.checkpoints ?? []).find((c) => c.name === checkpoint);
  if (!cp) throw new NotFoundError(`checkpoint '${checkpoint}' of '${name}' does not exist`);
  return structuredClone(cp.files);
}

/** Deletes checkpoint `checkpoint`; NotFoundError when there is none. */
export function dropCheckpoint(sb: MemorySandbox, name: string, checkpoint: string): void {
  const before = sb.checkpoints?.length ?? 0;
  sb.checkpoints = (sb.checkpoints ?? []).filter((c) => c.name !== checkpoint);
  if (sb.checkpoints.length === before) {
    throw new NotFoundError(`checkpoint '${checkpoint}' of '${name}' does not exist`);
  }
}
