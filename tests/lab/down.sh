#!/usr/bin/env bash
# tests/lab/down.sh — stop the tachikoma Incus lab. Idempotent. Output goes to stderr.
#
# Usage: bash tests/lab/down.sh           stop the image server, incusd (its containers stop too) and
#                                         the lxcfs we started; keeps instances, bridge, pool and
#                                         images for a fast up.sh
#        bash tests/lab/down.sh --purge   also delete instances named tachikoma-*/tkt-*, images aliased
#                                         tachikoma-*/tkt-*/tachikoma/* (pulled and prepared stock
#                                         images), profiles tachikoma-*/tkt-*, the default profile's
#                                         lab devices, the bridge tkbr0, the pool tachikoma, the
#                                         leftover nftables `table inet incus` and the lab user.
# The image cache (${TACHIKOMA_LAB_CACHE:-/var/cache/tachikoma-lab}) is always kept.
set -euo pipefail

LAB_STATE=/var/lib/tachikoma-lab
LAB_RUN=/run/tachikoma-lab
BRIDGE=tkbr0
POOL=tachikoma
INCUS_SOCKET=/var/lib/incus/unix.socket
LXCFS_DIR=/var/lib/lxcfs
NAME_RE='^(tachikoma-|tkt-)'
IMAGE_RE='^(tachikoma-|tkt-|tachikoma/)'
IMAGE_SERVER_DIR=$LAB_STATE/image-server
LAB_USER=${TACHIKOMA_LAB_USER:-tklab}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

say() { printf 'lab: %s\n' "$*" >&2; }
warn() { printf 'lab: warning: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }
have() { command -v "$1" >/dev/null 2>&1; }
pid_alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ -n $st && $st != Z* ]]
}
read_pid() { [[ -s $1 ]] && tr -dc 0-9 <"$1"; }
socket_ok() {
	[[ -S $INCUS_SOCKET ]] &&
		curl -fsS --max-time 3 --unix-socket "$INCUS_SOCKET" http://incus/1.0 >/dev/null 2>&1
}
pid1_is_systemd() { [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]]; }
incus_q() { incus "$@" 2>/dev/null; }

# wait_gone PID SECONDS — wait until PID has exited (zombies count as gone).
wait_gone() {
	local pid=$1 deadline=$(($(now_ms) + $2 * 1000))
	while pid_alive "$pid"; do
		(($(now_ms) < deadline)) || return 1
		sleep 0.1
	done
}

# stop_pidfile NAME PIDFILE COMM — TERM (then KILL) the process we started, if it is still ours.
stop_pidfile() {
	local name=$1 pidfile=$2 comm=$3 pid
	pid=$(read_pid "$pidfile" || true)
	if [[ -n $pid ]] && pid_alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" 15; then
			warn "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" 5 || warn "$name (pid $pid) is still alive"
		fi
	fi
	rm -f "$pidfile"
}

PURGE=0
case "${1-}" in
"") ;;
--purge) PURGE=1 ;;
-h | --help)
	sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 0
	;;
*) die "unknown argument: $1 (usage: down.sh [--purge])" ;;
esac

[[ $(uname -s) == Linux ]] || die "the Incus lab needs Linux (this is $(uname -s))"
[[ $(id -u) -eq 0 ]] || die "the Incus lab must be stopped as root (try: sudo bash tests/lab/down.sh)"

mkdir -p "$LAB_RUN"
exec 9>"$LAB_RUN/lock"
flock -w 900 9 || die "timed out waiting for another up.sh/down.sh (lock $LAB_RUN/lock)"
T0=$(now_ms)
rm -f "$LAB_RUN/env" # tests must not find a half-stopped lab

