/**
 * Checkpoints as Incus snapshots, and clones as local copies of an instance or of one of its
 * snapshots, with every `volatile.*` key dropped (so the clone gets its own MAC address and
 * UUID) and tachikoma's share devices left out (the clone's shares come with its own start).
 *
 * @module
 */
import type { Checkpoint, CloneSource } from "../backend.ts";
import { ConflictError, NotFoundError, UsageError } from "../../lib/errors.ts";
import type { IncusClient } from "./client.ts";
import { cloneConfig, instancePath } from "./instances.ts";
import { type Device, withoutShares } from "./shares.ts";

/** A snapshot document (`GET …/snapshots/<s>`). */
export interface IncusSnapshot {
  name: string;
  created_at: string;
  size?: number;
  stateful?: boolean;
  config: Record<string, string>;
  devices: Record<string, Device>;
  profiles?: string[];
}

const CHECKPOINT_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function checkName(checkpoint: string): void {
  if (!CHECKPOINT_RE.test(checkpoint)) {
    throw new UsageError(
      `invalid checkpoint name ${JSON.stringify(checkpoint)}: use letters, digits, '.', '_' ` +
        "or '-' (at most 63, starting with a letter or digit)",
    );
  }
}

function snapshotPath(name: string, checkpoint: string): string {
  return `${instancePath(name)}/snapshots/${encodeURIComponent(checkpoint)}`;
}

function toCheckpoint(s: IncusSnapshot): Checkpoint {
  const c: Checkpoint = { name: s.name, createdAt: s.created_at };
  if (typeof s.size === "number" && s.size >= 0) c.sizeBytes = s.size;
  return c;
}

function subject(name: string, checkpoint: string): string {
  return `checkpoint "${checkpoint}" of sandbox "${name}"`;
}

/**
 * Checks the checkpoint's name, then runs `change` on it; a NotFoundError then says whether the
 * sandbox or only its checkpoint is missing.
 */
async function onCheckpoint(
  client: IncusClient,
  target: { name: string; checkpoint: string },
  change: () => Promise<unknown>,
): Promise<void> {
  checkName(target.checkpoint);
  try {
    await change();
  } catch (error) {
    if (error instanceof NotFoundError) {
      throw await whichMissing(client, target.name, target.checkpoint);
    }
    throw error;
  }
}

/** Explains a NotFoundError: the sandbox or only its checkpoint is missing. */
async function whichMissing(client: IncusClient, name: string, checkpoint: string): Promise<Error> {
  try {
    await client.get(instancePath(name), { subject: `sandbox "${name}"` });
  } catch (error) {
    if (error instanceof NotFoundError) return error;
  }
  return new NotFoundError(`${subject(name, checkpoint)} not found`, {
    hint: `tachikoma checkpoint list shows the checkpoints of ${name}`,
  });
}

/** Takes a snapshot (filesystem only). */
export async function createCheckpoint(
  client: IncusClient,
  name: string,
  checkpoint: string,
): Promise<Checkpoint> {
  checkName(checkpoint);
  try {
    await client.mutate("POST", `${instancePath(name)}/snapshots`, {
      body: { name: checkpoint, stateful: false },
      subject: `sandbox "${name}"`,
    });
  } catch (error) {
    if (error instanceof ConflictError && /already exists/.test(error.message)) {
      throw new ConflictError(`${subject(name, checkpoint)} already exists`);
    }
    throw error;
  }
  return toCheckpoint(
    await client.get<IncusSnapshot>(snapshotPath(name, checkpoint), {
      subject: subject(name, checkpoint),
    }),
  );
}

/** Every snapshot, oldest first. */
export async function listCheckpoints(client: IncusClient, name: string): Promise<Checkpoint[]> {
  const snaps = await client.get<IncusSnapshot[]>(`${instancePath(name)}/snapshots`, {
    query: { recursion: "1" },
    subject: `sandbox "${name}"`,
  });
  return snaps.map(toCheckpoint).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** Restores a snapshot (Incus stops and restarts a running instance around it). */
export async function restoreCheckpoint(
  client: IncusClient,
  name: string,
  checkpoint: string,
): Promise<void> {
  await onCheckpoint(client, { name, checkpoint }, () =>
    client.mutate("PUT", instancePath(name), {
      body: { restore: checkpoint },
      subject: subject(name, checkpoint),
    }));
}

/** Deletes a snapshot; NotFoundError when it does not exist. */
export async function deleteCheckpoint(
  client: IncusClient,
  name: string,
  checkpoint: string,
): Promise<void> {
  await onCheckpoint(
    client,
    { name, checkpoint },
    () =>
      client.mutate("DELETE", snapshotPath(name, checkpoint), {
        subject: subject(name, checkpoint),
      }),
  );
}

/** Creates a stopped copy of an instance or of one of its snapshots. */
export async function cloneInstance(
  client: IncusClient,
  name: string,
  source: CloneSource,
): Promise<void> {
  if (source.checkpoint !== undefined) checkName(source.checkpoint);
  const path = source.checkpoint === undefined
    ? instancePath(source.sandbox)
    : snapshotPath(source.sandbox, source.checkpoint);
  const what = source.checkpoint === undefined
    ? `sandbox "${source.sandbox}"`
    : subject(source.sandbox, source.checkpoint);
  const doc = await client.get<IncusSnapshot>(path, { subject: what });
  const body = {
    name,
    type: "container",
    source: {
      type: "copy",
      source: source.checkpoint === undefined
        ? source.sandbox
        : `${source.sandbox}/${source.checkpoint}`,
      instance_only: true,
    },
    config: cloneConfig(doc.config),
    devices: withoutShares(doc.devices),
    profiles: doc.profiles,
  };
  await client.mutate("POST", "/1.0/instances", { body, subject: `sandbox "${name}"` });
}
