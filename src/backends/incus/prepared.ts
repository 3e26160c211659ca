/**
 * Prepared images: a stock image once bootstrapped (the sandbox user, sudo, sshd, git… — see
 * `src/provision/bootstrap.ts`) kept in the local store, so the next sandboxes of that image
 * start bootstrapped and their bootstrap is one quick check instead of a package install.
 *
 * Publishing works on a sandbox right after its bootstrap, before anything of the user's enters
 * it (no key, code, token or profile yet): its identity (machine-id, SSH host keys, DHCP leases,
 * random seed) is moved aside to `/run` (a tmpfs, outside any snapshot), a snapshot is taken, the
 * identity moved back, the snapshot published as an image (alias
 * `tachikoma/prepared/<base fingerprint>/<recipe>`) and deleted. Sandboxes made from it get a
 * new machine-id at boot and new host keys from the sshd unit's drop-in. Other prepared images
 * of the same reference and user (an older base, an older recipe) are deleted.
 *
 * @module
 */
import type { ImageInfo } from "../backend.ts";
import { ConflictError, errorMessage, NotFoundError, RuntimeError } from "../../lib/errors.ts";
import { log } from "../../lib/log.ts";
import type { IncusClient } from "./client.ts";
import { execCommand } from "./exec.ts";
import type { ExecContext } from "./exec_ops.ts";
import { instancePath } from "./instances.ts";

const SNAPSHOT = "tachikoma-prepare";
const STASH = "/run/tachikoma-prepare";
/** Image properties that say what a prepared image is. */
const P_REF = "tachikoma.prepared_from";
const P_BASE = "tachikoma.base";
const P_RECIPE = "tachikoma.recipe";
const P_USER = "tachikoma.user";

const IDENTITY = [
  "/etc/machine-id",
  "/var/lib/systemd/random-seed",
  "/etc/ssh/ssh_host_*",
  "/var/lib/dhcp/*.leases",
  "/var/lib/NetworkManager/*.lease",
  "/var/lib/systemd/network/*.lease",
];

const HIDE = [
  "set -eu",
  `s=${STASH}`,
  'rm -rf "$s"; mkdir -p "$s"',
  `for f in ${IDENTITY.join(" ")}; do`,
  '  [ -e "$f" ] || continue',
  '  d="$s$(dirname "$f")"; mkdir -p "$d"; cp -a "$f" "$d/"',
  '  if [ "$f" = /etc/machine-id ]; then : > "$f"; else rm -f "$f"; fi',
  "done",
  "sync",
].join("\n");

const RESTORE = [
  "set -eu",
  `s=${STASH}`,
  '[ -d "$s" ] || exit 0',
  'cd "$s"',
  'find . -type f | while read -r f; do cp -a "$f" "/${f#./}"; done',
  'cd /; rm -rf "$s"',
].join("\n");

/** The local alias of the image prepared from `base` by `recipe`. */
export function preparedAlias(base: string, recipe: string): string {
  return `tachikoma/prepared/${base.slice(0, 12)}/${recipe}`;
}

interface IncusImage {
  fingerprint: string;
  size?: number;
  properties?: Record<string, string>;
}

/** The prepared image of (`base`, `recipe`), or null. */
export async function findPrepared(
  client: IncusClient,
  base: ImageInfo,
  recipe: string,
): Promise<ImageInfo | null> {
  try {
    const alias = await client.get<{ target: string }>(
      `/1.0/images/aliases/${encodeURIComponent(preparedAlias(base.fingerprint, recipe))}`,
    );
    const image = await client.get<IncusImage>(`/1.0/images/${alias.target}`);
    return {
      ref: base.ref,
      fingerprint: image.fingerprint,
      localAlias: preparedAlias(base.fingerprint, recipe),
      sizeBytes: image.size,
      pulled: false,
    };
  } catch (error) {
    if (error instanceof NotFoundError) return null;
    throw error;
  }
}

