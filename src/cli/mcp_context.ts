/**
 * The production {@link McpContext} of `tachikoma mcp`: for each tool call it loads the layered
 * configuration of the call's directory (so a repo's `.tachikoma.toml` applies) and keeps each
 * opened backend for the whole session, closing them when the server stops.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { BackendName } from "../config/defaults.ts";
import { loadConfig } from "../config/load.ts";
import { type Clock, systemClock } from "../lib/clock.ts";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { SandboxService } from "../core/sandbox_service.ts";
import type { McpContext } from "../mcp/context.ts";
import { openSandboxService } from "./open_service.ts";

/** Options of {@link productionContext}. */
export interface ProductionContextOptions {
  cwd: string;
  /** The global `--backend` flag. */
  backend?: BackendName;
  clock?: Clock;
}

/** The context `tachikoma mcp` runs with. */
export function productionContext(options: ProductionContextOptions): McpContext {
  const backends = new Map<string, Promise<Backend>>();
  return {
    cwd: options.cwd,
    clock: options.clock ?? systemClock,
    async openService(request) {
      const loaded = await loadConfig({
        cwd: request.cwd,
        flags: { backend: request.backend ?? options.backend },
      });
      const base = openSandboxService({
        loaded,
        cwd: request.cwd,
        reporter: request.reporter,
        signal: request.signal,
      });
      // One backend per distinct configuration for the whole session (one Incus connection,
      // not one per call). A failed open is not kept: the next call tries again.
      const key = JSON.stringify(loaded.config);
      const shared = () => {
        let opened = backends.get(key);
        if (!opened) {
          opened = base.deps.backend();
          backends.set(key, opened);
          opened.catch(() => backends.delete(key));
        }
        return opened;
      };
      return new SandboxService({ ...base.deps, backend: shared }, request.cwd);
    },
    async close() {
      const all = [...backends.values()];
      backends.clear();
      for (const opened of all) {
        try {
          await (await opened).close();
        } catch (error) {
          log.debug(`mcp: closing a backend failed: ${errorMessage(error)}`);
        }
      }
    },
  };
}
