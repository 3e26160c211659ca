/**
 * What every command receives: the global flags, the result printer, lazy access to the
 * merged configuration and the application's services. The CLI (`src/cli/`) builds it and
 * wires the services; commands only parse, call and print.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { Config } from "../config/schema.ts";
import type { LifecycleDeps } from "../core/lifecycle.ts";
import type { SandboxService } from "../core/sandbox_service.ts";
import type { ListScope } from "../core/inventory.ts";
import type { ListResult } from "../core/service_types.ts";
import type { McpContext } from "../mcp/context.ts";
import type { BackendName } from "../config/schema.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { Reporter } from "../lib/progress.ts";

/** Flags accepted by every command, before or after the subcommand. */
export interface GlobalOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  color: boolean;
  backend?: BackendName;
}

/** Prints a command's result on stdout in the selected mode (`--json` or human text). */
export interface ResultOutput {
  /** `--json` mode. */
  readonly json: boolean;
  /** Prints `data` as JSON in `--json` mode, else the text `human` returns (if any). */
  result(data: unknown, human: () => string | undefined): void;
  /** Prints raw text to stdout. */
  raw(text: string): void;
}

/** The application's services, wired by the CLI for one command. */
export interface AppServices {
  /** The lifecycle dependencies (state, lazily opened backend, provisioner, proxy…). */
  lifecycleDeps(): Promise<LifecycleDeps>;
  /**
   * The sandbox service over {@link AppServices.lifecycleDeps}: one per command (every call
   * returns the same), so a command may start it early (`warm` in `src/cli/program.ts`).
   */
  service(): Promise<SandboxService>;
  /**
   * `list`'s lean path: the state file, the engine's list and the inventory merge
   * (`listSandboxes` in `src/core/inventory.ts`, the same the service's `list` runs), without
   * the lifecycle dependencies the service opens. One list per scope and command: calls with
   * the same scope return the same (so `list` may start it early).
   */
  listSandboxes(scope: ListScope): Promise<ListResult>;
  /** Opens the backend `config` selects; the caller closes it. */
  openBackend(config: Config): Promise<Backend>;
  /** The MCP tools' dependencies (`tachikoma mcp`). */
  mcpContext(): Promise<McpContext>;
}

/** The context handed to command implementations. */
export interface CommandContext {
  readonly globals: GlobalOptions;
  readonly out: ResultOutput;
  /** Progress on stderr (spinner on a TTY, step lines in `-v`, silent in `--json`/`-q`). */
  readonly progress: Reporter;
  readonly cwd: string;
  /** Loads (once) and returns the merged configuration. */
  config(): Promise<LoadedConfig>;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
  /** The application's services. */
  readonly app: AppServices;
}
