/**
 * Applying a sandbox's egress policy at the engine (spawn and `network set/allow/deny`), and the
 * policy the configuration gives a sandbox that has none of its own. See `network.ts`.
 *
 * @module
 */
import type { Backend, EgressPolicy as EnginePolicy } from "../backends/backend.ts";
import type { Config } from "../config/schema.ts";
import type { EgressRecord } from "../state/schema.ts";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import type { LifecycleDeps } from "./lifecycle.ts";
import { isRestricted, normalizeAllowEntry } from "../proxy/egress.ts";

/** What the engine enforces for a sandbox. */
export interface EngineEnforcement {
  /** `nftables` (incus), `softnet` (tart), or null when the engine enforces nothing. */
  mechanism: string | null;
  /** True when the engine keeps the guest to the proxy right now (or will at its next start). */
  restricted: boolean;
  /** Why the engine could not apply or report the policy (the proxy still enforces it). */
  error: string | null;
}

/** The policy from the configuration (the default for spawn and for older records). */
export function configPolicy(config: Pick<Config, "egress" | "egress_allow">): EgressRecord {
  return { mode: config.egress, allow: config.egress_allow.map(normalizeAllowEntry) };
}

/** The engine's mechanism name: `softnet` on tart, `nftables` on incus (else the engine's). */
export function mechanismOf(backend: Backend): string {
  return backend.name === "tart" ? "softnet" : backend.name === "incus" ? "nftables" : backend.name;
}

/**
 * Applies `policy` at the engine (when it can enforce egress) with the proxy's address:
 * returns what the engine enforces afterwards. A failure is reported, not thrown (the proxy
 * enforces the policy regardless).
 */
export async function applyEnginePolicy(
  deps: LifecycleDeps,
  backend: Backend,
  target: { name: string; policy: EgressRecord },
): Promise<EngineEnforcement> {
  if (!backend.capabilities.egress) return { mechanism: null, restricted: false, error: null };
  const mechanism = mechanismOf(backend);
  try {
    const policy: EnginePolicy = { mode: target.policy.mode, allow: [...target.policy.allow] };
    if (isRestricted(policy.mode) && deps.proxy) {
      const address = await deps.proxy.ensure(backend, { force: true });
      if (address) policy.proxy = { host: address.bind, port: address.port };
    }
    await backend.setEgress(target.name, policy);
    return { mechanism, restricted: isRestricted(policy.mode), error: null };
  } catch (error) {
    const message = errorMessage(error);
    log.warn(`egress of ${target.name} is enforced by the proxy only: ${message}`);
    return { mechanism, restricted: false, error: message };
  }
}

export async function engineView(backend: Backend, name: string): Promise<EngineEnforcement> {
  if (!backend.capabilities.egress) {
    return { mechanism: null, restricted: false, error: null };
  }
  const mechanism = mechanismOf(backend);
  try {
    const current = await backend.getEgress(name);
    return { mechanism, restricted: isRestricted(current.mode), error: null };
  } catch (error) {
    return { mechanism, restricted: false, error: errorMessage(error) };
  }
}
