/**
 * What the MCP tools depend on: a way to open the core {@link SandboxService} for one tool
 * call (its own working directory, backend override, progress reporter and abort signal), and
 * a clock. The production context is wired by the CLI (`src/cli/mcp_context.ts`); tests supply
 * their own.
 *
 * @module
 */
import type { BackendName } from "../config/defaults.ts";
import type { Clock } from "../lib/clock.ts";
import { UsageError } from "../lib/errors.ts";
import type { Reporter } from "../lib/progress.ts";
import type { SandboxService } from "../core/sandbox_service.ts";

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
