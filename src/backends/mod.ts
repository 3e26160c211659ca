/**
 * Opens the configured backend. Each engine's module is imported only when selected.
 *
 * @module
 */
import type { Backend } from "./backend.ts";
import type { Config } from "../config/schema.ts";
import { NotImplementedError } from "../lib/errors.ts";

export type * from "./backend.ts";

/** What backends may need besides the config. */
export interface BackendContext {
  /** tachikoma's config/state directory (logs, known_hosts…). */
  stateDir: string;
}

/** Opens the backend named by `config.backend`. */
export async function openBackend(config: Config, context: BackendContext): Promise<Backend> {
  // Test double, never selectable by users: see src/backends/memory/.
  const testWorld = Deno.env.get("TACHIKOMA_TEST_MEMORY_WORLD");
  if (testWorld) {
    const m = await import("./memory/mod.ts");
    return m.openMemoryWorld(testWorld);
  }
  switch (config.backend) {
    case "incus":
      return await (await import("./incus/mod.ts")).openIncus(config, context);
    case "tart":
      return await (await import("./tart/mod.ts")).openTart(config, context);
    case "truenas":
      throw new NotImplementedError("backend truenas");
  }
  void context;
}
