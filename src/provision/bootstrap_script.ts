/**
 * The guest side of the `bootstrap` step: one constant POSIX `sh` script, run as root through the
 * engine's API, with the sandbox user's name and the package list as `$1` and `$2`. It checks
 * everything first and changes only what is missing, so on a ready guest it is one fast exec:
 *
 * - the distribution must be Debian or Ubuntu (`/etc/os-release`) with apt for anything missing;
 * - packages (`$2`) missing per `dpkg-query` are installed with `apt-get install
 *   --no-install-recommends` (after `dpkg --configure -a`, so an interrupted install resumes);
 *   the caller's environment carries the proxy for apt when egress is restricted;
 * - the user `$1` gets uid/gid 1000, a home and bash; an image's own uid-1000 user (Ubuntu's
 *   `ubuntu`) is renamed to it; no password (key-only SSH);
 * - passwordless sudo from `/etc/sudoers.d/tachikoma`;
 * - a default locale (`LANG=C.UTF-8`, built into glibc: no package);
 * - sshd: a unit drop-in that makes missing host keys at start (so a copy of an image never keeps
 *   its source's keys), the fast host keys made now when missing (so they can be pinned; under
 *   the drop-in's lock), the unit enabled and started (`--no-block`) when nothing enables it;
 *   sshd is never waited for.
 * - apt waits for a default route first: provisioning may run while the guest still waits for
 *   DHCP.
 *
 * A failure ends with one line `tachikoma-bootstrap-error: <why>` on stderr (exit 90); what was
 * done is listed on stdout as `tachikoma-bootstrap-did: <items>`.
 *
 * @module
 */

/** Marks the one-line reason of a failure on stderr. */
export const ERROR_PREFIX = "tachikoma-bootstrap-error: ";
/** Marks what was changed, on stdout. */
export const DID_PREFIX = "tachikoma-bootstrap-did:";
/** Exit code of a failure the script explains. */
export const EXIT_EXPLAINED = 90;
/** Where the guest keeps apt's output of the last bootstrap. */
export const GUEST_LOG = "/var/log/tachikoma-bootstrap.log";

/** Makes missing SSH host keys: the fast ones under a lock (bootstrap too), then the rest. */
export const HOST_KEYS_HELPER = "/usr/local/lib/tachikoma/ssh-host-keys";

const HELPER_LINES = [
  "#!/bin/sh",
  "# Written by tachikoma: SSH host keys of a guest whose image has none (fast ones first).",
  "exec 9> /run/tachikoma-ssh-keygen.lock",
  "flock 9",
  "for t in ed25519 ecdsa; do",
  '  f="/etc/ssh/ssh_host_${t}_key"',
  '  [ -f "$f" ] || ssh-keygen -q -t "$t" -N "" -f "$f" || exit 1',
  "done",
  "flock -u 9",
  '[ "${1-}" = fast ] || exec ssh-keygen -A',
];

/** The sshd unit drop-in: host keys made at start when missing, before `sshd -t` checks them. */
export const SSH_DROPIN_LINES = [
  "[Service]",
  "ExecStartPre=",
  `ExecStartPre=${HOST_KEYS_HELPER}`,
  "ExecStartPre=/usr/sbin/sshd -t",
];

/** `printf` of constant lines (none holds a single quote) into a file. */
function writeLines(lines: readonly string[], file: string): string {
  return `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(" ")} > "${file}"`;
}