/** Runs `step.script` as root in the sandbox; `step.what` names it in the error. */
async function guestRoot(
  exec: ExecContext,
  name: string,
  step: { script: string; what: string },
): Promise<void> {
  const { script, what } = step;
  const r = await execCommand(exec, name, { argv: ["sh", "-c", script], user: "root" });
  if (r.code !== 0) {
    throw new RuntimeError(
      "prepare_image",
      `${what} in ${name} failed (exit ${r.code}): ${new TextDecoder().decode(r.stderr).trim()}`,
    );
  }
}

/** Options of {@link publishPrepared}. */
export interface PublishOptions {
  client: IncusClient;
  exec: ExecContext;
  /** The bootstrapped sandbox. */
  sandbox: string;
  base: ImageInfo;
  recipe: string;
  /** For the image's description (`admin`). */
  user: string;
  timeoutMs: number;
}

/** Publishes the sandbox's system as the prepared image of (`base`, `recipe`); see the module. */
export async function publishPrepared(options: PublishOptions): Promise<ImageInfo> {
  const { client, exec, sandbox, base, recipe } = options;
  const snapshots = `${instancePath(sandbox)}/snapshots`;
  const subject = `sandbox "${sandbox}"`;
  await client.mutate("DELETE", `${snapshots}/${SNAPSHOT}`, { subject }).catch(() => {});
  try {
    await guestRoot(exec, sandbox, { script: HIDE, what: "moving its identity aside" });
    await client.mutate("POST", snapshots, {
      body: { name: SNAPSHOT, stateful: false },
      subject,
      timeoutMs: options.timeoutMs,
    });
  } finally {
    await guestRoot(exec, sandbox, { script: RESTORE, what: "restoring its identity" });
  }
  let fingerprint: string;
  try {
    const op = await client.mutate("POST", "/1.0/images", {
      body: {
        source: { type: "snapshot", name: `${sandbox}/${SNAPSHOT}` },
        compression_algorithm: "zstd",
        properties: {
          description: `${base.ref} bootstrapped for ${options.user} by tachikoma`,
          [P_REF]: base.ref,
          [P_BASE]: base.fingerprint,
          [P_RECIPE]: recipe,
          [P_USER]: options.user,
        },
      },
      subject: `image prepared from ${base.ref}`,
      timeoutMs: options.timeoutMs,
    });
    const fp = op?.metadata?.fingerprint;
    if (typeof fp !== "string") {
      throw new RuntimeError("prepare_image", "publishing reported no fingerprint");
    }
    fingerprint = fp;
  } finally {
    await client.mutate("DELETE", `${snapshots}/${SNAPSHOT}`, { subject }).catch((error) =>
      log.warn(`could not delete the snapshot ${SNAPSHOT} of ${sandbox}: ${errorMessage(error)}`)
    );
  }
  const alias = preparedAlias(base.fingerprint, recipe);
  try {
    await client.call("POST", "/1.0/images/aliases", {
      body: { name: alias, target: fingerprint, description: `${base.ref}, bootstrapped` },
    });
  } catch (error) {
    if (!(error instanceof ConflictError)) throw error;
    // Another spawn prepared it meanwhile: keep theirs.
    await client.mutate("DELETE", `/1.0/images/${fingerprint}`).catch(() => {});
    return (await findPrepared(client, base, recipe))!;
  }
  await dropOlder(client, base, { user: options.user, keep: fingerprint });
  return (await findPrepared(client, base, recipe))!;
}

/**
 * Deletes the other prepared images of the same reference for the same user: their base was
 * updated since, or an older tachikoma's bootstrap made them.
 */
async function dropOlder(
  client: IncusClient,
  base: ImageInfo,
  of: { user: string; keep: string },
): Promise<void> {
  const { user, keep } = of;
  try {
    const images = await client.get<IncusImage[]>("/1.0/images", {
      query: { recursion: "1" },
    });
    for (const image of images) {
      const p = image.properties ?? {};
      if (p[P_REF] !== base.ref || p[P_USER] !== user || image.fingerprint === keep) continue;
      await client.mutate("DELETE", `/1.0/images/${image.fingerprint}`);
      log.debug(`incus: deleted the outdated prepared image ${image.fingerprint} of ${base.ref}`);
    }
  } catch (error) {
    log.debug(`incus: cleaning outdated prepared images: ${errorMessage(error)}`);
  }
}
