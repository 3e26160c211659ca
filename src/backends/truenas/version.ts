/**
 * The version gate of the TrueNAS client (truenas-api.md §2): `system.version` parsed with a
 * `major.minor.patch[.build]` pattern; older than 25 is refused.
 *
 * @module
 */
import { RuntimeError, UnsupportedError } from "../../lib/errors.ts";

/** The oldest TrueNAS with `/api/current`. */
export const MIN_MAJOR = 25;

/** A parsed `system.version`. */
export interface TruenasVersion {
  text: string;
  major: number;
  minor: number;
  patch: number;
}

/** Parses `TrueNAS-25.04.2.4`-style strings (three parts required); null when it does not. */
export function parseVersion(text: string): TruenasVersion | null {
  const m = text.match(/(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?/);
  if (!m) return null;
  return { text, major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

/** The parsed version of `raw`; throws for an unreadable or too old one, naming the host. */
export function checkVersion(host: string, raw: unknown): TruenasVersion {
  const version = typeof raw === "string" ? parseVersion(raw) : null;
  if (!version) {
    throw new RuntimeError(
      "truenas_version",
      `TrueNAS ${host}: system.version: unrecognised version ${JSON.stringify(raw)}`,
    );
  }
  if (version.major < MIN_MAJOR) {
    throw new UnsupportedError(
      `TrueNAS ${host} runs ${version.text}; tachikoma needs TrueNAS SCALE 25.04 or newer`,
      { hint: "upgrade TrueNAS (the /api/current JSON-RPC API arrived in 25.04)" },
    );
  }
  return version;
}
