/**
 * Guest provisioning, backend-agnostic: nine idempotent steps, in order, each recorded by core
 * (`onStepDone`) so a failed run resumes at the failed step.
 *
 * 0. `bootstrap` — on engines with an API exec (incus): user, sudo, sshd, git, curl… for stock
 *    images (a failure leaves the guest unusable: core stops it and records it failed)
 * 1. `ssh_key`  — tachikoma's key in authorized_keys, host keys pinned
 * 2. `code`     — shares mounted, `~/code`, git working on the worktree, host git identity
 * 3. `hostname` — the branch slug
 * 4. `profile`  — managed `~/.profile` block: TACHIKOMA=1, proxy env or credential, MCP env, cd
 * 5. `claude`   — Claude Code installed and onboarded, Claude dirs linked, settings.json cleaned
 * 6. `gh_auth`  — opt-in GitHub CLI login
 * 7. `scripts`  — the user's provisioning scripts
 * 8. `sessions` — tmux from the guest's packages (persistent sessions), unless `tmux_install = "skip"`
 *
 * `fingerprint()` hashes each step's host-side inputs, so `spawn --reprovision` re-runs exactly
 * the steps whose inputs changed.
 *
 * @module
 */
import type { ProvisionContext, Provisioner, ProvisionRunOptions } from "./contract.ts";
import { ConfigError, UsageError } from "../lib/errors.ts";
import { type CommandRunner, defaultRunner } from "../lib/process.ts";
import { log, type Logger } from "../lib/log.ts";
import { homeDir } from "../config/paths.ts";
import type { KnownHosts } from "../ssh/known_hosts.ts";
import { stableJson } from "./claude_settings.ts";
import { bootstrapStep } from "./bootstrap.ts";
import { CLAUDE_INSTALL_URL, claudeStep } from "./claude.ts";
import { codeStep } from "./code.ts";
import { HostContext, type ProvisionerDeps, type StepDef } from "./context.ts";
import { toProvisionError } from "./errors.ts";
import { ghAuthStep } from "./gh_auth.ts";
import { Guest } from "./guest.ts";
import { hostnameStep } from "./hostname.ts";
import { waterfallCredential } from "./host_credential.ts";
import { profileStep } from "./profile.ts";
import { scriptsStep } from "./scripts.ts";
import { sshKeyStep } from "./ssh_key.ts";
import { sessionsStep } from "./sessions.ts";

export { ProvisionError } from "./errors.ts";
export type { GuestCredential } from "./credentials.ts";
export type { ProvisionerDeps } from "./context.ts";
export { GUEST_CODE_DIR, GUEST_GIT_DIR } from "./shares.ts";
export { CLAUDE_INSTALL_URL } from "./claude.ts";

import { PROVISION_VERSION } from "./version.ts";
export { PROVISION_VERSION };

// Each step has its own input type; StepDef's methods are bivariant in it, so they fit here.
const STEPS: readonly StepDef<unknown>[] = [
  bootstrapStep,
  sshKeyStep,
  codeStep,
  hostnameStep,
  profileStep,
  claudeStep,
  ghAuthStep,
  scriptsStep,
  sessionsStep,
];

/** Step names, in order. */
export const STEP_NAMES: readonly string[] = STEPS.map((s) => s.name);

/** Options of {@link createProvisioner}: every dependency is optional. */
export interface CreateProvisionerOptions {
  runner?: CommandRunner;
  home?: string;
  env?: (name: string) => string | undefined;
  proxyEnv?: ProvisionerDeps["proxyEnv"];
  /** Direct mode's credential (default: the host waterfall from `src/credentials/`). */
  credential?: ProvisionerDeps["credential"];
  configSources?: ProvisionerDeps["configSources"];
  claudeInstallUrl?: string;
  knownHosts?: KnownHosts;
  /** Where warnings go (default: the process logger, stderr). */
  logger?: Logger;
}

const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;