/** The script (see the module doc). */
export const BOOTSTRAP_SCRIPT = [
  "set -u",
  'user=$1; pkgs=$2; did=""',
  `log=${GUEST_LOG}`,
  `E() { printf '${ERROR_PREFIX}%s\\n' "$*" >&2; exit ${EXIT_EXPLAINED}; }`,
  // The first line of the log matching one of the patterns, tried in order, without apt's tag.
  "first() {",
  '  for re in "$@"; do',
  '    l=$(grep -m 1 -E "$re" "$log") && { printf "%s" "$l" | sed -E "s/^(E|W): //; s/ +/ /g" | cut -c1-240; return; }',
  "  done",
  '  tail -n 1 "$log" | cut -c1-240',
  "}",
  "os=unknown; ID=; ID_LIKE=",
  'if [ -r /etc/os-release ]; then . /etc/os-release; os="${PRETTY_NAME:-${ID:-unknown}}"; fi',
  "missing=",
  "if command -v dpkg-query >/dev/null 2>&1; then",
  // One query for all of them: the status database is read once.
  "  ok=$(dpkg-query -W -f='${Package} ${Status}\\n' $pkgs 2>/dev/null |",
  '    awk \'$NF == "installed" { printf " %s", $1 }\')',
  "  for p in $pkgs; do",
  '    case "$ok " in *" $p "*) ;; *) missing="$missing $p" ;; esac',
  "  done",
  'else missing=" $pkgs"; fi',
  'if [ -n "$missing" ]; then',
  '  case " $ID $ID_LIKE " in',
  '    *" debian "*|*" ubuntu "*) ;;',
  '    *) E "unsupported distribution $os: the bootstrap installs$missing with apt (Debian or Ubuntu)" ;;',
  "  esac",
  "  command -v apt-get >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||",
  '    E "the image ($os) has no apt-get/dpkg: cannot install$missing"',
  // Provisioning may run while the guest still waits for DHCP: apt needs a route.
  "  n=0",
  "  until awk '$2 == \"00000000\" { f = 1 } END { exit !f }' /proc/net/route 2>/dev/null; do",
  '    n=$((n + 1)); [ "$n" -le 600 ] || E "no network (no default route after 60 s): cannot install$missing"',
  "    sleep 0.1",
  "  done",
  "  export DEBIAN_FRONTEND=noninteractive",
  '  : > "$log"',
  '  dpkg --configure -a >> "$log" 2>&1',
  '  if ! apt-get -q -o Dpkg::Use-Pty=0 -o Acquire::Retries=2 update >> "$log" 2>&1 ||',
  "    grep -q -E '^(E: |Err:|W: Failed to fetch)' \"$log\"; then",
  "    E \"apt-get update failed: $(first '^[EW]: Failed to fetch' '^E: ' '^Err:')\"",
  "  fi",
  "  if ! apt-get -q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confdef \\",
  "    -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-unsafe-io \\",
  '    --no-install-recommends install $missing >> "$log" 2>&1; then',
  "    E \"installing$missing failed: $(first '^E: ')\"",
  "  fi",
  '  apt-get clean >> "$log" 2>&1',
  '  did="$did packages:$(echo $missing | tr " " ",")"',
  "fi",
  'uid=$(getent passwd "$user" | cut -d: -f3)',
  'if [ -z "$uid" ]; then',
  "  other=$(getent passwd 1000 | cut -d: -f1)",
  '  if [ -n "$other" ]; then',
  '    usermod -l "$user" -d "/home/$user" -m "$other" || E "cannot rename user $other (uid 1000) to $user"',
  '    if [ "$(getent group "$other" | cut -d: -f3)" = 1000 ]; then groupmod -n "$user" "$other"; fi',
  "  else",
  "    if ! getent group 1000 >/dev/null; then",
  '      if getent group "$user" >/dev/null; then E "group $user exists with a gid other than 1000"; fi',
  '      groupadd -g 1000 "$user" || E "cannot create group $user (gid 1000)"',
  "    fi",
  '    useradd -m -u 1000 -g 1000 -s /bin/bash "$user" || E "cannot create user $user (uid 1000)"',
  "  fi",
  "  usermod -p '*' \"$user\"",
  '  did="$did user"',
  'elif [ "$uid" != 1000 ]; then',
  '  E "user $user exists with uid $uid; the sandbox user needs uid 1000 (choose another ssh_user)"',
  "fi",
  'home=$(getent passwd "$user" | cut -d: -f6)',
  'if [ -n "$home" ] && [ ! -d "$home" ]; then',
  '  mkdir -p "$home" && chown 1000:1000 "$home" && chmod 0750 "$home"; did="$did home"',
  "fi",
  "f=/etc/sudoers.d/tachikoma",
  'line="$user ALL=(ALL:ALL) NOPASSWD:ALL"',
  'if [ "$(cat "$f" 2>/dev/null)" != "$line" ]; then',
  '  mkdir -p /etc/sudoers.d && printf "%s\\n" "$line" > "$f.tmp" && chmod 0440 "$f.tmp" &&',
  '    mv -f "$f.tmp" "$f" || E "cannot write $f"',
  '  did="$did sudo"',
  "fi",
  "if ! grep -qs '^LANG=' /etc/default/locale; then",
  '  echo LANG=C.UTF-8 >> /etc/default/locale; did="$did locale"',
  "fi",
  "if [ -x /usr/sbin/sshd ]; then",
  `  h=${HOST_KEYS_HELPER}`,
  "  d=/etc/systemd/system/ssh.service.d",
  // An image's own drop-in that makes missing host keys at start will do (the lab image's).
  '  if ! grep -qs -e \'ssh-keygen -A\' -e "$h" "$d"/*.conf; then',
  '    mkdir -p "$d" "${h%/*}" &&',
  `      ${writeLines(HELPER_LINES, "$h")} && chmod 0755 "$h" &&`,
  `      ${writeLines(SSH_DROPIN_LINES, "$d/tachikoma-host-keys.conf")} ||`,
  '      E "cannot write $d"',
  "    [ -d /run/systemd/system ] && systemctl daemon-reload",
  '    did="$did sshd-unit"',
  "  fi",
  // With that drop-in (shared lock), the fast keys now, so they can be pinned.
  '  if [ ! -f /etc/ssh/ssh_host_ed25519_key ] && grep -qs "$h" "$d/tachikoma-host-keys.conf"; then',
  '    "$h" fast || E "ssh-keygen failed"',
  '    did="$did host-keys"',
  "  fi",
  "  w=/etc/systemd/system",
  '  if [ -d /run/systemd/system ] && [ ! -e "$w/multi-user.target.wants/ssh.service" ] &&',
  '    [ ! -e "$w/sockets.target.wants/ssh.socket" ] && [ ! -e "$w/sshd.service" ]; then',
  "    systemctl -q enable ssh.service 2>/dev/null && systemctl start --no-block ssh.service",
  '    did="$did sshd-enabled"',
  "  fi",
  "fi",
  `echo "${DID_PREFIX}$did"`,
].join("\n");
