/**
 * Base images in the Incus image store. A remote reference (`images:debian/12`) is pulled once
 * with `POST /1.0/images` (the server downloads it itself: a background operation whose metadata
 * carries the download progress), cached under a local alias of its own (`tachikoma/<host>/…`,
 * see `image_ref.ts`) and reused from then on without contacting the server; `auto_update` lets
 * Incus refresh it like any image it pulled. `refresh` asks the server again and moves the alias
 * to the newest image (the one it replaces is deleted when nothing else names it).
 *
 * Failures are one line naming the server and the alias: no such image, server unreachable,
 * certificate not trusted.
 *
 * @module
 */
import type { ImageInfo, ImagePullOptions } from "../backend.ts";
import {
  ConfigError,
  ConflictError,
  errorMessage,
  InterruptedError,
  NotFoundError,
  RuntimeError,
  TachikomaError,
  UnreachableError,
} from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import type { IncusClient } from "./client.ts";
import {
  cacheAlias,
  describeRemote,
  type ImageRef,
  type ImageServer,
  parseImageRef,
} from "./image_ref.ts";

/** What the image functions need. */
export interface ImageContext {
  client: IncusClient;
  servers: Readonly<Record<string, ImageServer>>;
  /** Budget of one download (default 30 min). */
  pullTimeoutMs?: number;
}

/** An image alias (`GET /1.0/images/aliases/<name>`). */
interface IncusAlias {
  name: string;
  target: string;
  description?: string;
}

/** An image (`GET /1.0/images/<fingerprint>`). */
interface IncusImage {
  fingerprint: string;
  size?: number;
  aliases?: { name: string }[];
}

const PULL_TIMEOUT_MS = 30 * 60_000;

function aliasPath(name: string): string {
  return `/1.0/images/aliases/${encodeURIComponent(name)}`;
}

function info(ref: ImageRef, image: IncusImage, pulled: boolean): ImageInfo {
  const out: ImageInfo = { ref: ref.text, fingerprint: image.fingerprint, pulled };
  if (image.size !== undefined) out.sizeBytes = image.size;
  if (ref.kind === "remote") {
    out.source = {
      server: ref.server.name,
      url: ref.server.url,
      protocol: ref.server.protocol,
      alias: ref.alias,
    };
    out.localAlias = cacheAlias(ref);
  }
  return out;
}

async function imageByFingerprint(ctx: ImageContext, fingerprint: string): Promise<IncusImage> {
  return await ctx.client.get<IncusImage>(`/1.0/images/${encodeURIComponent(fingerprint)}`, {
    subject: `image ${fingerprint}`,
  });
}

