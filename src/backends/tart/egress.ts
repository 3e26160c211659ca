/**
 * Egress for tart VMs: Softnet (tart-contract.md §7.4). A VM whose policy is restricted (every
 * mode but `unrestricted`) runs with `--net-softnet-block=0.0.0.0/0` and
 * `--net-softnet-allow=<proxy address>/32`: Softnet, tart's userspace packet filter, lets it send
 * only to the host side's proxy address (the gateway), not to other VMs, private ranges or the
 * internet. Softnet has no port rules: every service of the host listening on that address is
 * reachable (the proxy is the only one tachikoma puts there).
 *
 * Softnet is chosen when `tart run` starts: the policy is kept in
 * `<state>/tart-egress/<name>.json` (0600) with what the VM last ran with, and a change between
 * restricted and unrestricted applies when the VM starts again (`setEgress` says so).
 *
 * @module
 */
import type { EgressPolicy } from "../backend.ts";
import { ConflictError } from "../../lib/errors.ts";
import { privateDir, writePrivateFile } from "../../lib/private_files.ts";

/** What is kept per VM. */
export interface TartEgressFile {
  policy: EgressPolicy;
  /** Whether the VM's current (or last) run used Softnet; null: never started with a policy. */
  running_restricted: boolean | null;
}

const IPV4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function pathOf(stateDir: string, name: string): string {
  return `${stateDir}/tart-egress/${encodeURIComponent(name)}.json`;
}

/** Reads a VM's file (null when absent or unreadable). */
export async function readTartEgress(
  stateDir: string,
  name: string,
): Promise<TartEgressFile | null> {
  try {
    const v = JSON.parse(await Deno.readTextFile(pathOf(stateDir, name)));
    if (typeof v?.policy?.mode !== "string" || !Array.isArray(v.policy.allow)) return null;
    return { policy: v.policy, running_restricted: v.running_restricted ?? null };
  } catch {
    return null;
  }
}

/** Writes a VM's file. */
export async function writeTartEgress(
  stateDir: string,
  name: string,
  file: TartEgressFile,
): Promise<void> {
  await privateDir(`${stateDir}/tart-egress`);
  await writePrivateFile(pathOf(stateDir, name), JSON.stringify(file));
}

/** Removes a VM's file (delete). */
export async function removeTartEgress(stateDir: string, name: string): Promise<void> {
  await Deno.remove(pathOf(stateDir, name)).catch(() => {});
}

/** The `tart run` network arguments for a policy (none when unrestricted or absent). */
export function softnetArgs(policy: EgressPolicy | null): string[] {
  if (!policy || policy.mode === "unrestricted") return [];
  const args = ["--net-softnet-block=0.0.0.0/0"];
  const host = policy.proxy?.host;
  if (host && IPV4_RE.test(host)) args.push(`--net-softnet-allow=${host}/32`);
  return args;
}

/** The conflict when a running VM's Softnet differs from what its policy needs now. */
export function restartNeeded(name: string, policy: EgressPolicy): ConflictError {
  return new ConflictError(
    `${name} runs ${policy.mode === "unrestricted" ? "with" : "without"} Softnet: the ` +
      `${policy.mode} policy applies to tart's network when it starts again`,
    { hint: `restart it: tachikoma halt ${name} && tachikoma spawn (the proxy applies it now)` },
  );
}
