/**
 * When and how spawn provisions: a new sandbox gets every step; a sandbox whose provisioning
 * did not finish resumes after its last completed step; one provisioned by an older recipe
 * version (or by tachikoma, which recorded nothing) is provisioned again; `--reprovision`
 * re-runs the steps whose input fingerprint changed. Progress is saved in state after every
 * step, so an interrupted or failed run resumes where it stopped.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { ProvisionRecord, SandboxRecord } from "../state/schema.ts";
import { isUnusableGuest, type Provisioner } from "../provision/contract.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import { iso, patchRecord } from "./lifecycle.ts";
import { log } from "../lib/log.ts";
import { errorMessage, InterruptedError, RuntimeError, TachikomaError } from "../lib/errors.ts";

/** Why provisioning runs. */
export type ProvisionReason = "new" | "incomplete" | "outdated" | "unrecorded" | "reprovision";

/** What spawn will run. */
export interface ProvisionPlan {
  reason: ProvisionReason;
  /** Run the steps after this one (null: from the start). */
  after: string | null;
  /** `--reprovision`: only these steps. */
  only?: string[];
}

/** What provisioning did during a spawn. */
export interface ProvisionOutcome {
  ran: boolean;
  reason: ProvisionReason | null;
  /** Steps that ran, in order. */
  steps: string[];
  /** Step provisioning resumed after, when it resumed. */
  resumed_after: string | null;
}

/**
 * Decides whether spawn provisions. `fingerprints` (current inputs) is needed only for
 * `--reprovision` of a completely provisioned sandbox.
 */
export function planProvisioning(
  recorded: ProvisionRecord | undefined,
  provisioner: Pick<Provisioner, "version" | "steps">,
  options: { isNew: boolean; reprovision: boolean; fingerprints?: Record<string, string> },
): ProvisionPlan | null {
  if (options.isNew) return { reason: "new", after: null };
  if (!recorded) return { reason: "unrecorded", after: null };
  if (!recorded.complete) {
    // Resume only within the same recipe; an older one's steps may not line up.
    const resumable = recorded.version === provisioner.version &&
      recorded.last_step !== null && provisioner.steps.includes(recorded.last_step);
    return { reason: "incomplete", after: resumable ? recorded.last_step : null };
  }
  if (recorded.version < provisioner.version) return { reason: "outdated", after: null };
  if (!options.reprovision) return null;
  const now = options.fingerprints ?? {};
  const before = recorded.fingerprints ?? {};
  const changed = provisioner.steps.filter((s) => now[s] === undefined || now[s] !== before[s]);
  if (changed.length === 0) return null;
  return { reason: "reprovision", after: null, only: changed };
}

