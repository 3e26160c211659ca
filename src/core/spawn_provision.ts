/**
 * The provisioning part of a spawn: the credential proxy made sure of, a missing proxy token
 * turned into a re-provisioning, then the provisioning the policy asks for
 * (`provision_policy.ts`), or nothing on the fast path (complete at the current recipe version,
 * known without loading the provisioner).
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import { ConflictError } from "../lib/errors.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import type { ProvisionOutcome } from "./provision_policy.ts";
import { step } from "./step.ts";

/** What {@link spawnProvision} needs besides the dependencies. */
export interface SpawnProvisionRequest {
  name: string;
  isNew: boolean;
  reprovision: boolean;
  /** Resolves when the guest has its address (when provisioning runs while it boots). */
  network?: Promise<unknown>;
  /** Every step waits for `network` before it touches the guest (`ProvisionContext.networkFirst`). */
  networkFirst?: boolean;
  /** Runs once the `bootstrap` step is done (keeping a prepared image). */
  afterBootstrap?: () => Promise<void>;
  /** A cloned sandbox: the steps it already has from its source, out of the recipe's. */
  skip?: (steps: readonly string[]) => readonly string[];
}

/** Provisions a spawned sandbox as needed. */
export async function spawnProvision(
  deps: LifecycleDeps,
  backend: Backend,
  request: SpawnProvisionRequest,
): Promise<ProvisionOutcome> {
  const { name } = request;
  const { reporter } = deps;
  if (deps.proxy) {
    const proxy = deps.proxy;
    const force = deps.config.egress !== "unrestricted";
    await step(deps, "credential proxy", () => proxy.ensure(backend, { force }));
  }
  const options = { isNew: request.isNew, reprovision: request.reprovision };
  if (!options.isNew && !options.reprovision && await deps.proxy?.needsToken(name)) {
    // Provisioned before it had a proxy token (or the token was lost): the profile step's
    // inputs change with the new token, so it runs again.
    reporter.note(`${name} has no proxy token yet: giving it one (re-running changed steps)`);
    options.reprovision = true;
  }
  const record = await deps.store.get(name);
  if (!record) throw new ConflictError(`the state entry of ${name} vanished during spawn`);
  const recorded = record.provisioned;
  // The fast path: complete at the recipe version known without loading the provisioner.
  const current = !options.isNew && !options.reprovision && recorded?.complete === true &&
    deps.provisionerVersion !== undefined && recorded.version === deps.provisionerVersion;
  if (current) return { ran: false, reason: null, steps: [], resumed_after: null };
  const { provisionSandbox } = await import("./provision_policy.ts");
  return await provisionSandbox(deps, {
    backend,
    record,
    ...options,
    network: request.network,
    networkFirst: request.networkFirst,
    skip: request.skip,
    afterStep: request.afterBootstrap
      ? async (step) => {
        if (step === "bootstrap") await request.afterBootstrap!();
      }
      : undefined,
  });
}
