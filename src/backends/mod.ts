/**
 * The backends' face: the interface types and {@link openBackend}, which opens the engine the
 * configuration selects through the registry (built-in engines registered on first use).
 *
 * @module
 */
import type { Backend, BackendContext } from "./backend.ts";
import type { Config } from "../config/schema.ts";
import { BUILTIN_ENGINES } from "./engines.ts";
import { openRegistered, registerDefaults } from "./registry.ts";

export type * from "./backend.ts";
export { type Engine, type EngineOpener, registerEngine } from "./registry.ts";

/** Opens the backend named by `config.backend`. */
export async function openBackend(config: Config, context: BackendContext): Promise<Backend> {
  registerDefaults(BUILTIN_ENGINES);
  return await openRegistered(config, context);
}