# ---------------------------------------------------------------------------------------------
# --purge: delete the lab's objects (needs the daemon)
# ---------------------------------------------------------------------------------------------
purge_objects() {
	local n fp line kept
	if ! socket_ok; then
		TACHIKOMA_LAB_LOCKED=1 bash "$HERE/up.sh" --daemon-only ||
			die "could not start incusd to purge the lab objects"
	fi
	while IFS= read -r n; do
		[[ $n =~ $NAME_RE ]] || continue
		incus delete --force "$n" >/dev/null || warn "could not delete instance $n"
	done < <(incus_q list -f csv -c n || true)
	while IFS=, read -r n fp _; do
		[[ $n =~ $IMAGE_RE ]] || continue
		incus_q image delete "$fp" >/dev/null || warn "could not delete image $n ($fp)"
	done < <(incus_q image alias list -f csv || true)
	while IFS=, read -r n _; do
		[[ $n =~ $NAME_RE ]] || continue
		incus_q profile delete "$n" >/dev/null || warn "could not delete profile $n"
	done < <(incus_q profile list -f csv || true)
	if [[ $(incus_q profile device get default eth0 network) == "$BRIDGE" ]]; then
		incus_q profile device remove default eth0 >/dev/null || warn "could not remove eth0 from the default profile"
	fi
	if [[ $(incus_q profile device get default root pool) == "$POOL" ]]; then
		incus_q profile device remove default root >/dev/null || warn "could not remove root from the default profile"
	fi
	while IFS=, read -r n _; do
		[[ $n == "$BRIDGE" || $n =~ $NAME_RE ]] || continue
		incus_q network delete "$n" >/dev/null || warn "could not delete network $n (still used?)"
	done < <(incus_q network list -f csv -c n || true)
	while IFS=, read -r n _; do
		[[ $n == "$POOL" || $n =~ $NAME_RE ]] || continue
		# Leftover image volumes (images deleted above) would block the pool deletion.
		while IFS=, read -r line; do
			incus_q storage volume delete "$n" "image/$line" >/dev/null || true
		done < <(incus_q storage volume list "$n" -f csv -c tn | sed -n 's/^image,//p' || true)
		if ! incus_q storage delete "$n" >/dev/null; then
			kept=$(incus_q storage volume list "$n" -f csv -c tn | tr '\n' ' ' || true)
			warn "could not delete storage pool $n (still holds: ${kept:-?})"
		fi
	done < <(incus_q storage list -f csv -c n || true)
}

# ---------------------------------------------------------------------------------------------
# The image server (a deno process up.sh started): only the one its pid file names.
if [[ -s $IMAGE_SERVER_DIR/server.pid ]]; then
	stop_pidfile "image server" "$IMAGE_SERVER_DIR/server.pid" deno
fi

if ! have incus; then
	what="Incus not installed, nothing running"
else
	if ((PURGE)); then purge_objects; fi
	pid=$(read_pid "$LAB_STATE/incusd.pid" || true)
	what="incusd was not running"
	if socket_ok; then
		what="incusd stopped"
		# Stops every instance (gracefully, in parallel) and then the daemon.
		timeout 180 incus admin shutdown >/dev/null 2>&1 || warn "incus admin shutdown failed or timed out"
	fi
	if pid1_is_systemd; then
		systemctl stop incus.service incus.socket >/dev/null 2>&1 || true
	fi
	if [[ -n $pid ]]; then
		wait_gone "$pid" 30 || true
		stop_pidfile incusd "$LAB_STATE/incusd.pid" incusd
	fi
	if socket_ok; then warn "incusd still answers on $INCUS_SOCKET (not started by the lab?)"; fi
fi

# lxcfs: only the one up.sh started (under systemd it belongs to lxcfs.service).
if [[ -s $LAB_STATE/lxcfs.pid ]]; then
	stop_pidfile lxcfs "$LAB_STATE/lxcfs.pid" lxcfs
	if mountpoint -q "$LXCFS_DIR" 2>/dev/null && ! pid1_is_systemd; then
		fusermount -u "$LXCFS_DIR" 2>/dev/null || umount -l "$LXCFS_DIR" 2>/dev/null || true
	fi
	what+=", lxcfs stopped"
fi

if ((PURGE)); then
	if getent passwd "$LAB_USER" >/dev/null && [[ $(getent passwd "$LAB_USER" | cut -d: -f5) == "tachikoma lab non-root tests" ]]; then
		userdel "$LAB_USER" 2>/dev/null || warn "could not delete the lab user $LAB_USER"
	fi
	if have nft && nft list table inet incus >/dev/null 2>&1; then
		nft delete table inet incus || warn "could not delete nft table inet incus"
	fi
	if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link delete "$BRIDGE" 2>/dev/null || true; fi
	what+=", lab objects purged (image cache and image server files kept)"
fi

t=$(($(now_ms) - T0))
say "lab down: $what ($((t / 1000)).$(((t % 1000) / 100))s)"
