/**
 * What the sandbox service (`sandbox_service.ts`) takes and returns: exec's options and the
 * results of list, status, halt/suspend, destroy and prune (snake_case: they are the JSON the
 * CLI prints and MCP returns).
 *
 * @module
 */
import type { StdinSource } from "../lib/stdin.ts";
import type { SandboxView } from "./inventory.ts";
import type { StartPolicy } from "./auto_start.ts";

/** Result of `SandboxService.list`. */
export interface ListResult {
  sandboxes: SandboxView[];
  warnings: string[];
}

/** Result of `SandboxService.status`. */
export interface StatusResult {
  sandbox: SandboxView;
  warnings: string[];
}

/** What exec runs. */
export interface ExecOptions {
  argv: string[];
  /** Guest working directory (default: the code dir). */
  workdir?: string;
  /** Bytes, or a stream forwarded as it arrives. */
  stdin?: StdinSource;
  env?: Record<string, string>;
  /** Run the argv as given, without the login environment (`--raw`). Default: false. */
  raw?: boolean;
  /** What to do when it is stopped or suspended (default: refuse). */
  start?: StartPolicy;
  onStdout?: (chunk: Uint8Array) => void;
  onStderr?: (chunk: Uint8Array) => void;
}

/** Result of halt and suspend. */
export interface StopResult {
  name: string;
  /** State afterwards. */
  status: "stopped" | "suspended";
  /** Live state before (`missing` when the engine no longer had it). */
  previous: string;
  /** suspend only: whether it really suspended (false: stopped, the backend cannot suspend). */
  suspended?: boolean;
}

/** What destroy did to one sandbox. */
export interface DestroyOutcome {
  name: string;
  /** The engine had no such sandbox any more (only the state entry was removed). */
  was_missing: boolean;
  worktree_path: string;
  worktree_removed: boolean;
  /** Why the worktree was kept (with `--worktree`), else null. */
  worktree_kept_reason: string | null;
}

/** One prune candidate. */
export interface PruneEntry {
  name: string;
  /** `unused`: last used before the cutoff; `missing`: the engine no longer has it. */
  reason: "unused" | "missing";
  last_used: string;
}

/** Result of `SandboxService.prune`. */
export interface PruneResult {
  dry_run: boolean;
  days: number;
  /** Entries pruned (or that would be, with dry_run). */
  pruned: PruneEntry[];
  warnings: string[];
}
