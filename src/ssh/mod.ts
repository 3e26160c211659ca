/**
 * SSH to sandboxes: tachikoma's key (`~/.ssh/tachikoma`), host key pinning in tachikoma's own
 * known_hosts, the built-in `ssh2` client (loaded lazily), the system `ssh` argv for
 * `ssh_command = "system"`, terminal attachment and the `~/.ssh/config` block.
 *
 * @module
 */
import type { Config } from "../config/schema.ts";
import { paths } from "../config/paths.ts";
import type { SandboxRecord } from "../state/schema.ts";
import { connectSsh, type SshConnection, type SshTarget } from "./client.ts";
import { ensureKey, type EnsureKeyOptions } from "./keys.ts";
import { KnownHosts } from "./known_hosts.ts";

export * from "./keys.ts";
export * from "./known_hosts.ts";
export * from "./client.ts";
export * from "./system.ts";
export * from "./config_block.ts";

/** tachikoma's known_hosts for a config dir (`<dir>/known_hosts`, locked in `<dir>/locks/`). */
export function knownHostsFor(configDir?: string): KnownHosts {
  const p = paths(configDir);
  return new KnownHosts(p.knownHosts, { lockPath: `${p.locks}/known_hosts.lock` });
}

/**
 * Forgets a sandbox's pinned host keys. Core calls it when it destroys or (re)creates a sandbox,
 * so the new sandbox's keys are pinned fresh.
 */
export function forgetHostKeys(configDir: string, sandbox: string): Promise<boolean> {
  return knownHostsFor(configDir).forget(sandbox);
}

/** The SSH target of a sandbox (its engine's SSH endpoint, the configured user). */
export function sandboxTarget(
  endpoint: { host: string; port: number },
  record: SandboxRecord,
  config: Pick<Config, "ssh_user">,
): SshTarget {
  return {
    host: endpoint.host,
    port: endpoint.port,
    user: config.ssh_user,
    alias: record.name,
    createdAt: record.created_at,
  };
}

/** Options of {@link openSandboxSsh}. */
export interface OpenSandboxSshOptions extends EnsureKeyOptions {
  /** tachikoma's config dir (known_hosts, locks). */
  configDir: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  agentForward?: boolean;
}

/** Opens an SSH connection to a sandbox with tachikoma's key and pinned host keys. */
export async function openSandboxSsh(
  target: SshTarget,
  options: OpenSandboxSshOptions,
): Promise<SshConnection> {
  const key = await ensureKey(options);
  return await connectSsh(target, {
    privateKey: await Deno.readTextFile(key.privatePath),
    knownHosts: knownHostsFor(options.configDir),
    timeoutMs: options.timeoutMs,
    signal: options.signal,
    agentForward: options.agentForward,
  });
}
