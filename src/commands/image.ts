/**
 * `tachikoma image pull [ref]`: pulls the base image of new sandboxes (or `ref`, e.g.
 * `images:debian/12`) into the engine's local image store ahead of time, or refreshes it to the
 * server's newest version; the download's progress shows on a TTY.
 *
 * @module
 */
import type { CommandContext } from "./context.ts";
import { pullImage } from "../core/images.ts";

/** Runs `image pull`. */
export async function pull(ctx: CommandContext, opts: { ref?: string }): Promise<void> {
  const deps = await ctx.app.lifecycleDeps();
  try {
    const image = await pullImage(deps, { ref: opts.ref });
    ctx.out.result(
      {
        image: image.ref,
        fingerprint: image.fingerprint,
        local_alias: image.localAlias ?? null,
        source: image.source ?? null,
        size_bytes: image.sizeBytes ?? null,
        pulled: image.pulled,
      },
      () =>
        `${image.pulled ? "Pulled" : "Up to date:"} ${image.ref} (${
          image.fingerprint.slice(0, 12)
        }${image.localAlias ? `, local alias ${image.localAlias}` : ""})`,
    );
  } finally {
    await (await deps.backend()).close();
  }
}
