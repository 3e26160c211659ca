/**
 * The egress policy of a tart VM as the backend reads and sets it: kept in the state directory
 * (egress.ts), applied by Softnet when `tart run` starts.
 *
 * @module
 */
import type { EgressPolicy } from "../backend.ts";
import { NotFoundError } from "../../lib/errors.ts";
import type { TartCli } from "./cli.ts";
import { readTartEgress, restartNeeded, writeTartEgress } from "./egress.ts";

/** What the egress operations need: the CLI (to find the VM) and the state directory. */
export interface TartEgressContext {
  cli: TartCli;
  stateDir: string;
}

/** The policy; throws when the running VM's Softnet does not match it yet. */
export async function getTartEgress(ctx: TartEgressContext, name: string): Promise<EgressPolicy> {
  const file = await readTartEgress(ctx.stateDir, name);
  const policy = file?.policy ?? { mode: "unrestricted" as const, allow: [] };
  const entry = await ctx.cli.find(name);
  if (!entry) throw new NotFoundError(`no tart VM named ${name}`);
  const restricted = policy.mode !== "unrestricted";
  if (entry.state === "running" && (file?.running_restricted ?? false) !== restricted) {
    throw restartNeeded(name, policy);
  }
  return policy;
}

/** Keeps the policy for the next `tart run`; a running VM whose Softnet must change: Conflict. */
export async function setTartEgress(
  ctx: TartEgressContext,
  name: string,
  policy: EgressPolicy,
): Promise<void> {
  const entry = await ctx.cli.find(name);
  if (!entry) throw new NotFoundError(`no tart VM named ${name}`);
  const file = await readTartEgress(ctx.stateDir, name);
  const running = entry.state === "running";
  const runningRestricted = running ? (file?.running_restricted ?? false) : null;
  await writeTartEgress(ctx.stateDir, name, {
    policy,
    running_restricted: runningRestricted,
  });
  if (running && runningRestricted !== (policy.mode !== "unrestricted")) {
    throw restartNeeded(name, policy);
  }
}