/** Runs provisioning for a spawn, saving progress after every step. */
export async function provisionSandbox(
  deps: LifecycleDeps,
  options: {
    backend: Backend;
    record: SandboxRecord;
    isNew: boolean;
    reprovision: boolean;
    /** See `ProvisionContext.network`. */
    network?: Promise<unknown>;
    /** See `ProvisionContext.networkFirst`. */
    networkFirst?: boolean;
    /** Runs after each completed step is recorded. */
    afterStep?: (step: string) => Promise<void>;
    /**
     * A cloned sandbox: the steps it already has from its source, out of the recipe's steps
     * (see `ProvisionRunOptions.skip`).
     */
    skip?: (steps: readonly string[]) => readonly string[];
  },
): Promise<ProvisionOutcome> {
  const { backend, record } = options;
  const none: ProvisionOutcome = { ran: false, reason: null, steps: [], resumed_after: null };
  const recorded = record.provisioned;
  // The fast path: complete at the recipe version known without loading the provisioner.
  if (
    !options.isNew && !options.reprovision && recorded?.complete &&
    deps.provisionerVersion !== undefined && recorded.version === deps.provisionerVersion
  ) {
    return none;
  }
  const provisioner = await deps.provisioner();
  const ctx = {
    backend,
    sandbox: record.name,
    record,
    config: deps.config,
    stateDir: deps.stateDir,
    reporter: deps.reporter,
    signal: deps.signal,
    network: options.network,
    networkFirst: options.networkFirst,
    clone: options.isNew && options.skip !== undefined,
  };
  if (recorded && recorded.version > provisioner.version && !options.isNew) {
    deps.reporter.note(
      `${record.name} was provisioned by a newer tachikoma (recipe v${recorded.version}); ` +
        "leaving it as it is",
    );
    return none;
  }
  // Fingerprints are saved by every run and compared by --reprovision; a complete, current
  // sandbox without --reprovision needs none (the fast reconnect path).
  const current = recorded?.complete === true && recorded.version === provisioner.version;
  const needsFingerprints = options.reprovision || options.isNew || !current;
  const fingerprints = needsFingerprints ? await provisioner.fingerprint(ctx) : undefined;
  const plan = planProvisioning(recorded, provisioner, { ...options, fingerprints });
  if (!plan) {
    if (options.reprovision) deps.reporter.note("nothing to reprovision: no step's inputs changed");
    return none;
  }
  if (plan.reason === "incomplete") {
    deps.reporter.note(
      plan.after
        ? `resuming provisioning of ${record.name} after step '${plan.after}'`
        : `provisioning of ${record.name} did not finish; running it again`,
    );
  } else if (plan.reason === "outdated" || plan.reason === "unrecorded") {
    deps.reporter.note(`provisioning ${record.name} again (recipe v${provisioner.version})`);
  }

  const only = plan.only;
  if (!only) {
    await patchRecord(deps.store, record.name, (r) => {
      const keep = plan.after !== null ? r.provisioned?.fingerprints ?? {} : {};
      r.provisioned = {
        version: provisioner.version,
        last_step: plan.after,
        complete: false,
        fingerprints: keep,
      };
    });
  }
  const ran: string[] = [];
  try {
    await provisioner.run(ctx, {
      after: plan.after,
      only,
      skip: plan.reason === "new" ? options.skip?.(provisioner.steps) : undefined,
      onStepDone: async (step) => {
        ran.push(step);
        await patchRecord(deps.store, record.name, (r) => {
          const p = r.provisioned ??
            { version: provisioner.version, last_step: null, complete: false };
          if (!only) p.last_step = step;
          p.fingerprints = { ...p.fingerprints };
          if (fingerprints?.[step] !== undefined) p.fingerprints[step] = fingerprints[step];
          r.provisioned = p;
        });
        await options.afterStep?.(step);
      },
    });
  } catch (error) {
    if (error instanceof InterruptedError || deps.signal?.aborted) throw error;
    if (isUnusableGuest(error)) await stopUnusable(deps, backend, { name: record.name, error });
    const done = ran.length ? ` after step '${ran[ran.length - 1]}'` : "";
    const own = error instanceof TachikomaError ? error.hint : undefined;
    const resume = "run `tachikoma spawn` again to resume provisioning where it stopped";
    throw new RuntimeError(
      "provision_failed",
      `provisioning ${record.name} failed${done}: ${errorMessage(error)}`,
      {
        cause: error,
        // A hint that already says what to run again is the whole hint.
        hint: own && (isUnusableGuest(error) || own.includes("tachikoma spawn"))
          ? own
          : own
          ? `${own}; then ${resume}`
          : resume,
      },
    );
  }
  if (!only) {
    await patchRecord(deps.store, record.name, (r) => {
      r.provisioned = {
        version: provisioner.version,
        last_step: provisioner.steps[provisioner.steps.length - 1] ?? null,
        complete: true,
        fingerprints: { ...r.provisioned?.fingerprints, ...fingerprints },
      };
    });
  }
  return { ran: true, reason: plan.reason, steps: ran, resumed_after: plan.after };
}

/**
 * A guest without its base system (the bootstrap failed): stopped, so nothing half-made keeps
 * running, and recorded `failed` with the reason; `spawn` starts it and bootstraps it again.
 */
async function stopUnusable(
  deps: LifecycleDeps,
  backend: Backend,
  failed: { name: string; error: unknown },
): Promise<void> {
  const { name, error } = failed;
  try {
    await backend.stop(name, { force: true });
  } catch (stopError) {
    log.warn(`could not stop ${name} after the failed bootstrap: ${errorMessage(stopError)}`);
  }
  await patchRecord(deps.store, name, (r) => {
    r.status = "failed";
    r.failure = errorMessage(error).split("\n")[0];
    r.ip = null;
    r.last_used = iso(deps.clock.now());
  });
}
