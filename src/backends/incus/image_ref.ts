/**
 * Image references, as `base_image` and `[incus] image` hold them:
 *
 * - `SERVER:alias` (`images:debian/12`): the image `alias` of the image server named `SERVER` in
 *   `[incus.image_servers]`; pulled once into the local image store, cached there under a local
 *   alias ({@link cacheAlias}), reused after;
 * - `local:alias` or a bare `alias`: an image alias of the local store;
 * - 12 to 64 hex digits: an image fingerprint (or its prefix) in the local store.
 *
 * A reference never carries a URL: servers come only from the (trust-gated) configuration.
 *
 * @module
 */
import { ConfigError } from "../../lib/errors.ts";

/** An image server, by name (`[incus.image_servers.NAME]`). */
export interface ImageServer {
  name: string;
  /** `https://…`. */
  url: string;
  protocol: "simplestreams" | "incus";
  /** PEM file of the server's certificate, pinned. */
  certificate?: string;
}

/** A parsed image reference. */
export type ImageRef =
  | { kind: "fingerprint"; text: string; fingerprint: string }
  | { kind: "alias"; text: string; alias: string }
  | { kind: "remote"; text: string; server: ImageServer; alias: string };

const FINGERPRINT_RE = /^[0-9a-f]{12,64}$/;
// Printable, no spaces or control characters; Incus aliases allow `/` and `:`.
const ALIAS_RE = /^[^\s\p{Cc}]{1,240}$/u;

/** Parses `text` (from `key`, for messages); throws ConfigError for a bad reference. */
export function parseImageRef(
  text: string,
  servers: Readonly<Record<string, ImageServer>>,
  key = "base_image",
): ImageRef {
  const bad = (why: string, hint?: string): never => {
    throw new ConfigError(`${key} = ${JSON.stringify(text)}: ${why}`, {
      hint: hint ??
        "use SERVER:alias (e.g. images:debian/12), a local image alias or a fingerprint",
    });
  };
  const colon = text.indexOf(":");
  if (colon === -1) {
    if (FINGERPRINT_RE.test(text)) return { kind: "fingerprint", text, fingerprint: text };
    if (!ALIAS_RE.test(text)) bad("not an image alias");
    return { kind: "alias", text, alias: text };
  }
  const name = text.slice(0, colon);
  const alias = text.slice(colon + 1);
  if (!ALIAS_RE.test(alias)) bad(`no image alias after "${name}:"`);
  if (name === "local") return { kind: "alias", text, alias };
  const server = Object.hasOwn(servers, name) ? servers[name] : undefined;
  if (!server) {
    const known = Object.keys(servers).sort();
    bad(
      `no image server named "${name}" (configured: ${known.length ? known.join(", ") : "none"})`,
      `add it as [incus.image_servers.${
        /^[a-z0-9_-]+$/.test(name) ? name : "NAME"
      }] with url = "https://…" (docs/configuration.md)`,
    );
  }
  return { kind: "remote", text, server: server!, alias };
}

/**
 * The local alias that caches a remote image: `tachikoma/<host>[<path>]/<alias>`, so two servers
 * with the same alias never share a cache entry, and renaming a server keeps its cache.
 */
export function cacheAlias(ref: { server: ImageServer; alias: string }): string {
  const url = new URL(ref.server.url);
  const path = url.pathname.replace(/\/+$/, "");
  return `tachikoma/${url.host}${path}/${ref.alias}`;
}

/** `SERVER:alias (https://…)`, for messages. */
export function describeRemote(ref: { server: ImageServer; alias: string }): string {
  return `${ref.server.name}:${ref.alias} (${ref.server.url})`;
}
