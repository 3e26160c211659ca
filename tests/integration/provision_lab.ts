/**
 * Helpers for the provisioning and SSH lab tests: the real Incus backend against the lab, a
 * sandbox launched and booted (sshd up, host keys generated), a full config for it, and a host
 * command runner whose git sees a test-only global config.
 *
 * @module
 */
import { systemClock } from "../../src/lib/clock.ts";
import { defaultConfig } from "../../src/config/default_config.ts";
import type { Config } from "../../src/config/schema.ts";
import { type CommandRunner, defaultRunner, type RunOptions } from "../../src/lib/process.ts";
import { IncusBackend, IncusClient } from "../../src/backends/incus/mod.ts";
import type { Backend, Share } from "../../src/backends/backend.ts";
import type { SandboxRecord } from "../../src/state/schema.ts";
import { labEnv } from "./lab.ts";

/** The real Incus backend on the lab socket (sandbox user admin, uid 1000). */
export async function openLabIncus(): Promise<IncusBackend> {
  const socket = labEnv()!.socket;
  const client = await IncusClient.open({ socket });
  return new IncusBackend(client, {
    endpoint: { socket },
    cpus: 1,
    memoryMb: 512,
    sshUser: "admin",
    sshPort: 22,
  });
}

/** Polls `probe` until it is true; throws at the deadline. */
export async function until(
  what: string,
  probe: () => Promise<boolean>,
  ms = 60_000,
): Promise<void> {
  const deadline = systemClock.now() + ms;
  for (let delay = 50;; delay = Math.min(delay * 2, 500)) {
    if (await probe().catch(() => false)) return;
    if (systemClock.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await systemClock.sleep(delay);
  }
}

/** Creates and starts a lab sandbox with `shares`; resolves once sshd serves its host keys. */
export async function launch(
  backend: IncusBackend,
  name: string,
  shares: Share[],
): Promise<string> {
  await backend.create(name, { image: labEnv()!.image });
  await backend.start(name, { shares });
  const ip = await backend.waitForAddress(name, {
    deadline: systemClock.now() + 60_000,
    clock: systemClock,
  });
  await waitForSshd(backend, name);
  return ip;
}

/** Polls the guest until sshd runs with its host keys generated. */
export async function waitForSshd(backend: Backend, name: string): Promise<void> {
  await until(`sshd in ${name}`, async () => {
    const r = await backend.exec(name, {
      argv: ["sh", "-c", "test -s /etc/ssh/ssh_host_ed25519_key.pub && systemctl is-active -q ssh"],
      user: "root",
    });
    return r.code === 0;
  });
}

/** A full config for a lab sandbox. */
export function labConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...defaultConfig("linux"),
    backend: "incus",
    ssh_user: "admin",
    claude_install: "skip",
    // The lab's guests reach no package mirror (tests/integration/sessions_lab_test.ts installs tmux).
    tmux_install: "skip",
    share_claude_dirs: [],
    ...overrides,
  } as Config;
}

/** A state record for a sandbox. */
export function labRecord(name: string, fields: Partial<SandboxRecord>): SandboxRecord {
  const now = new Date().toISOString();
  return {
    name,
    repo: "repo",
    branch: "main",
    worktree_path: "/nonexistent",
    created_at: now,
    last_used: now,
    status: "running",
    ip: null,
    backend: "incus",
    ...fields,
  };
}

/** The real runner with extra environment for every program (e.g. GIT_CONFIG_GLOBAL). */
export function runnerWithEnv(env: Record<string, string>): CommandRunner {
  return {
    run: (cmd: string, args: string[], options: RunOptions = {}) =>
      defaultRunner.run(cmd, args, { ...options, env: { ...env, ...options.env } }),
  };
}

/** Runs a host program; throws with its stderr on failure. */
export async function host(cmd: string, args: string[], options: RunOptions = {}): Promise<string> {
  const r = await defaultRunner.run(cmd, args, options);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}
