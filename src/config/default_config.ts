/**
 * The whole default configuration, built from `defaults.ts` without the schema (so light
 * commands never load zod).
 *
 * @module
 */
import {
  defaultBackend,
  INCUS_DEFAULTS,
  MCP_DEFAULTS,
  type OsName,
  TART_DEFAULTS,
  TOP_DEFAULTS,
  TRUENAS_DEFAULTS,
} from "./defaults.ts";
import type { Config } from "./schema.ts";

/** The whole default configuration for `os`, as a fresh object (safe to mutate). */
export function defaultConfig(os: OsName = Deno.build.os): Config {
  return structuredClone({
    backend: defaultBackend(os),
    ...TOP_DEFAULTS,
    env: {},
    tart: { ...TART_DEFAULTS },
    incus: { ...INCUS_DEFAULTS },
    truenas: { ...TRUENAS_DEFAULTS },
    mcp: { ...MCP_DEFAULTS },
  }) as unknown as Config;
}
