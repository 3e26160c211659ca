/**
 * The errors the tart backend raises when a VM does not come up, and its small checks.
 *
 * @module
 */
import type { Share } from "../backend.ts";
import {
  ConflictError,
  NotFoundError,
  RuntimeError,
  type TachikomaError,
  TimeoutError,
  UnreachableError,
  UsageError,
} from "../../lib/errors.ts";
import { GUEST_MOUNT_ROOT } from "./dir_spec.ts";

function indent(text: string): string {
  return text.split("\n").map((l) => `  | ${l}`).join("\n");
}

/** The log of a VM's `tart run`: its last lines, and where the whole of it is. */
export interface RunLog {
  tail: string;
  path: string;
}

/** `tart run` exited (`when`: "before the VM started", …): exit code and the log's tail. */
export function runExitedError(
  name: string,
  exit: { code: number; when: string },
  log: RunLog,
): TachikomaError {
  const { code, when } = exit;
  const { tail, path: logPath } = log;
  const detail = tail ? `:\n${indent(tail)}` : " (its log is empty)";
  const message = `tart run ${name} exited with code ${code} ${when}${detail}`;
  const hint = `full log: ${logPath}`;
  if (code === 127) {
    return new UnreachableError(`tart is not installed or not on PATH${detail}`, { hint });
  }
  if (/does not exist/.test(tail)) return new NotFoundError(message, { hint });
  if (/is already running/.test(tail)) return new ConflictError(message, { hint });
  return new RuntimeError("tart_run_exited", message, { hint });
}

/** The VM stopped (not by our run's exit) while the backend waited for its address. */
export function stoppedWhileWaitingError(name: string, state: string, log: RunLog): RuntimeError {
  const { tail, path: logPath } = log;
  return new RuntimeError(
    "vm_not_running",
    `${name} is ${state} while waiting for its IP address${tail ? `:\n${indent(tail)}` : ""}`,
    { hint: `start it again; tart log: ${logPath}` },
  );
}

/** No IP by the deadline (the VM runs): what to try. */
export function ipTimeoutError(name: string, logPath: string): TimeoutError {
  return new TimeoutError(
    [
      `Timed out waiting for VM '${name}' to get an IP address.`,
      "The VM is running but DHCP didn't assign an IP in time.",
      "Try:",
      `  tart ip --resolver arp ${name}`,
      `  tart ip --wait 30 ${name}`,
      "  sudo launchctl kickstart -k system/com.apple.bootpd  # restart DHCP",
      `Check tart logs: ${logPath}`,
    ].join("\n"),
    { hint: `raise boot_timeout_secs, or if the VM is stuck: tachikoma destroy ${name}` },
  );
}

/**
 * Shares appear as `/mnt/tachikoma/<name>` (one virtio-fs tag, one mount); a share whose guest
 * path is elsewhere under `/mnt/tachikoma/` is bind-mounted there from `<name>`.
 */
export function checkShares(shares: Share[]): Share[] {
  for (const s of shares) {
    const parts = s.guestPath.slice(GUEST_MOUNT_ROOT.length + 1).split("/");
    if (
      !s.guestPath.startsWith(`${GUEST_MOUNT_ROOT}/`) ||
      parts.some((p) => p === "" || p === "." || p === "..")
    ) {
      throw new UsageError(
        `share ${JSON.stringify(s.name)}: the tart backend mounts shares under ` +
          `${GUEST_MOUNT_ROOT}/, not at ${JSON.stringify(s.guestPath)}`,
      );
    }
  }
  return shares;
}
