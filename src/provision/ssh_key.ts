/**
 * Step 1, `ssh_key`: tachikoma's public key into the sandbox user's `~/.ssh/authorized_keys`
 * (dir 0700, file 0600, written by the user so ownership is right; never duplicated), then the
 * guest's SSH host keys — read through the backend, a trusted channel — pinned in tachikoma's
 * known_hosts so the first SSH connection is already verified. When `[env]` has per-session values
 * (forwarded or `session_only`), sshd is told to accept exactly those names from a client
 * (`AcceptEnv` in `/etc/ssh/sshd_config.d/`), so `ssh_command = "system"` sessions get them
 * through `SendEnv` — the values are never written to the guest.
 *
 * @module
 */
import { paths } from "../config/paths.ts";
import { log } from "../lib/log.ts";
import { ensureKey } from "../ssh/keys.ts";
import { type HostKey, KnownHosts, parsePublicKeyLine } from "../ssh/known_hosts.ts";
import type { HostContext, StepDef } from "./context.ts";
import type { Guest } from "./guest.ts";
import { sessionEnvNames } from "../config/guest_env.ts";
import { isEnvName } from "../lib/shell.ts";
import { ProvisionError } from "./errors.ts";

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

/**
 * Writes the `AcceptEnv` drop-in for the names in `$@` (unchanged: nothing) and reloads sshd;
 * prints `no-dropins` when this sshd has no drop-in directory.
 */
const ACCEPT_ENV = [
  "set -eu",
  "d=/etc/ssh/sshd_config.d",
  'if [ ! -d "$d" ]; then echo no-dropins; exit 0; fi',
  'f="$d/tachikoma-env.conf"',
  'line="AcceptEnv $*"',
  'if [ -f "$f" ] && [ "$(cat -- "$f")" = "$line" ]; then exit 0; fi',
  'printf "%s\\n" "$line" > "$f.tmp"',
  'chmod 644 -- "$f.tmp"',
  'mv -f -- "$f.tmp" "$f"',
  "systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null ||",
  "  pkill -HUP -x sshd 2>/dev/null || true",
].join("\n");

const HOST_KEYS = 'for f in /etc/ssh/ssh_host_*_key.pub; do [ -f "$f" ] && cat "$f"; done; true';

/** Where a guest keeps the name of the sandbox its SSH host keys were made for. */
export const IDENTITY_MARK = "/var/lib/tachikoma/identity";

/**
 * The guest's identity made its own (`$1`: the sandbox; `$2`: `clone` for a new clone), then its
 * host public keys. A copy of another sandbox (the mark names another one, or a clone without a
 * mark) gets new SSH host keys (the fast types now; the unit's drop-in makes the others at the
 * next start) and a new machine-id, and sshd reloads them; the mark then names `$1`.
 * Run again (a lost answer), it only prints the keys.
 *
 * A clone runs this while it boots, so its sshd may be starting at that moment, and the unit's
 * `ssh-keygen -A` makes any key that is missing then. So no key is ever missing: the new ones
 * are made in a private directory next to the old ones and moved over them (a key file in the
 * way made `ssh-keygen -f` ask, and fail on no input); the types not renewed are removed after
 * (a start in between makes its own RSA key). A start after the move reads the new keys; a
 * running or starting sshd is reloaded (the reload waits for a start under way).
 */
