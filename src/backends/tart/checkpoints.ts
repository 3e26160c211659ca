/**
 * Checkpoints on tart, which has no snapshots: a checkpoint is a copy-on-write clone of the
 * stopped VM (`tart clone`, tart-contract.md §4.3: APFS clones, so it costs little disk), a
 * local VM named `<vm>.tkcp.<UTC stamp>.<label>` (the stamp is the creation time; sandbox names
 * have no dots, so a name cannot be mistaken for another VM's checkpoint). Restore clones the
 * checkpoint to a temporary VM, deletes the sandbox's VM and renames the clone into its place,
 * so the checkpoint stays for later restores and a failed clone leaves the VM as it was.
 * Deleting a sandbox deletes its checkpoints. The VM must be stopped for every operation: tart
 * would copy a live disk.
 *
 * @module
 */
import type { Checkpoint } from "../backend.ts";
import { ConflictError, NotFoundError } from "../../lib/errors.ts";
import type { TartCli } from "./cli.ts";
import type { TartListEntry } from "./parse.ts";

const MARK = ".tkcp.";
const STAMP_RE = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{3})\.(.+)$/;

/** True when a local VM name is a checkpoint of some VM (hidden from `list`). */
export function isCheckpointVm(name: string): boolean {
  return name.includes(MARK);
}

/** The VM name of checkpoint `label` of `vm` taken at `ms`. */
export function checkpointVmName(vm: string, label: string, ms: number): string {
  const s = new Date(ms).toISOString(); // 2026-05-01T12:00:00.123Z
  const stamp = s.slice(0, 19).replace(/[-T:]/g, "") + s.slice(20, 23);
  return `${vm}${MARK}${stamp}.${label}`;
}

/** One checkpoint VM of `vm`, parsed from its name. */
interface CheckpointVm {
  vm: string;
  checkpoint: Checkpoint;
}

function parse(vm: string, entry: TartListEntry): CheckpointVm | null {
  if (entry.source !== "local" || !entry.name.startsWith(`${vm}${MARK}`)) return null;
  const m = STAMP_RE.exec(entry.name.slice(vm.length + MARK.length));
  if (!m) return null;
  const createdAt = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`;
  const gb = entry.sizeGb;
  return {
    vm: entry.name,
    checkpoint: {
      name: m[8],
      createdAt,
      ...(gb !== undefined ? { sizeBytes: Math.round(gb * 1e9) } : {}),
    },
  };
}

/** Tart checkpoints over the CLI. */
export class TartCheckpoints {
  readonly #cli: TartCli;
  readonly #now: () => number;

  constructor(cli: TartCli, now: () => number) {
    this.#cli = cli;
    this.#now = now;
  }

  async #all(vm: string): Promise<{ entry: TartListEntry | undefined; cps: CheckpointVm[] }> {
    const entries = await this.#cli.list();
    const entry = entries.find((e) => e.source === "local" && e.name === vm);
    const cps = entries.map((e) => parse(vm, e)).filter((c): c is CheckpointVm => c !== null)
      .sort((a, b) => a.checkpoint.createdAt.localeCompare(b.checkpoint.createdAt));
    return { entry, cps };
  }

  async #stopped(vm: string, what: string) {
    const found = await this.#all(vm);
    if (!found.entry) throw new NotFoundError(`tart VM ${vm} does not exist`);
    if (found.entry.state === "running") {
      throw new ConflictError(`cannot ${what} ${vm} while it runs: tart would copy a live disk`, {
        hint: `halt it first: tachikoma halt ${vm}`,
      });
    }
    return found;
  }

  async #find(vm: string, label: string): Promise<CheckpointVm> {
    const { entry, cps } = await this.#all(vm);
    if (!entry) throw new NotFoundError(`tart VM ${vm} does not exist`);
    const cp = cps.find((c) => c.checkpoint.name === label);
    if (!cp) throw new NotFoundError(`${vm} has no checkpoint ${JSON.stringify(label)}`);
    return cp;
  }

  /** Clones the stopped VM as checkpoint `label`. */
  async create(vm: string, label: string): Promise<Checkpoint> {
    const { cps } = await this.#stopped(vm, "checkpoint");
    if (cps.some((c) => c.checkpoint.name === label)) {
      throw new ConflictError(`${vm} already has a checkpoint ${JSON.stringify(label)}`);
    }
    const ms = this.#now();
    const name = checkpointVmName(vm, label, ms);
    await this.#cli.clone(vm, name);
    const made = (await this.#all(vm)).cps.find((c) => c.vm === name);
    return made?.checkpoint ?? parse(vm, { name, source: "local", state: "stopped" })!.checkpoint;
  }

  /** The VM's checkpoints, oldest first. */
  async list(vm: string): Promise<Checkpoint[]> {
    const { entry, cps } = await this.#all(vm);
    if (!entry) throw new NotFoundError(`tart VM ${vm} does not exist`);
    return cps.map((c) => c.checkpoint);
  }

  /** Puts a clone of the checkpoint in the stopped VM's place. */
  async restore(vm: string, label: string): Promise<void> {
    const cp = await this.#find(vm, label);
    await this.#stopped(vm, "restore");
    const temp = `${vm}.tkcp-restore`;
    await this.#cli.delete(temp);
    await this.#cli.clone(cp.vm, temp);
    try {
      await this.#cli.delete(vm);
    } catch (error) {
      await this.#cli.delete(temp).catch(() => {});
      throw error;
    }
    await this.#cli.rename(temp, vm);
  }

  /** Deletes checkpoint `label`. */
  async delete(vm: string, label: string): Promise<void> {
    const cp = await this.#find(vm, label);
    await this.#cli.delete(cp.vm);
  }

  /** The VM name to clone for checkpoint `label` of `vm`. */
  async source(vm: string, label: string): Promise<string> {
    return (await this.#find(vm, label)).vm;
  }

  /** Deletes every checkpoint of `vm` (when the VM itself goes). */
  async deleteAll(vm: string): Promise<void> {
    for (const cp of (await this.#all(vm)).cps) await this.#cli.delete(cp.vm);
  }
}
