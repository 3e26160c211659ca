/**
 * Spawn's creation of a sandbox the engine does not have: what an earlier sandbox of the name
 * left (host keys, proxy token) dropped, a `creating` entry recorded, then the sandbox cloned
 * from its fork source or created from its image (made local first). A failure leaves no ghost:
 * nothing made means no entry (or, when the image could not be had, a `failed` one saying why).
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { ConflictError, errorMessage } from "../lib/errors.ts";
import { type LifecycleDeps, patchRecord } from "./lifecycle.ts";
import { revokeProxyToken } from "./proxy_link.ts";
import { chooseImage, type ImageChoice } from "./images.ts";
import type { ForkSource } from "./fork.ts";
import { step } from "./step.ts";

/** What {@link createSandbox} makes. */
export interface CreateTarget {
  backend: Backend;
  name: string;
  /** The sandbox's earlier entry, when it had one. */
  existing: SandboxRecord | undefined;
  /** The entry of the new sandbox (status `creating`, provisioning not started). */
  entry: SandboxRecord;
  /** Clone from here instead of creating from the image. */
  fork: ForkSource | null;
}

/** Creates (or clones) the sandbox; returns the image chosen (null: cloned). */
export async function createSandbox(
  deps: LifecycleDeps,
  target: CreateTarget,
): Promise<ImageChoice | null> {
  const { backend, name, existing, fork } = target;
  const { reporter, store, config } = deps;
  if (existing?.backend && existing.backend !== backend.name) {
    reporter.note(
      `${name} was on the ${existing.backend} backend; creating it on ${backend.name} ` +
        `(the ${existing.backend} one, if still there, is left alone)`,
    );
  } else if (existing && existing.status !== "creating" && existing.status !== "failed") {
    reporter.note(`sandbox ${name} is gone from ${backend.name}; creating it again`);
  }
  // A sandbox of this name that existed before had other host keys, and its own proxy token.
  await (await import("./interactive.ts")).forgetHostKeys(deps.stateDir, name);
  await revokeProxyToken(deps.stateDir, name);
  await store.put(target.entry);
  /** Nothing was made (or the name belongs to something else): no entry, no ghost. */
  const undo = async (error: unknown) => {
    if (!(error instanceof ConflictError)) await backend.delete(name).catch(() => {});
    await store.remove(name);
  };
  if (fork) {
    const what = fork.kind === "base"
      ? `base ${fork.name}`
      : fork.checkpoint
      ? `${fork.name}:${fork.checkpoint}`
      : fork.name;
    await step(deps, `cloning ${what} into ${name}`, async () => {
      try {
        await backend.clone(name, fork.clone);
      } catch (error) {
        await undo(error);
        throw error;
      }
    });
    return null;
  }
  let choice: ImageChoice;
  try {
    choice = await chooseImage(deps, backend);
  } catch (error) {
    // Nothing was made: the entry says why, `spawn` tries again, `destroy` forgets it.
    await patchRecord(store, name, (r) => {
      r.status = "failed";
      r.failure = errorMessage(error).split("\n")[0];
    });
    throw error;
  }
  await step(deps, `creating sandbox ${name}`, async () => {
    try {
      await backend.create(name, {
        image: choice.image,
        label: choice.label,
        cpus: config.vm_cpus,
        memoryMb: config.vm_memory,
        diskGb: backend.name === "tart" ? config.tart.disk_size_gb : undefined,
      });
    } catch (error) {
      await undo(error);
      throw error;
    }
  });
  return choice;
}
