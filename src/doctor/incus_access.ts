/**
 * `tachikoma doctor` on a host whose Incus cannot be used yet: not installed, its daemon not
 * running, or this user without access to its socket. Says exactly what is missing and that
 * `tachikoma setup` fixes it. Reads through interfaces (socket, apt, host) so it is tested with
 * doubles.
 *
 * @module
 */
import type { IncusAdmin, SocketState } from "../backends/incus/host_admin.ts";
import type { HostSystem, PackageManager } from "../lib/host_system.ts";
import type { CheckResult } from "./check.ts";

/** The group whose members may use the local socket (Debian and Ubuntu packages). */
const INCUS_GROUP = "incus-admin";

/** The command that fixes what these checks find. */
export const SETUP = "tachikoma setup";

/** What {@link localAccessCheck} reads: the socket, the package, the user and groups. */
export interface LocalIncusProbe {
  admin: Pick<IncusAdmin, "where" | "reach">;
  host: Pick<HostSystem, "invokingUser" | "groupsOf" | "processGroups">;
  packages: Pick<PackageManager, "installedVersion">;
}

/**
 * The local socket, before any API call: says exactly what is missing — Incus not installed,
 * its daemon not running, or this user without access (not in `incus-admin`, or in it since
 * the last login only) — and that `tachikoma setup` fixes it. Null when the socket answers.
 */
export async function localAccessCheck(probe: LocalIncusProbe): Promise<CheckResult | null> {
  const reach = await probe.admin.reach();
  if (reach.state === "ok") return null;
  const where = probe.admin.where;
  const fail = (message: string, hint: string): CheckResult => ({
    name: "incus api",
    ok: false,
    message,
    hint,
    required: true,
  });
  const state: SocketState = reach.state;
  if (state === "missing" || state === "down") {
    const installed = await probe.packages.installedVersion("incus") ??
      await probe.packages.installedVersion("incus-base");
    if (state === "missing" && installed === null) {
      return fail(
        `Incus is not installed (no incus package, no socket at ${where})`,
        `${SETUP} installs it from the distribution's packages and initialises it`,
      );
    }
    return fail(
      `Incus is installed but its daemon does not answer at ${where} (${reach.detail})`,
      `${SETUP} starts it (or: sudo systemctl start incus)`,
    );
  }
  const user = await probe.host.invokingUser();
  const listed = (await probe.host.groupsOf(user)).includes(INCUS_GROUP);
  const now = (await probe.host.processGroups()).includes(INCUS_GROUP);
  if (listed && !now) {
    return fail(
      `${user} cannot use the Incus socket ${where} yet: ${user} is in ${INCUS_GROUP}, ` +
        "but this login session is not",
      `log in again (or run: newgrp ${INCUS_GROUP})`,
    );
  }
  return fail(
    `${user} cannot use the Incus socket ${where}: ${user} is not in the ${INCUS_GROUP} group`,
    `sudo ${SETUP} adds ${user} to ${INCUS_GROUP} (then log in again)`,
  );
}
