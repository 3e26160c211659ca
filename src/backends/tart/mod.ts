/**
 * The tart backend: Linux VMs on Apple silicon through the tart CLI. See docs/tart.md.
 *
 * @module
 */
import type { Config } from "../../config/schema.ts";
import type { BackendContext } from "../backend.ts";
import { systemClock } from "../../lib/clock.ts";
import { defaultRunner } from "../../lib/process.ts";
import { registerSecret } from "../../lib/redact.ts";
import { TartCli } from "./cli.ts";
import { DetachedRunLauncher } from "./run.ts";
import { GuestAccess } from "./guest_access.ts";
import { TartBackend } from "./backend.ts";
import type { GuestSsh } from "./guest.ts";

export { TartBackend } from "./backend.ts";
export { TART_CAPABILITIES, type TartParts, type TartSettings } from "./parts.ts";
export { TartCli } from "./cli.ts";
export type { TartCliOptions, TartResolver } from "./cli.ts";
export { GuestAccess } from "./guest_access.ts";
export type { GuestSsh, SshAuth, SshProbe, SshTarget } from "./guest.ts";
export { DetachedRunLauncher, logTail, runLogPath } from "./run.ts";
export type { RunHandle, RunLauncher } from "./run.ts";
export { dirArgs, formatDirSpec, validateDirShare } from "./dir_spec.ts";
export { parseGet, parseIp, parseList } from "./parse.ts";

/** The password of tart's Linux images' `admin` user (the password-SSH fallback). */
export const DEFAULT_IMAGE_PASSWORD = "admin";

/** Overrides for {@link openTart} (tests). */
export interface OpenTartOptions {
  /** Extra environment for every tart call. */
  env?: Record<string, string>;
  /** The SSH layer (default: `src/ssh/`). */
  ssh?: GuestSsh;
}

/**
 * Opens the tart backend for `config`: the `[tart]` section (binary, resolver, stop timeout,
 * disk size), `vm_cpus`, `vm_memory`, `vm_display`, `ssh_user`, `ssh_port` and
 * `boot_timeout_secs`. The password fallback comes from `TACHIKOMA_TART_PASSWORD` (default
 * `admin`; empty disables it).
 */
export async function openTart(
  config: Config,
  context: BackendContext,
  options: OpenTartOptions = {},
): Promise<TartBackend> {
  const cli = new TartCli(defaultRunner, { binary: config.tart.binary, env: options.env });
  const ssh = options.ssh ?? (await import("./ssh_guest.ts")).openGuestSsh(config, context);
  const envPassword = Deno.env.get("TACHIKOMA_TART_PASSWORD");
  const password = envPassword === undefined ? DEFAULT_IMAGE_PASSWORD : envPassword || null;
  registerSecret(password ?? undefined);
  const guest = new GuestAccess({
    cli,
    ssh,
    clock: systemClock,
    sshUser: config.ssh_user,
    sshPort: config.ssh_port,
    resolver: config.tart.resolver,
    password,
  });
  return new TartBackend({
    cli,
    launcher: new DetachedRunLauncher(),
    clock: systemClock,
    guest,
    settings: {
      stateDir: context.stateDir,
      resolver: config.tart.resolver,
      stopTimeoutSecs: config.tart.stop_timeout_secs,
      diskSizeGb: config.tart.disk_size_gb,
      cpus: config.vm_cpus,
      memoryMb: config.vm_memory,
      display: config.vm_display,
      startTimeoutMs: Math.max(30, config.boot_timeout_secs) * 1000,
    },
  });
}
