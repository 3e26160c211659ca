/**
 * The engine registry: which function opens the backend for each engine name. The built-in
 * engines (`engines.ts`) are registered on first use, each loading its module only when it is
 * opened; whatever was registered before them (a test installing the in-memory double) wins.
 * Production code never selects an engine any other way.
 *
 * @module
 */
import type { Backend, BackendContext } from "./backend.ts";
import type { BackendName, Config } from "../config/schema.ts";
import { NotImplementedError } from "../lib/errors.ts";

/** Opens an engine's backend for a configuration. */
export type EngineOpener = (config: Config, context: BackendContext) => Promise<Backend>;

/** An engine as the registry knows it. */
export interface Engine {
  /** The name `backend = "…"` selects. */
  name: BackendName;
  /** Opens the backend (imports the engine's module on first use). */
  open: EngineOpener;
  /**
   * Loads the engine's modules without opening anything, so that they load while the command
   * does other work (optional; `open` must work without it).
   */
  preload?: () => Promise<unknown>;
}

const engines = new Map<BackendName, Engine>();

/** Registers (or replaces) the opener of an engine. */
export function registerEngine(engine: Engine): void {
  engines.set(engine.name, engine);
}

/** Registers each engine that has no opener yet. */
export function registerDefaults(defaults: readonly Engine[]): void {
  for (const e of defaults) if (!engines.has(e.name)) engines.set(e.name, e);
}

/** Forgets every registration (tests). */
export function clearEngines(): void {
  engines.clear();
}

/** Opens the backend `config.backend` names through its registered opener. */
export async function openRegistered(config: Config, context: BackendContext): Promise<Backend> {
  const engine = engines.get(config.backend);
  if (!engine) throw new NotImplementedError(`backend ${config.backend}`);
  return await engine.open(config, context);
}

/** Starts loading the modules of the engine `name` selects, if it has a preload; never throws. */
export async function preloadEngine(name: BackendName): Promise<void> {
  try {
    await engines.get(name)?.preload?.();
  } catch {
    // Opening the engine reports the same failure, when a command opens it.
  }
}
