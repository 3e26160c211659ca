/**
 * Incus-side helpers of the stock-image lab tests: forget a pulled stock image (and what was
 * prepared from it for one user) so a test pulls and bootstraps for real, tell which image an
 * instance was made from, delete instances whatever state they are in.
 *
 * @module
 */
import type { IncusClient } from "../../src/backends/incus/client.ts";

interface Image {
  fingerprint: string;
  properties?: Record<string, string>;
}

/**
 * Deletes the pulled copy of `alias` from the image server at `url` and the images prepared
 * from it for `user`.
 */
export async function forgetStock(
  client: IncusClient,
  options: { url: string; alias: string; user: string },
): Promise<void> {
  const cache = `tachikoma/${new URL(options.url).host}/${options.alias}`;
  let base: string | null = null;
  try {
    base = (await client.get<{ target: string }>(
      `/1.0/images/aliases/${encodeURIComponent(cache)}`,
    )).target;
  } catch {
    // not pulled
  }
  const images = await client.get<Image[]>("/1.0/images", { query: { recursion: "1" } });
  for (const image of images) {
    const p = image.properties ?? {};
    const prepared = p["tachikoma.user"] === options.user &&
      (p["tachikoma.base"] === base || p["tachikoma.prepared_from"]?.endsWith(`:${options.alias}`));
    if (image.fingerprint === base || prepared) {
      await client.mutate("DELETE", `/1.0/images/${image.fingerprint}`);
    }
  }
}

/** Deletes every image prepared for `user` (its sandboxes then bootstrap from the stock image). */
export async function forgetPrepared(client: IncusClient, user: string): Promise<void> {
  const images = await client.get<Image[]>("/1.0/images", { query: { recursion: "1" } });
  for (const image of images) {
    if (image.properties?.["tachikoma.user"] !== user) continue;
    await client.mutate("DELETE", `/1.0/images/${image.fingerprint}`);
  }
}

/** The fingerprint of the image an instance was created from. */
export async function instanceImage(client: IncusClient, name: string): Promise<string> {
  const instance = await client.get<{ config: Record<string, string> }>(
    `/1.0/instances/${encodeURIComponent(name)}`,
  );
  return instance.config["volatile.base_image"];
}

/** Force-deletes instances (missing ones are fine). */
export async function removeInstances(client: IncusClient, names: string[]): Promise<void> {
  for (const name of names) {
    const path = `/1.0/instances/${encodeURIComponent(name)}`;
    await client.mutate("PUT", `${path}/state`, { body: { action: "stop", force: true } })
      .catch(() => {});
    await client.mutate("DELETE", path).catch(() => {});
  }
}

/** Force-deletes every instance made for a workspace's repo (`tachikoma-<repo>-…`). */
export async function removeInstancesOf(client: IncusClient, repo: string): Promise<void> {
  const base = repo.slice(repo.lastIndexOf("/") + 1);
  const all = await client.get<{ name: string }[]>("/1.0/instances", { query: { recursion: "1" } })
    .catch(() => []);
  await removeInstances(client, all.map((i) => i.name).filter((n) => n.includes(`-${base}-`)));
}
