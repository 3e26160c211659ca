/**
 * The backends' face: the interface types and {@link openBackend}, which opens the engine the
 * configuration selects through the registry (built-in engines registered on first use).
 *
 * @module
 */
import type { Backend, BackendContext } from "./backend.ts";
import type { Config } from "../config/schema.ts";
import type { BackendName } from "../config/defaults.ts";
import { BUILTIN_ENGINES } from "./engines.ts";
import { openRegistered, preloadEngine, registerDefaults } from "./registry.ts";

export type * from "./backend.ts";
export { type Engine, type EngineOpener, registerEngine } from "./registry.ts";

/** Opens the backend named by `config.backend`. */
export async function openBackend(config: Config, context: BackendContext): Promise<Backend> {
  registerDefaults(BUILTIN_ENGINES);
  return await openRegistered(config, context);
}

/**
 * Starts loading the modules of the engine `config.backend` selects (nothing is opened); never
 * throws. Commands call it while they do other work, before they open the backend.
 */
export async function preloadBackend(config: Config): Promise<void> {
  registerDefaults(BUILTIN_ENGINES);
  await preloadEngine(config.backend);
}

/** {@link preloadBackend} by the engine's name, before the configuration is loaded. */
export async function preloadEngineNamed(name: BackendName): Promise<void> {
  registerDefaults(BUILTIN_ENGINES);
  await preloadEngine(name);
}