async function hash(value: unknown): Promise<string> {
  const bytes = new TextEncoder().encode(stableJson(value));
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest.subarray(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The per-branch steps: each touches its own files in the guest (`~/.ssh`, `~/code` and git's
 * config, `/etc/hostname` and `/etc/hosts`, the `~/.profile` block), none reads what another
 * writes, so a clone's run (`networkFirst`) has them side by side.
 */
const SIDE_BY_SIDE: readonly string[] = ["ssh_key", "code", "hostname", "profile"];

/** `todo` in runs: consecutive {@link SIDE_BY_SIDE} steps together when `together`. */
export function stepGroups<T extends { name: string }>(
  todo: readonly T[],
  together: boolean,
): T[][] {
  const groups: T[][] = [];
  for (const step of todo) {
    const last = groups[groups.length - 1];
    const joins = together && last !== undefined && SIDE_BY_SIDE.includes(step.name) &&
      SIDE_BY_SIDE.includes(last[0].name);
    if (joins) last.push(step);
    else groups.push([step]);
  }
  return groups;
}

function select(options: ProvisionRunOptions): readonly StepDef<unknown>[] {
  const skip = options.skip ?? [];
  return selectSteps(options).filter((s) => !skip.includes(s.name));
}

function selectSteps(options: ProvisionRunOptions): readonly StepDef<unknown>[] {
  if (options.only) {
    const unknown = options.only.filter((n) => !STEP_NAMES.includes(n));
    if (unknown.length) {
      throw new UsageError(
        `unknown provisioning step(s): ${unknown.join(", ")} (steps: ${STEP_NAMES.join(", ")})`,
      );
    }
    return STEPS.filter((s) => options.only!.includes(s.name));
  }
  if (options.after === null) return STEPS;
  const i = STEP_NAMES.indexOf(options.after);
  return i < 0 ? STEPS : STEPS.slice(i + 1);
}

/** The provisioner core calls (see `contract.ts`). */
export function createProvisioner(options: CreateProvisionerOptions = {}): Provisioner {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const deps: ProvisionerDeps = {
    runner: options.runner ?? defaultRunner,
    home: options.home ?? homeDir(env),
    env,
    proxyEnv: options.proxyEnv,
    credential: options.credential ?? waterfallCredential,
    configSources: options.configSources,
    claudeInstallUrl: options.claudeInstallUrl ?? CLAUDE_INSTALL_URL,
    knownHosts: options.knownHosts,
    logger: options.logger ?? log,
  };
  // One view of the host per context: `fingerprint` and `run` of one provisioning share its
  // answers (credential, git identity, host files), so each is asked for, and warned about, once.
  const hosts = new WeakMap<ProvisionContext, HostContext>();
  const hostOf = (ctx: ProvisionContext): HostContext => {
    let host = hosts.get(ctx);
    if (!host) hosts.set(ctx, host = new HostContext(ctx, deps));
    return host;
  };
  const checkUser = (ctx: ProvisionContext) => {
    if (!USER_RE.test(ctx.config.ssh_user)) {
      throw new ConfigError(
        `ssh_user ${JSON.stringify(ctx.config.ssh_user)} is not a valid user name`,
      );
    }
  };
  return {
    version: PROVISION_VERSION,
    steps: STEP_NAMES,
    async fingerprint(ctx) {
      checkUser(ctx);
      const host = hostOf(ctx);
      const out: Record<string, string> = {};
      for (const step of STEPS) {
        out[step.name] = await hash({
          version: PROVISION_VERSION,
          inputs: await step.inputs(host),
        });
      }
      return out;
    },
    async run(ctx, runOptions) {
      checkUser(ctx);
      const todo = select(runOptions);
      const host = hostOf(ctx);
      const guest = new Guest(ctx.backend, ctx.sandbox, {
        user: ctx.config.ssh_user,
        signal: ctx.signal,
      });
      const runStep = async (step: StepDef<unknown>): Promise<void> => {
        const handle = ctx.reporter.step(step.label);
        try {
          const inputs = await step.inputs(host);
          if ((step.needsNetwork || ctx.networkFirst) && ctx.network) await ctx.network;
          await step.run(host, guest, inputs);
        } catch (error) {
          handle.fail();
          if (ctx.signal?.aborted) throw ctx.signal.reason ?? error;
          throw toProvisionError(step.name, error);
        }
        handle.done();
      };
      for (const group of stepGroups(todo, ctx.networkFirst === true)) {
        ctx.signal?.throwIfAborted();
        const settled = await Promise.allSettled(group.map(runStep));
        // Recorded in order, up to the first failure: a resumed run re-runs from there (the
        // steps are idempotent).
        for (const [i, result] of settled.entries()) {
          if (result.status === "rejected") throw result.reason;
          await runOptions.onStepDone(group[i].name);
        }
      }
    },
  };
}
