/**
 * `tachikoma image list|build [base]|rm <base>`: the bases (see `src/core/bases.ts`);
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

/** Runs `image list`: every base with its status, size and age. */
export async function list(ctx: CommandContext): Promise<void> {
  const deps = await ctx.app.lifecycleDeps();
  const backend = await deps.backend();
  try {
    const { baseViews } = await import("../core/bases.ts");
    const bases = await baseViews(deps.config, backend, deps.stateDir);
    const { formatSize } = await import("../core/checkpoints.ts");
    const { shortTime } = await import("../core/inventory.ts");
    const { renderTable } = await import("../lib/table.ts");
    ctx.out.result({ backend: backend.name, bases }, () =>
      renderTable([
        { header: "BASE", value: (b) => b.name },
        { header: "FROM", value: (b) => b.from ?? b.image ?? "-" },
        { header: "STATUS", value: (b) => b.status },
        { header: "SIZE", value: (b) => formatSize(b.size_bytes) },
        { header: "BUILT", value: (b) => b.built_at ? shortTime(b.built_at) : "-" },
        { header: "DESCRIPTION", value: (b) => b.description ?? "" },
      ], bases));
  } finally {
    await backend.close();
  }
}

/** Runs `image build [base] [--force]`. */
export async function build(
  ctx: CommandContext,
  opts: { base?: string; force: boolean },
): Promise<void> {
  const deps = await ctx.app.lifecycleDeps();
  try {
    const { buildBases } = await import("../core/base_build.ts");
    const result = await buildBases(deps, { name: opts.base, force: opts.force });
    const { formatDuration } = await import("../core/checkpoints.ts");
    ctx.out.result(
      result,
      () =>
        result.bases.map((b) =>
          b.action === "built"
            ? `Built base ${b.name} (${b.sandbox}) in ${formatDuration(b.elapsed_ms)}`
            : `Base ${b.name} is ready (${b.sandbox})`
        ).join("\n"),
    );
  } finally {
    await (await deps.backend()).close();
  }
}

/** Runs `image rm <base>`. */
export async function rm(ctx: CommandContext, opts: { base: string }): Promise<void> {
  const deps = await ctx.app.lifecycleDeps();
  try {
    const { removeBase } = await import("../core/base_build.ts");
    const result = await removeBase(deps, opts.base);
    ctx.out.result(
      result,
      () =>
        result.removed.length
          ? `Removed base ${result.name} (${result.removed.join(", ")})`
          : `Base ${result.name} was not built`,
    );
  } finally {
    await (await deps.backend()).close();
  }
}
