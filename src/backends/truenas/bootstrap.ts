/**
 * What a fresh TrueNAS instance gets before its first real boot (truenas-api.md §7.4–§7.6):
 * files written into its root filesystem with `filesystem.file_receive`, among them an
 * `/etc/rc.local` that systemd runs on the next boot, once: it installs openssh-server, sudo,
 * git, curl and CA certificates from the image's apt sources (no service starts meanwhile),
 * makes the uid-1000 sandbox user with passwordless sudo (an image's own uid-1000 user is removed
 * first), fixes the ownership of the injected key, and only then starts sshd. Its output goes to `/var/log/tachikoma-firstboot.log` in the guest.
 *
 * @module
 */
import { quote } from "../../lib/shell.ts";

/** One file for `filesystem.file_receive`. */
export interface InjectedFile {
  /** Path inside the container. */
  path: string;
  content: string;
  mode: number;
  /** -1: leave the server's default (root). */
  uid: number;
  gid: number;
}

/** Marker of a finished first boot, in the guest. */
export const FIRSTBOOT_DONE = "/root/.ssh-provisioned";
/** The first boot's log, in the guest. */
export const FIRSTBOOT_LOG = "/var/log/tachikoma-firstboot.log";

/**
 * What the first boot installs: sshd and sudo, plus what provisioning needs in the guest (git for
 * code by git, curl and CA certificates) — the bootstrap step is not run on SSH engines.
 */
export const FIRSTBOOT_PACKAGES: readonly string[] = [
  "openssh-server",
  "sudo",
  "git",
  "curl",
  "ca-certificates",
];

/** The rc.local script for `user` (a name validated by the config: `[a-z_][a-z0-9_-]*`). */
export function rcLocal(user: string): string {
  const u = quote(user);
  return [
    "#!/bin/sh",
    "# Written by tachikoma: first boot of a TrueNAS instance (runs once).",
    `[ -e ${FIRSTBOOT_DONE} ] && exit 0`,
    `exec >> ${FIRSTBOOT_LOG} 2>&1`,
    "set -u",
    `user=${u}`,
    "export DEBIAN_FRONTEND=noninteractive",
    "i=0",
    "until ip route 2>/dev/null | grep -q '^default'; do",
    '  i=$((i + 1)); [ "$i" -gt 120 ] && break; sleep 1',
    "done",
    "apt-get update || exit 1",
    // No service starts during the install: sshd comes up at the end, with the user ready.
    "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d",
    `apt-get install -y --no-install-recommends ${FIRSTBOOT_PACKAGES.join(" ")}`,
    "rc=$?",
    "rm -f /usr/sbin/policy-rc.d",
    '[ "$rc" -eq 0 ] || exit 1',
    'if ! id -u "$user" >/dev/null 2>&1; then',
    "  old=$(getent passwd 1000 | cut -d: -f1)",
    '  [ -n "$old" ] && userdel "$old"',
    "  oldg=$(getent group 1000 | cut -d: -f1)",
    '  [ -n "$oldg" ] && groupdel "$oldg"',
    '  groupadd -g 1000 "$user" || exit 1',
    '  useradd -M -u 1000 -g 1000 -s /bin/bash -G sudo -d "/home/$user" "$user" || exit 1',
    "fi",
    'mkdir -p "/home/$user/.ssh"',
    'cp -rn /etc/skel/. "/home/$user/" 2>/dev/null',
    "printf '%s ALL=(ALL) NOPASSWD:ALL\\n' \"$user\" > /etc/sudoers.d/tachikoma",
    "chmod 0440 /etc/sudoers.d/tachikoma",
    'chown -R 1000:1000 "/home/$user"',
    'chmod 0700 "/home/$user/.ssh"',
    'chmod 0600 "/home/$user/.ssh/authorized_keys"',
    "systemctl enable ssh",
    "systemctl restart ssh || exit 1",
    `touch ${FIRSTBOOT_DONE}`,
    "",
  ].join("\n");
}

/** The files of a new instance for `user` with the public key line `publicKey`. */
export function bootstrapFiles(user: string, publicKey: string): InjectedFile[] {
  return [
    {
      path: `/home/${user}/.ssh/authorized_keys`,
      content: `${publicKey.trim()}\n`,
      mode: 0o600,
      uid: 1000,
      gid: 1000,
    },
    { path: "/etc/rc.local", content: rcLocal(user), mode: 0o755, uid: -1, gid: -1 },
  ];
}

/** Host path of a container path while the instance runs (§7.4 step 3). */
export function rootfsPath(pool: string, instance: string, path: string): string {
  return `/var/lib/incus/storage-pools/${pool}/containers/${instance}/rootfs${path}`;
}