const OWN_IDENTITY = [
  "set -eu",
  `m=${IDENTITY_MARK}`,
  'was=$(cat -- "$m" 2>/dev/null || true)',
  'd=""',
  `trap '[ -z "$d" ] || rm -rf -- "$d"' EXIT`,
  'if [ "$was" != "$1" ] && { [ -n "$was" ] || [ "$2" = clone ]; }; then',
  "  if command -v ssh-keygen >/dev/null 2>&1; then",
  "    d=$(mktemp -d /etc/ssh/.tachikoma-keys.XXXXXX)",
  "    for t in ed25519 ecdsa; do",
  '      k="ssh_host_${t}_key"',
  '      ssh-keygen -q -t "$t" -N "" -C "root@$1" -f "$d/$k" </dev/null',
  '      mv -f -- "$d/$k" "/etc/ssh/$k" && mv -f -- "$d/$k.pub" "/etc/ssh/$k.pub"',
  "    done",
  "    for f in /etc/ssh/ssh_host_*; do",
  '      case "$f" in */ssh_host_ed25519_key* | */ssh_host_ecdsa_key*) ;; *) rm -f -- "$f" ;; esac',
  "    done",
  "  fi",
  "  if command -v systemd-machine-id-setup >/dev/null 2>&1; then",
  "    rm -f /etc/machine-id && systemd-machine-id-setup >/dev/null 2>&1 || true",
  "  fi",
  // A reload (SIGHUP: sshd executes itself again on the new keys), not a restart: the unit's
  // start would make the missing RSA key first (`ssh-keygen -A`: seconds on one CPU).
  "  systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null ||",
  "    pkill -HUP -x sshd 2>/dev/null || true",
  "fi",
  'mkdir -p -- "$(dirname -- "$m")"',
  `printf '%s\\n' "$1" > "$m.tmp" && mv -f -- "$m.tmp" "$m"`,
  HOST_KEYS,
].join("\n");

/** Inputs of the ssh_key step. */
export interface SshKeyInputs {
  publicKey: string;
  user: string;
  /** Names sshd accepts from a client (`[env]` per-session values); absent when none. */
  acceptEnv?: string[];
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
  return parseHostKeys(r.stdout);
}

/**
 * The guest's SSH host public keys, once its identity is its own: a clone's (or a copy's, see
 * {@link OWN_IDENTITY}) are made anew first.
 */
export async function ownHostKeys(guest: Guest, clone: boolean): Promise<HostKey[]> {
  const r = await guest.query(OWN_IDENTITY, [guest.sandbox, clone ? "clone" : "new"], {
    what: "making the SSH host keys the sandbox's own",
    as: "root",
  });
  if (r.code !== 0) {
    throw new ProvisionError("ssh_key", "making the SSH host keys the sandbox's own failed", {
      stderr: r.stderr,
    });
  }
  return parseHostKeys(r.stdout);
}

function parseHostKeys(stdout: string): HostKey[] {
  const keys: HostKey[] = [];
  for (const line of stdout.split("\n")) {
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
    const names = sessionEnvNames(host.ctx.config);
    return {
      publicKey: key.publicKey,
      user: host.ctx.config.ssh_user,
      ...(names.length ? { acceptEnv: names } : {}),
    };
  },
  async run(host, guest, inputs) {
    const bad = inputs.acceptEnv?.find((name) => !isEnvName(name));
    if (bad !== undefined) {
      throw new ProvisionError(
        "ssh_key",
        `[env] name ${JSON.stringify(bad)} is not a variable name`,
      );
    }
    // Three guest round trips on different files, side by side.
    const authorized = guest.shCheck(AUTHORIZE, [inputs.publicKey], {
      what: "adding the key to ~/.ssh/authorized_keys",
    });
    const accepted = inputs.acceptEnv?.length
      ? guest.shCheck(ACCEPT_ENV, inputs.acceptEnv, {
        what: "letting sshd accept the [env] session values (AcceptEnv)",
        as: "root",
      }).then((r) => {
        if (r.stdout.trim() === "no-dropins") {
          log.warn(
            `${guest.sandbox}: sshd has no /etc/ssh/sshd_config.d, so ssh_command = "system" ` +
              "sessions get no [env] session values (the built-in client's do)",
          );
        }
      })
      : undefined;
    const [keys] = await Promise.all([
      ownHostKeys(guest, host.ctx.clone === true),
      authorized,
      accepted,
    ]);
    if (keys.length === 0) {
      log.debug(`no SSH host keys in ${guest.sandbox} yet; the first connection will pin them`);
      return;
    }
    await knownHostsOf(host).pin(guest.sandbox, keys, { replace: true });
  },
};
