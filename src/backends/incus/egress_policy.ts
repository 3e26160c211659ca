/**
 * The egress policy of an Incus instance: kept in the instance's config, enforced on the host
 * with nftables on the container's NICs (egress.ts). Local socket only (nft runs on this host).
 *
 * @module
 */
import type { EgressPolicy } from "../backend.ts";
import { RuntimeError, UnsupportedError } from "../../lib/errors.ts";
import { fetchInstance, type IncusContext } from "./context.ts";
import { EGRESS_CONFIG_KEY, HostNft, type HostNic, parseStoredPolicy } from "./egress.ts";
import { type IncusInstanceState, instancePath, mapStatus } from "./instances.ts";

/** The stored policy; throws when a restricted policy is not in force on a running guest. */
export async function getEgress(ctx: IncusContext, name: string): Promise<EgressPolicy> {
  const instance = await fetchInstance(ctx, name);
  const policy = parseStoredPolicy(instance.config?.[EGRESS_CONFIG_KEY]) ??
    { mode: "unrestricted" as const, allow: [] };
  if (policy.mode !== "unrestricted" && mapStatus(instance.status) === "running") {
    const nft = hostNft(ctx);
    if ((await nft.chains(name)).length === 0) {
      throw new RuntimeError(
        "egress_not_applied",
        `the ${policy.mode} egress policy of ${name} is not in force on the host`,
        { hint: `apply it again: tachikoma network set ${name} ${policy.mode}` },
      );
    }
  }
  return policy;
}

/**
 * Stores the policy in the instance and enforces it on the host now when the guest runs;
 * a stopped guest gets it when it starts.
 */
export async function setEgress(
  ctx: IncusContext,
  name: string,
  policy: EgressPolicy,
): Promise<void> {
  hostNft(ctx); // refuses remote engines before anything changes
  await ctx.client.mutate("PATCH", instancePath(name), {
    body: { config: { [EGRESS_CONFIG_KEY]: JSON.stringify(policy) } },
    subject: `sandbox "${name}"`,
    timeoutMs: ctx.operationTimeoutMs,
  });
  await enforceEgress(ctx, name, policy);
}

/** The host's nftables; refuses a remote engine (its guests' NICs are not on this host). */
export function hostNft(ctx: IncusContext): HostNft {
  if (ctx.settings.endpoint.remote) {
    throw new UnsupportedError(
      "egress enforcement on a remote Incus server is not supported (host nftables)",
      { hint: "the proxy enforces the policy for proxied traffic only" },
    );
  }
  return new HostNft(ctx.runner, ctx.egressTable);
}

/** Applies `policy` (or the stored one) to the running guest's NICs. */
export async function enforceEgress(
  ctx: IncusContext,
  name: string,
  policy?: EgressPolicy | null,
): Promise<void> {
  if (ctx.settings.endpoint.remote) return;
  const nft = hostNft(ctx);
  if (policy === undefined) {
    const instance = await fetchInstance(ctx, name);
    policy = parseStoredPolicy(instance.config?.[EGRESS_CONFIG_KEY]);
  }
  if (!policy || policy.mode === "unrestricted") {
    if (policy || (await nft.chains(name)).length > 0) await nft.unrestrict(name);
    return;
  }
  const state = await ctx.client.get<IncusInstanceState>(`${instancePath(name)}/state`, {
    subject: `sandbox "${name}"`,
  });
  if (mapStatus(state.status) !== "running") return;
  const nics: HostNic[] = Object.entries(state.network ?? {})
    .filter(([nic, n]) => nic !== "lo" && typeof n?.host_name === "string" && n.host_name)
    .map(([nic, n]) => ({ nic, device: n.host_name! }));
  if (nics.length === 0) {
    throw new RuntimeError("egress_no_nic", `${name} has no host-side NIC to restrict`);
  }
  await nft.restrict({ instance: name, nics, proxy: policy.proxy ?? null });
}
