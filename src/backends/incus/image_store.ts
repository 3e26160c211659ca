/**
 * The Incus backend's {@link ImageStore} (remote references pulled once, prepared images) and the
 * `source` of a new instance, over `images.ts` and `prepared.ts`.
 *
 * @module
 */
import type { ImageInfo, ImagePullOptions, ImageStore } from "../backend.ts";
import type { IncusClient } from "./client.ts";
import type { ExecContext } from "./exec_ops.ts";
import type { ImageServer } from "./image_ref.ts";
import { type ImageContext, localImage, parseRef, pullImage } from "./images.ts";
import { imageSource } from "./instances.ts";
import { findPrepared, publishPrepared } from "./prepared.ts";

/** What the image store needs from the backend. */
export interface ImageStoreOptions {
  client: IncusClient;
  servers: Readonly<Record<string, ImageServer>>;
  /** Exec in sandboxes (publishing a prepared image moves its identity aside). */
  exec: () => ExecContext;
  /** The sandbox user, for prepared images' descriptions. */
  sshUser: string;
  /** `[incus] image`, so messages name the key a reference came from. */
  configuredImage?: string;
  /** Budget of publishing a prepared image. */
  publishTimeoutMs: number;
}

function context(o: ImageStoreOptions): ImageContext {
  return { client: o.client, servers: o.servers };
}

function keyOf(o: ImageStoreOptions, ref: string): string {
  return o.configuredImage === ref ? "incus.image" : "base_image";
}

/** The image store of an Incus backend. */
export function incusImageStore(o: ImageStoreOptions): Required<ImageStore> {
  return {
    local: (ref: string): Promise<ImageInfo | null> =>
      localImage(context(o), parseRef(context(o), ref, keyOf(o, ref))),
    pull: (ref: string, options?: ImagePullOptions): Promise<ImageInfo> =>
      pullImage(context(o), parseRef(context(o), ref, keyOf(o, ref)), options),
    prepared: (base: ImageInfo, recipe: string) => findPrepared(o.client, base, recipe),
    publishPrepared: (sandbox: string, base: ImageInfo, recipe: string) =>
      publishPrepared({
        client: o.client,
        exec: o.exec(),
        sandbox,
        base,
        recipe,
        user: o.sshUser,
        timeoutMs: o.publishTimeoutMs,
      }),
  };
}

/**
 * The `source` of a new instance made from `image`: a local alias or fingerprint as it is; a
 * remote reference's local copy (pulled first when it is not in the store yet — spawn pulls it
 * beforehand, with progress).
 */
export async function instanceSource(
  o: ImageStoreOptions,
  image: string,
): Promise<Record<string, string>> {
  const ref = parseRef(context(o), image, keyOf(o, image));
  if (ref.kind !== "remote") return imageSource(ref);
  const local = await localImage(context(o), ref) ?? await pullImage(context(o), ref);
  return { type: "image", fingerprint: local.fingerprint };
}
