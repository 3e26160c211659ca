/**
 * What every command receives: the global flags, the output printer and lazy access to the
 * merged configuration.
 *
 * @module
 */
import type { Output } from "./output.ts";
import type { BackendName } from "../config/schema.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { Reporter } from "../core/progress.ts";

/** Flags accepted by every command, before or after the subcommand. */
export interface GlobalOptions {
  json: boolean;
  verbose: boolean;
  quiet: boolean;
  color: boolean;
  backend?: BackendName;
}

/** The context handed to command implementations. */
export interface CommandContext {
  readonly globals: GlobalOptions;
  readonly out: Output;
  /** Progress on stderr (spinner on a TTY, step lines in `-v`, silent in `--json`/`-q`). */
  readonly progress: Reporter;
  readonly cwd: string;
  /** Loads (once) and returns the merged configuration. */
  config(): Promise<LoadedConfig>;
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal;
}