async function aliasTarget(ctx: ImageContext, name: string): Promise<string | null> {
  try {
    return (await ctx.client.get<IncusAlias>(aliasPath(name), { subject: `image "${name}"` }))
      .target;
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

/** The image in the local store, or null when a remote reference is not pulled yet. */
export async function localImage(
  ctx: ImageContext,
  ref: ImageRef,
): Promise<ImageInfo | null> {
  if (ref.kind === "remote") {
    const target = await aliasTarget(ctx, cacheAlias(ref));
    if (!target) return null;
    return info(ref, await imageByFingerprint(ctx, target), false);
  }
  try {
    const fingerprint = ref.kind === "fingerprint"
      ? ref.fingerprint
      : (await ctx.client.get<IncusAlias>(aliasPath(ref.alias))).target;
    return info(ref, await imageByFingerprint(ctx, fingerprint), false);
  } catch (error) {
    if (error instanceof NotFoundError) {
      throw new NotFoundError(`image "${ref.text}" not found in Incus at ${ctx.client.where}`, {
        hint: 'pull one from an image server (base_image = "images:debian/12"), or import it ' +
          "(incus image import <tarball> --alias <name>) and name its alias or fingerprint",
      });
    }
    throw error;
  }
}

async function certificateOf(server: ImageServer): Promise<string | undefined> {
  if (!server.certificate) return undefined;
  try {
    return await Deno.readTextFile(server.certificate);
  } catch (error) {
    throw new ConfigError(
      `[incus.image_servers.${server.name}] certificate: cannot read ${server.certificate}: ${
        errorMessage(error)
      }`,
    );
  }
}

/** The `source` of a request that pulls a remote image (`POST /1.0/images`, instances). */
export async function remoteSource(
  ref: Extract<ImageRef, { kind: "remote" }>,
): Promise<Record<string, string>> {
  const source: Record<string, string> = {
    type: "image",
    mode: "pull",
    server: ref.server.url,
    protocol: ref.server.protocol,
    alias: ref.alias,
  };
  const certificate = await certificateOf(ref.server);
  if (certificate) source.certificate = certificate;
  return source;
}

/** A failed download as one line naming the server and the alias. */
export function pullError(
  ref: Extract<ImageRef, { kind: "remote" }>,
  message: string,
): TachikomaError {
  const what = describeRemote(ref);
  const reason = message.replace(/\s+/g, " ").trim();
  const server = `[incus.image_servers.${ref.server.name}]`;
  if (/couldn't be found|could not be found|not found|no such image|unknown alias/i.test(reason)) {
    return new NotFoundError(`image ${what}: no such image on the server`, {
      hint: `check the alias (the server's list: incus image list ${ref.server.url}) or ${server}`,
      cause: reason,
    });
  }
  if (/x509|certificate|tls: |handshake/i.test(reason)) {
    return new UnreachableError(
      `image ${what}: the server's certificate is not trusted (${shorten(reason)})`,
      {
        hint: `pin it with certificate = "<PEM file>" in ${server}`,
        cause: reason,
      },
    );
  }
  if (
    /connection refused|no such host|dial tcp|i\/o timeout|network is unreachable|no route to host|timeout|EOF|server misbehaving|connection reset/i
      .test(reason)
  ) {
    return new UnreachableError(
      `image ${what}: the image server is unreachable (${shorten(reason)})`,
      {
        hint: `check the server and the network of the Incus host, or ${server} url`,
        cause: reason,
      },
    );
  }
  return new RuntimeError("image_pull", `image ${what}: download failed: ${shorten(reason)}`, {
    cause: reason,
  });
}

function shorten(reason: string): string {
  // Incus wraps the cause: "Failed remote image download: Get "https://…": dial tcp …: refused".
  const tail = reason.replace(/^.*?:\s*(?=(dial tcp|x509|tls|remote error|Get "))/i, "");
  const last = tail.split(/:\s+/).slice(-2).join(": ");
  return last.length > 160 ? last.slice(0, 160) + "…" : last;
}

/** The `download_progress` of an image operation, e.g. `rootfs: 45% (12.3MB/s)`. */
export function progressText(metadata: Record<string, unknown>): string | null {
  const p = metadata.download_progress ?? metadata.progress;
  if (typeof p === "string" && p.trim() !== "") return p.trim();
  if (p && typeof p === "object") {
    const o = p as Record<string, unknown>;
    if (typeof o.percent === "string" || typeof o.percent === "number") {
      return `${o.stage ?? "download"}: ${o.percent}%`;
    }
  }
  return null;
}

/** Points the alias `alias.name` at `alias.target`; returns the fingerprint it named before. */
async function pointAlias(
  ctx: ImageContext,
  alias: { name: string; target: string; description: string },
): Promise<string | null> {
  const { name, target, description } = alias;
  try {
    await ctx.client.call("POST", "/1.0/images/aliases", {
      body: { name, target, description },
      subject: `image alias "${name}"`,
    });
    return null;
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
  }
  const before = await aliasTarget(ctx, name);
  if (before === target) return null;
  await ctx.client.call("PUT", aliasPath(name), {
    body: { target, description },
    subject: `image alias "${name}"`,
  });
  return before;
}

/** Pulls a remote image into the local store (see the module doc). */
export async function pullImage(
  ctx: ImageContext,
  ref: ImageRef,
  options: ImagePullOptions = {},
): Promise<ImageInfo> {
  if (ref.kind !== "remote") {
    const local = await localImage(ctx, ref);
    return local!;
  }
  if (!options.refresh) {
    const local = await localImage(ctx, ref);
    if (local) return local;
  }
  const subject = `image ${describeRemote(ref)}`;
  const body = { source: await remoteSource(ref), auto_update: true };
  let response;
  try {
    response = await ctx.client.call<{ id?: string }>("POST", "/1.0/images", {
      body,
      subject,
      signal: options.signal,
    });
  } catch (error) {
    if (error instanceof TachikomaError && !(error instanceof UnreachableError)) {
      throw pullError(ref, error.message);
    }
    throw error;
  }
  if (!response.operation) {
    throw new RuntimeError("image_pull", `${subject}: Incus started no download operation`);
  }
  const opId = response.operation.slice(response.operation.lastIndexOf("/") + 1);
  let op;
  try {
    op = await ctx.client.wait(response.operation, {
      timeoutMs: ctx.pullTimeoutMs ?? PULL_TIMEOUT_MS,
      signal: options.signal,
      subject,
      onProgress: options.onProgress
        ? (metadata) => {
          const text = progressText(metadata);
          if (text) options.onProgress!(text);
        }
        : undefined,
    });
  } catch (error) {
    if (options.signal?.aborted || error instanceof InterruptedError) {
      await ctx.client.cancel(opId);
      throw error;
    }
    const message = String(error instanceof TachikomaError ? error.cause ?? error.message : error);
    if (/alias already exists/i.test(message)) {
      // Incus found the server's current image already in the store (with our alias on it).
      const local = await localImage(ctx, ref);
      if (local) return local;
    }
    if (error instanceof TachikomaError && !(error instanceof UnreachableError)) {
      throw pullError(ref, message);
    }
    throw error;
  }
  const fingerprint = typeof op.metadata?.fingerprint === "string" ? op.metadata.fingerprint : null;
  if (!fingerprint) {
    throw new RuntimeError("image_pull", `${subject}: the download reported no fingerprint`);
  }
  const alias = cacheAlias(ref);
  const replaced = await pointAlias(ctx, {
    name: alias,
    target: fingerprint,
    description: `${ref.text} from ${ref.server.url} (${ref.server.protocol}), pulled by tachikoma`,
  });
  if (replaced && replaced !== fingerprint) await dropIfUnnamed(ctx, replaced);
  return info(ref, await imageByFingerprint(ctx, fingerprint), true);
}

/** Deletes an image nothing names any more (the old version of a refreshed one). */
async function dropIfUnnamed(ctx: ImageContext, fingerprint: string): Promise<void> {
  try {
    const image = await imageByFingerprint(ctx, fingerprint);
    if ((image.aliases ?? []).length > 0) return;
    await ctx.client.mutate("DELETE", `/1.0/images/${fingerprint}`, {
      subject: `image ${fingerprint}`,
    });
  } catch (error) {
    log.debug(`incus: could not delete the replaced image ${fingerprint}: ${errorMessage(error)}`);
  }
}

/** Parses a reference with the configured servers. */
export function parseRef(ctx: ImageContext, text: string, key?: string): ImageRef {
  return parseImageRef(text, ctx.servers, key);
}
