/**
 * Base images for new sandboxes, on engines with an image store (incus): the configured
 * reference (`[incus] image`, else `base_image`, else the engine's default) is made local before
 * a sandbox is created — pulled once from its image server, with the download's progress on the
 * step, then reused — and `image pull` does the same ahead of time (or refreshes it).
 *
 * @module
 */
import type { Backend, ImageInfo, ImageStore } from "../backends/backend.ts";
import { errorMessage, UnsupportedError } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { Reporter } from "../lib/progress.ts";
import { imageFor, type LifecycleDeps } from "./lifecycle.ts";

/** Pulls `ref` as a reported step (`pulling image …`, with the download's progress). */
async function pullStep(
  reporter: Reporter,
  store: ImageStore,
  options: { ref: string; refresh?: boolean; signal?: AbortSignal },
): Promise<ImageInfo> {
  const { ref } = options;
  const handle = reporter.step(`pulling image ${ref}`);
  try {
    const image = await store.pull(ref, {
      refresh: options.refresh,
      signal: options.signal,
      onProgress: (text) => handle.progress?.(text),
    });
    handle.done(image.pulled ? image.fingerprint.slice(0, 12) : "already local");
    return image;
  } catch (error) {
    handle.fail(error instanceof Error ? error.message : String(error));
    throw error;
  }
}

/**
 * Makes the image of a new sandbox local (pulling it when it is not): null on engines without
 * an image store (tart takes its VM image as it is). Throws a one-line error naming the server
 * and the alias when the reference is bad or the server cannot deliver it.
 */
export async function ensureBaseImage(
  deps: Pick<LifecycleDeps, "config" | "reporter" | "signal">,
  backend: Backend,
): Promise<ImageInfo | null> {
  if (!backend.images) return null;
  const ref = imageFor(deps.config, backend.name);
  const local = await backend.images.local(ref);
  if (local) return local;
  return await pullStep(deps.reporter, backend.images, { ref, signal: deps.signal });
}

/** What a new sandbox is created from. */
export interface ImageChoice {
  /** What `create` gets: the reference, or a prepared image's fingerprint. */
  image: string;
  /** The reference as configured (recorded on the sandbox). */
  label: string;
  /** True when the image is a prepared (already bootstrapped) one. */
  prepared: boolean;
  /**
   * Keeps the sandbox, once bootstrapped, as the prepared image of its stock image (null when
   * there is nothing to keep: a prepared image, a local image, an engine without the feature).
   */
  publish: ((sandbox: string) => Promise<void>) | null;
}

/**
 * The image of a new sandbox: a stock image from an image server is pulled when needed; once a
 * sandbox of it was bootstrapped, the next ones start from that prepared image instead.
 */
export async function chooseImage(
  deps: Pick<LifecycleDeps, "config" | "reporter" | "signal">,
  backend: Backend,
): Promise<ImageChoice> {
  const ref = imageFor(deps.config, backend.name);
  const plain: ImageChoice = { image: ref, label: ref, prepared: false, publish: null };
  const base = await ensureBaseImage(deps, backend);
  const store = backend.images;
  if (!base?.source || !store?.prepared || !store.publishPrepared) return plain;
  const { bootstrapRecipe } = await import("../provision/bootstrap.ts");
  const recipe = await bootstrapRecipe(deps.config.ssh_user);
  const prepared = await store.prepared(base, recipe);
  if (prepared) return { image: prepared.fingerprint, label: ref, prepared: true, publish: null };
  const publishPrepared = store.publishPrepared;
  return {
    ...plain,
    publish: async (sandbox) => {
      const handle = deps.reporter.step("keeping the bootstrapped system for the next sandboxes");
      try {
        const image = await publishPrepared(sandbox, base, recipe);
        handle.done(image.fingerprint.slice(0, 12));
      } catch (error) {
        // Only later spawns lose: they bootstrap again.
        handle.fail(errorMessage(error));
        log.warn(`could not keep the bootstrapped system of ${ref}: ${errorMessage(error)}`);
      }
    },
  };
}

/** Input of {@link pullImage}. */
export interface PullRequest {
  /** The reference (default: what new sandboxes use). */
  ref?: string;
  /** Ask the server again even when the image is local (its newest version). */
  refresh?: boolean;
}

/** `image pull`: pulls the image of new sandboxes (or `ref`) into the engine's store. */
export async function pullImage(
  deps: Pick<LifecycleDeps, "config" | "reporter" | "signal" | "backend">,
  request: PullRequest = {},
): Promise<ImageInfo> {
  const backend = await deps.backend();
  if (!backend.images) {
    throw new UnsupportedError(`the ${backend.name} backend does not pull images`, {
      hint: backend.name === "tart"
        ? "tart clones a local VM image: tart pull <OCI image> makes one"
        : 'set backend = "incus" to pull stock images',
    });
  }
  const ref = request.ref ?? imageFor(deps.config, backend.name);
  return await pullStep(deps.reporter, backend.images, {
    ref,
    refresh: request.refresh ?? true,
    signal: deps.signal,
  });
}
