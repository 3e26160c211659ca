/**
 * Checkpoints of TrueNAS instances as ZFS snapshots of their datasets, and clones through a
 * temporary cron job (truenas-api.md §7.9, §7.10). The snapshot methods are `zfs.snapshot.*`
 * before TrueNAS 25.10 and `pool.snapshot.*` from 25.10 on (the client picks).
 *
 * @module
 */
import type { Checkpoint } from "../backend.ts";
import { ConflictError, NotFoundError, UsageError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import type { TruenasClient } from "./client.ts";
import { isNotFound, TruenasCallError } from "./rpc_errors.ts";

/** A snapshot row as the server gives it (§6). */
interface SnapshotRow {
  id: string;
  snapshot_name: string;
  dataset: string;
  properties?: {
    createtxg?: { value?: string };
    referenced?: { parsed?: number };
  };
}

const LABEL_RE = /^[A-Za-z0-9_.-]{1,200}$/;
const ZFS_PATH_RE = /^[A-Za-z0-9/_.@-]+$/;

/** Checks a checkpoint name (it becomes part of a ZFS snapshot id). */
export function checkLabel(label: string): string {
  if (!LABEL_RE.test(label)) {
    throw new UsageError(
      `invalid checkpoint name ${
        JSON.stringify(label)
      }: TrueNAS snapshot labels use A-Z a-z 0-9 _ . -`,
    );
  }
  return label;
}

function toCheckpoint(row: SnapshotRow): Checkpoint {
  const txg = Number(row.properties?.createtxg?.value ?? 0);
  return {
    name: row.snapshot_name,
    // TrueNAS gives no creation time here: the txg orders them (§7.9), it is not a wall clock.
    createdAt: new Date((Number.isFinite(txg) ? txg : 0) * 1000).toISOString(),
    sizeBytes: row.properties?.referenced?.parsed,
  };
}

/** Snapshot operations on instance datasets. */
export class TruenasSnapshots {
  #dataset: string | null = null;

  constructor(readonly client: TruenasClient) {}

  /** The dataset of instance `full` (`<virt dataset>/containers/<full>`). */
  async dataset(full: string): Promise<string> {
    if (this.#dataset === null) {
      const config = await this.client.call<{ dataset?: string }>("virt.global.config");
      if (!config?.dataset) {
        throw new TruenasCallError({ host: this.client.host, method: "virt.global.config" }, {
          rpcCode: 0,
          reason: "no virt dataset: is the virtualization pool configured?",
        });
      }
      this.#dataset = config.dataset;
    }
    const ds = `${this.#dataset}/containers/${full}`;
    if (!ZFS_PATH_RE.test(ds)) throw new UsageError(`unsafe ZFS dataset name: ${ds}`);
    return ds;
  }

  /** Creates `label`; reads it back. */
  async create(full: string, label: string): Promise<Checkpoint> {
    const dataset = await this.dataset(full);
    checkLabel(label);
    if ((await this.#query(dataset)).some((r) => r.snapshot_name === label)) {
      throw new ConflictError(`checkpoint ${label} of ${full} already exists`);
    }
    await this.client.call(this.client.snapshotMethod("create"), [{ dataset, name: label }]);
    const rows = await this.client.call<SnapshotRow[]>(this.client.snapshotMethod("query"), [[[
      "id",
      "=",
      `${dataset}@${label}`,
    ]]]);
    if (!rows?.length) {
      throw new NotFoundError(`checkpoint ${label} of ${full} vanished after creation`);
    }
    return toCheckpoint(rows[0]);
  }

  /** The checkpoints, oldest first. */
  async list(full: string): Promise<Checkpoint[]> {
    const rows = await this.#query(await this.dataset(full));
    return rows.map(toCheckpoint).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Throws NotFoundError unless `label` exists. */
  async require(full: string, label: string): Promise<string> {
    const dataset = await this.dataset(full);
    checkLabel(label);
    if (!(await this.#query(dataset)).some((r) => r.snapshot_name === label)) {
      throw new NotFoundError(`${full} has no checkpoint ${label}`);
    }
    return `${dataset}@${label}`;
  }

  /** Rolls back to `label` (only the newest works: ZFS without `recursive`). */
  async rollback(full: string, label: string): Promise<void> {
    const id = await this.require(full, label);
    try {
      await this.client.call(this.client.snapshotMethod("rollback"), [id]);
    } catch (error) {
      if (error instanceof TruenasCallError && /more recent snapshots/.test(error.reason)) {
        throw new ConflictError(
          `TrueNAS ${this.client.host}: ${full} can be restored only to its newest checkpoint`,
          { hint: "delete the newer checkpoints first (ZFS rollback without recursive)" },
        );
      }
      throw error;
    }
  }

  /** Deletes `label`. */
  async delete(full: string, label: string): Promise<void> {
    const id = await this.require(full, label);
    await this.client.call(this.client.snapshotMethod("delete"), [id]);
  }

  /** Deletes `label` and says nothing when that fails (a clone's origin cannot go). */
  async deleteQuietly(full: string, label: string): Promise<void> {
    try {
      await this.delete(full, label);
    } catch (error) {
      log.debug(
        `TrueNAS ${this.client.host}: keeping ${full}@${label}: ${(error as Error).message}`,
      );
    }
  }

  async #query(dataset: string): Promise<SnapshotRow[]> {
    try {
      return await this.client.call<SnapshotRow[]>(this.client.snapshotMethod("query"), [[[
        "dataset",
        "=",
        dataset,
      ]]]) ?? [];
    } catch (error) {
      if (isNotFound(error)) return [];
      throw error;
    }
  }
}

/** The root command swapping `target`'s dataset for a clone of `source@label` (§7.10 step 5). */
export function cloneCommand(
  o: { source: string; label: string; target: string; name: string },
): string {
  for (const v of [o.source, o.label, o.target, o.name]) {
    if (!ZFS_PATH_RE.test(v)) throw new UsageError(`unsafe ZFS name in a clone: ${v}`);
  }
  return `zfs destroy -r ${o.target} && zfs clone ${o.source}@${o.label} ${o.target} && ` +
    `m=$(mktemp -d) && mount -t zfs ${o.target} "$m" && echo ${o.name} > "$m/rootfs/etc/hostname"` +
    ` && umount "$m" && rmdir "$m"`;
}

/** Runs `command` as root once through a disabled temporary cron job (always deleted). */
export async function runAsCron(
  client: TruenasClient,
  command: string,
  what: string,
): Promise<void> {
  const job = await client.call<{ id: number }>("cronjob.create", [{
    user: "root",
    command,
    description: `tachikoma: ${what}`,
    enabled: false,
    stdout: true,
    stderr: true,
    schedule: { minute: "00", hour: "00", dom: "1", month: "1", dow: "1" },
  }]);
  try {
    await client.call("cronjob.get_instance", [job.id]);
    await client.callJob("cronjob.run", [job.id, false]);
  } finally {
    await client.call("cronjob.delete", [job.id]).catch((error) =>
      log.warn(
        `TrueNAS ${client.host}: could not delete cron job ${job.id}: ${(error as Error).message}`,
      )
    );
  }
}
