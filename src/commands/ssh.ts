/**
 * `tachikoma ssh install|refresh|uninstall|forget`: the managed block in `~/.ssh/config` (one
 * stanza per sandbox with an address, so `ssh <sandbox>` works with the plain OpenSSH client)
 * and tachikoma's pinned host keys.
 *
 * @module
 */
import type { Backend } from "../backends/backend.ts";
import type { CommandContext } from "./context.ts";
import { homeDir, paths } from "../config/paths.ts";
import { errorMessage } from "../lib/errors.ts";
import { log } from "../lib/log.ts";
import { StateStore } from "../state/store.ts";
import type { SandboxRecord } from "../state/schema.ts";
import type { Config } from "../config/schema.ts";
import { ensureKey } from "../ssh/keys.ts";
import { type KnownHosts, validateHostAlias } from "../ssh/known_hosts.ts";
import { knownHostsFor } from "../ssh/mod.ts";
import { sshBlockBody, type SshHostEntry, writeSshConfigBlock } from "../ssh/config_block.ts";

/** `~/.ssh/config`. */
function sshConfigPath(): string {
  return `${homeDir()}/.ssh/config`;
}

function display(path: string): string {
  const home = homeDir();
  return path.startsWith(home + "/") ? `~${path.slice(home.length)}` : path;
}

/**
 * Pins the host keys of sandboxes that have none yet by reading them through the backend (a
 * trusted channel), so `ssh <sandbox>` with strict checking works at once. Best effort.
 */
async function pinMissing(
  records: SandboxRecord[],
  deps: {
    config: Config;
    openBackend: (config: Config) => Promise<Backend>;
    knownHosts: KnownHosts;
  },
): Promise<void> {
  const { config, openBackend, knownHosts } = deps;
  const candidates = records.filter((r) => (r.backend ?? "tart") === config.backend);
  if (candidates.length === 0) return;
  try {
    const { Guest } = await import("../provision/guest.ts");
    const { guestHostKeys } = await import("../provision/ssh_key.ts");
    const backend = await openBackend(config);
    try {
      for (const r of candidates) {
        try {
          const keys = await guestHostKeys(new Guest(backend, r.name, { user: config.ssh_user }));
          if (keys.length) await knownHosts.pin(r.name, keys);
        } catch (error) {
          log.debug(`could not read the host keys of ${r.name}: ${errorMessage(error)}`);
        }
      }
    } finally {
      await backend.close();
    }
  } catch (error) {
    log.debug(`could not open the backend to pin host keys: ${errorMessage(error)}`);
  }
}

/** `ssh install` and `ssh refresh`: (re)writes the block from the current state. */
export async function install(ctx: CommandContext, verb: "install" | "refresh"): Promise<void> {
  const loaded = await ctx.config();
  const { config } = loaded;
  const dir = loaded.files.dir;
  const state = await new StateStore(dir).read();
  const key = await ensureKey({ configDir: dir });
  const withIp = state.vms.filter((r) => r.ip);
  const entries: SshHostEntry[] = withIp.map((r) => ({
    name: r.name,
    hostName: r.ip!,
    user: config.ssh_user,
    port: config.ssh_port,
  }));
  const knownHostsFile = paths(dir).knownHosts;
  const { body, hosts, skipped } = sshBlockBody(entries, {
    identityFile: key.privatePath,
    knownHostsFile,
  });
  const path = sshConfigPath();
  const written = await writeSshConfigBlock(path, body);
  for (const s of skipped) {
    log.warn(`left ${JSON.stringify(s.name)} out of ${display(path)}: ${s.reason}`);
  }

  const knownHosts = knownHostsFor(dir);
  const pinned = () => knownHosts.list().then((pins) => new Set(pins.map((p) => p.host)));
  let have = await pinned();
  const missing = withIp.filter((r) => hosts.includes(r.name) && !have.has(r.name));
  if (missing.length) {
    await pinMissing(missing, { config, openBackend: (c) => ctx.app.openBackend(c), knownHosts });
    have = await pinned();
  }
  const unpinned = hosts.filter((h) => !have.has(h));
  for (const h of unpinned) {
    log.warn(
      `no pinned host key for ${h} yet: \`ssh ${h}\` refuses to connect until tachikoma has ` +
        `reached it once (\`tachikoma enter ${h}\`)`,
    );
  }
  ctx.out.result({
    path,
    changed: written.changed,
    backup: written.backup,
    hosts,
    skipped,
    unpinned,
  }, () => {
    const n = `${hosts.length} sandbox${hosts.length === 1 ? "" : "es"}`;
    const head = written.changed
      ? `${verb === "install" ? "wrote" : "refreshed"} the tachikoma block in ${
        display(path)
      } (${n})` +
        (written.backup ? `; backup: ${display(written.backup)}` : "")
      : `${display(path)} is up to date (${n})`;
    return hosts.length ? `${head}\nconnect with: ssh ${hosts[0]}` : head;
  });
}

/** `ssh uninstall`: removes the block; the rest of the file is left as it is. */
export async function uninstall(ctx: CommandContext): Promise<void> {
  const path = sshConfigPath();
  const written = await writeSshConfigBlock(path, null);
  ctx.out.result(
    { path, changed: written.changed, backup: written.backup },
    () =>
      written.changed
        ? `removed the tachikoma block from ${display(path)}; backup: ${display(written.backup!)}`
        : `no tachikoma block in ${display(path)}`,
  );
}

/** `ssh forget <name>`: drops a sandbox's pinned host keys (after recreating it by hand). */
export async function forget(ctx: CommandContext, name: string): Promise<void> {
  validateHostAlias(name);
  const loaded = await ctx.config();
  const forgotten = await knownHostsFor(loaded.files.dir).forget(name);
  ctx.out.result(
    { name, forgotten },
    () =>
      forgotten
        ? `forgot the pinned host keys of ${name}; the next connection pins its current ones`
        : `no pinned host keys for ${name}`,
  );
}
