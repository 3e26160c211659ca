/**
 * What a tart backend is made of (its CLI, run launcher, clock, guest access and settings) and
 * what tart can do for Linux guests.
 *
 * @module
 */
import type { Capabilities } from "../backend.ts";
import type { Clock } from "../../lib/clock.ts";
import type { TartCli, TartResolver } from "./cli.ts";
import type { GuestAccess } from "./guest_access.ts";
import type { RunLauncher } from "./run.ts";

/** Settings of a TartBackend. */
export interface TartSettings {
  /** tachikoma's state directory (run logs go to `<stateDir>/logs`). */
  stateDir: string;
  resolver: TartResolver;
  stopTimeoutSecs: number;
  /** Applied with `tart set --disk-size` after clone, when set. */
  diskSizeGb?: number;
  cpus: number;
  memoryMb: number;
  /** `vm_display`: `none` adds `--no-graphics`. */
  display: string;
  /** Upper bound for `tart run` to take the VM lock (ms). */
  startTimeoutMs: number;
}

/** Everything a TartBackend is made of. */
export interface TartParts {
  cli: TartCli;
  launcher: RunLauncher;
  clock: Clock;
  guest: GuestAccess;
  settings: TartSettings;
}

/** What tart can do for Linux guests. */
export const TART_CAPABILITIES: Capabilities = {
  suspend: false,
  checkpoints: true,
  checkpointsStopped: true,
  clone: true,
  egress: true,
  pty: false,
  files: false,
  execOverSsh: true,
  mountHost: true,
};
