/**
 * Step 1, `ssh_key`: tachikoma's public key into the sandbox user's `~/.ssh/authorized_keys`
 * (dir 0700, file 0600, written by the user so ownership is right; never duplicated), then the
 * guest's SSH host keys — read through the backend, a trusted channel — pinned in tachikoma's
 * known_hosts so the first SSH connection is already verified.
 *
 * @module
 */
import { paths } from "../config/paths.ts";
import { log } from "../lib/log.ts";
import { ensureKey } from "../ssh/keys.ts";
import { type HostKey, KnownHosts, parsePublicKeyLine } from "../ssh/known_hosts.ts";
import type { HostContext, StepDef } from "./context.ts";
import type { Guest } from "./guest.ts";

const AUTHORIZE = [
  "set -eu",
  "umask 077",
  'mkdir -p -- "$HOME/.ssh"',
  'chmod 700 -- "$HOME/.ssh"',
  'f="$HOME/.ssh/authorized_keys"',
  '[ -f "$f" ] || : > "$f"',
  'if ! grep -qxF -- "$1" "$f"; then',
  '  if [ -s "$f" ] && [ -n "$(tail -c 1 "$f")" ]; then printf "\\n" >> "$f"; fi',
  '  printf "%s\\n" "$1" >> "$f"',
  "fi",
  'chmod 600 -- "$f"',
].join("\n");

const HOST_KEYS = 'for f in /etc/ssh/ssh_host_*_key.pub; do [ -f "$f" ] && cat "$f"; done; true';

/** Inputs of the ssh_key step. */
export interface SshKeyInputs {
  publicKey: string;
  user: string;
}

/** The known_hosts of this run. */
export function knownHostsOf(host: HostContext): KnownHosts {
  if (host.deps.knownHosts) return host.deps.knownHosts;
  const p = paths(host.ctx.stateDir);
  return new KnownHosts(p.knownHosts, { lockPath: `${p.locks}/known_hosts.lock` });
}

/** The guest's SSH host public keys (empty when sshd has not generated them yet). */
export async function guestHostKeys(guest: Guest): Promise<HostKey[]> {
  const r = await guest.query(HOST_KEYS, [], { what: "reading the SSH host keys", as: "root" });
  const keys: HostKey[] = [];
  for (const line of r.stdout.split("\n")) {
    if (!line.trim()) continue;
    try {
      keys.push(parsePublicKeyLine(line));
    } catch {
      // not a key line: ignore
    }
  }
  return keys;
}

/** Step 1. */
export const sshKeyStep: StepDef<SshKeyInputs> = {
  name: "ssh_key",
  label: "Injecting SSH key",
  async inputs(host) {
    const key = await host.cached(
      "ssh-key",
      () =>
        ensureKey({ runner: host.deps.runner, home: host.deps.home, configDir: host.ctx.stateDir }),
    );
    return { publicKey: key.publicKey, user: host.ctx.config.ssh_user };
  },
  async run(host, guest, inputs) {
    await guest.shCheck(AUTHORIZE, [inputs.publicKey], {
      what: "adding the key to ~/.ssh/authorized_keys",
    });
    const keys = await guestHostKeys(guest);
    if (keys.length === 0) {
      log.debug(`no SSH host keys in ${guest.sandbox} yet; the first connection will pin them`);
      return;
    }
    await knownHostsOf(host).pin(guest.sandbox, keys, { replace: true });
  },
};
