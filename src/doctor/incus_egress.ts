/**
 * `doctor`'s check that restricted egress is enforced from the host: on a local Incus that
 * needs `nft` and the right to change the ruleset (src/backends/incus/egress.ts). Without it a
 * restricted sandbox is held to its policy only for traffic that goes through the proxy.
 * Optional: unrestricted sandboxes need none of it.
 *
 * @module
 */
import { HostNft } from "../backends/incus/egress.ts";
import { errorMessage, TachikomaError } from "../lib/errors.ts";
import { type CommandRunner, defaultRunner } from "../lib/process.ts";
import type { CheckResult } from "./check.ts";

const NAME = "egress enforcement";
const PROXY_ONLY = "restricted sandboxes are then held to their policy only through the proxy";

/** The check, for a local Incus (`remote` undefined) or a remote one. */
export async function egressCheck(
  remote: string | undefined,
  runner: CommandRunner = defaultRunner,
): Promise<CheckResult> {
  if (remote) {
    return {
      name: NAME,
      ok: false,
      message: `not enforced from the host on a remote Incus server (${remote})`,
      hint: PROXY_ONLY,
      required: false,
    };
  }
  try {
    await new HostNft(runner).probe();
    return { name: NAME, ok: true, message: "host nftables: each sandbox's policy is enforced" };
  } catch (error) {
    const hint = error instanceof TachikomaError ? error.hint : undefined;
    return {
      name: NAME,
      ok: false,
      message: errorMessage(error),
      hint: hint ? `${hint}; ${PROXY_ONLY}` : PROXY_ONLY,
      required: false,
    };
  }
}
