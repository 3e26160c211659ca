/**
 * The contract between the spawn state machine (core) and guest provisioning
 * (`src/provision/`). Core records progress after every step in state, so a failed run resumes
 * at the step that failed.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { Config } from "../config/schema.ts";
import type { Reporter } from "../lib/progress.ts";
import type { SandboxRecord } from "../state/schema.ts";

/** Everything a provisioning run needs. */
export interface ProvisionContext {
  backend: Backend;
  /** The sandbox name. */
  sandbox: string;
  /** The state record (branch, worktree_path, repo_root…). */
  record: SandboxRecord;
  config: Config;
  /** tachikoma's config/state directory. */
  stateDir: string;
  reporter: Reporter;
  signal?: AbortSignal;
  /**
   * Resolves when the guest has its network (provisioning that runs while the guest boots);
   * steps that reach the network wait for it. Absent: the network is up.
   */
  network?: Promise<unknown>;
  /**
   * Every step waits for {@link network} before it touches the guest, not only those that
   * reach the network (their host-side inputs are still worked out at once). For a clone,
   * whose steps are a few short execs: execs while the guest boots slow the boot itself (lab:
   * the address after 3.7 s with them, 1.8 s without), and each exec with it. The per-branch
   * steps (`ssh_key`, `code`, `hostname`, `profile`) then run side by side, each recorded once
   * it and the steps before it are done.
   */
  networkFirst?: boolean;
  /**
   * A new clone of another sandbox, a checkpoint or a base: its guest still has its source's
   * identity (SSH host keys, machine-id), which `ssh_key` renews before pinning the keys.
   */
  clone?: boolean;
}

/** Options for {@link Provisioner.run}. */
export interface ProvisionRunOptions {
  /** Run the steps after this one (all steps when null). */
  after: string | null;
  /** Re-run only these steps (with `spawn --reprovision`), regardless of `after`. */
  only?: string[];
  /**
   * Steps the sandbox already has from what it was cloned from (a base, another sandbox or a
   * checkpoint): not run, as if done.
   */
  skip?: readonly string[];
  /** Called after each step completes; core persists it before the next step starts. */
  onStepDone(step: string): Promise<void>;
}

/** Provisions a guest, step by step. */
export interface Provisioner {
  /** Recipe version; a sandbox provisioned by an older version is re-provisioned. */
  readonly version: number;
  /** Step names, in order. */
  readonly steps: readonly string[];
  /** Fingerprint of the inputs of each step for this config (drives `--reprovision`). */
  fingerprint(ctx: ProvisionContext): Promise<Record<string, string>>;
  /**
   * Runs the steps. A failing step throws an error naming the step and the guest's stderr; one
   * that leaves the guest unusable (no base system) carries `unusable: true` (see
   * {@link isUnusableGuest}): core then stops the sandbox and records it failed.
   */
  run(ctx: ProvisionContext, options: ProvisionRunOptions): Promise<void>;
}

/**
 * The steps a base build runs (the system, Claude Code, tmux for persistent sessions): a sandbox
 * cloned from a base skips them.
 */
export const BASE_STEPS: readonly string[] = ["bootstrap", "claude", "sessions"];

/**
 * The per-branch steps (the key, the shares, the hostname, the profile with the sandbox's own
 * proxy token): the only ones a sandbox cloned from another sandbox or a checkpoint runs.
 */
export const PER_BRANCH_STEPS: readonly string[] = ["ssh_key", "code", "hostname", "profile"];

/** True when a provisioning error (or one it wraps) says the guest is unusable as it is. */
export function isUnusableGuest(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; depth++) {
    if ((e as { unusable?: unknown }).unusable === true) return true;
    e = e.cause;
  }
  return false;
}
