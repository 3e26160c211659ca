/**
 * What the MCP tools depend on: a way to open the core {@link SandboxService} for one tool
 * call (its own working directory, backend override, progress reporter and abort signal), and
 * a clock. The production context loads the layered configuration for the call's directory
 * (so a repo's `.tachikoma.toml` applies) and keeps each opened backend for the whole session,
 * closing them when the server stops. Tests supply their own context.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { BackendName } from "../config/defaults.ts";
import { loadConfig } from "../config/load.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { errorMessage, UsageError } from "../core/errors.ts";
import { log } from "../core/log.ts";
import { openSandboxService } from "../core/open_service.ts";
import type { Reporter } from "../core/progress.ts";
import { SandboxService } from "../core/sandbox_service.ts";

/** What one tool call asks of the context. */
export interface ServiceRequest {
  /** Directory the call acts from (repo for spawn and branch names). */
  cwd: string;
  /** Backend override for this call (`--backend`, or spawn's `backend` argument). */
  backend?: BackendName;
  reporter: Reporter;
  signal: AbortSignal;
}

/** The MCP server's dependencies. */
export interface McpContext {
  /** The server's working directory: the default repo of every tool. */
  readonly cwd: string;
  readonly clock: Clock;
  /** Opens the core service for one call. */
  openService(request: ServiceRequest): Promise<SandboxService>;
  /** Releases what the context holds (open backends). */
  close(): Promise<void>;
}

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

/**
 * The directory a tool acts from: `repo` (absolute, or relative to the server's directory)
 * when given, else the server's directory. It must be an existing directory.
 */
export async function callDirectory(ctx: McpContext, repo: string | undefined): Promise<string> {
  if (repo === undefined || repo === "") return ctx.cwd;
  const path = repo.startsWith("/") ? repo : `${ctx.cwd}/${repo}`;
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch {
    throw new UsageError(`repo: no such directory on the host: ${repo}`, {
      hint: "give the absolute path of a git checkout on the machine running tachikoma",
    });
  }
  if (!info.isDirectory) throw new UsageError(`repo: not a directory: ${repo}`);
  return await Deno.realPath(path);
}
