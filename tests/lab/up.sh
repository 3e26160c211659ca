#!/usr/bin/env bash
# tests/lab/up.sh — bring up the tachikoma Incus lab: real Linux system containers for tests.
#
# Idempotent. The first run installs Incus, starts it, creates the bridge/pool/profile, builds the
# `tachikoma-test` image and a stock-like image with debootstrap (a few minutes) and starts the
# lab's image server; later runs only check and take seconds. Writes /run/tachikoma-lab/env for
# tests. All output goes to stderr. See tests/lab/README.md.
#
# Network rule: the bridge always gets an explicit subnet (TACHIKOMA_LAB_SUBNET, default
# 10.213.0.1/24; never Incus' automatic subnet picking); besides Debian's mirror (apt, debootstrap)
# the lab talks only to loopback, the Incus unix socket and its own containers. The image server
# listens on loopback (HTTPS, simplestreams) and on the bridge address (HTTP, apt) only.
#
# Usage: bash tests/lab/up.sh            bring the lab up (as root, Linux, Debian/Ubuntu)
#        bash tests/lab/up.sh --daemon-only   only make sure incusd (and lxcfs) run (used by down.sh)
set -euo pipefail

# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
LAB_STATE=/var/lib/tachikoma-lab          # pid files, daemon logs, build logs
LAB_RUN=/run/tachikoma-lab                # env file, lock
LAB_CACHE=${TACHIKOMA_LAB_CACHE:-/var/cache/tachikoma-lab}
DEFAULT_SUBNET=10.213.0.1/24
BRIDGE=tkbr0
POOL=tachikoma
POOL_SIZE=8GiB
IMAGE_ALIAS=tachikoma-test
IMAGE_SERVER_DIR=$LAB_STATE/image-server     # served tree, certificate, daemon files
IMAGE_SERVER_PORT=${TACHIKOMA_LAB_IMAGE_PORT:-18443} # HTTPS on 127.0.0.1: simplestreams
APT_PORT=${TACHIKOMA_LAB_APT_PORT:-18080}    # HTTP on the bridge address: the stock image's apt
STOCK_ALIAS=debian/12                        # the stock-like image on the lab's image server
NOAPT_ALIAS=debian/12/noapt                  # the same without apt and dpkg
LAB_USER=${TACHIKOMA_LAB_USER:-tklab}        # a non-root host user in incus-admin, for tests
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$HERE/../.." && pwd)
INCUS_SOCKET=/var/lib/incus/unix.socket
LXCFS_DIR=/var/lib/lxcfs
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
INCLUDE_PKGS=openssh-server,iproute2,systemd-sysv,sudo,ca-certificates,curl,git,nftables,ifupdown,isc-dhcp-client,netbase,dbus,procps,less,python3-minimal
# Bump to force an image rebuild when something outside the hashed functions changes.
RECIPE_REV=1

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
say() { printf 'lab: %s\n' "$*" >&2; }
warn() { printf 'lab: warning: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }
now_ms() { local t; t=$(date +%s%N); echo $((t / 1000000)); }
secs() { local ms=$1; printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100)); }
since() { secs $(($(now_ms) - $1)); }
have() { command -v "$1" >/dev/null 2>&1; }

# run_quiet LOG CMD... — run CMD with all output in LOG; on failure show the log's tail and fail.
run_quiet() {
	local log=$1
	shift
	if ! "$@" >>"$log" 2>&1; then
		printf 'lab: command failed: %s\n' "$*" >&2
		tail -n 25 "$log" | sed 's/^/lab:   | /' >&2
		printf 'lab:   (full log: %s)\n' "$log" >&2
		return 1
	fi
}

# pid_alive PID — true if PID exists and is not a zombie (daemons re-parented to a non-reaping PID 1
# stay <defunct> for a while, so kill -0 alone is not proof of life).
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

# spawn_detached PIDFILE LOG CMD... — start CMD in its own session, detached from our stdio and from
# every other inherited fd (the lock, a caller's pipes), and record its pid.
spawn_detached() {
	local pidfile=$1 log=$2
	shift 2
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			if ((fd > 2)); then eval "exec ${fd}>&-" 2>/dev/null || true; fi
		done
		exec setsid "$@" </dev/null >>"$log" 2>&1
	) &
	echo $! >"$pidfile"
}

incus_q() { incus "$@" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# Preconditions
# ---------------------------------------------------------------------------------------------
[[ $(uname -s) == Linux ]] || die "the Incus lab needs Linux (this is $(uname -s))"
[[ $(id -u) -eq 0 ]] || die "the Incus lab must be brought up as root (try: sudo bash tests/lab/up.sh)"

MODE=full
case "${1-}" in
"") ;;
--daemon-only) MODE=daemon ;;
-h | --help)
	sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 0
	;;
*) die "unknown argument: $1 (usage: up.sh [--daemon-only])" ;;
esac

case $(uname -m) in
x86_64 | amd64) DEB_ARCH=amd64 INCUS_ARCH=x86_64 ;;
aarch64 | arm64) DEB_ARCH=arm64 INCUS_ARCH=aarch64 ;;
*) die "unsupported architecture $(uname -m) (the lab supports x86_64 and aarch64)" ;;
esac

SUBNET=${TACHIKOMA_LAB_SUBNET:-$DEFAULT_SUBNET}
[[ $SUBNET =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|30)$ ]] ||
	die "TACHIKOMA_LAB_SUBNET must be a gateway address with prefix, e.g. 10.213.0.1/24 (got '$SUBNET')"

mkdir -p "$LAB_STATE" "$LAB_RUN" "$LAB_CACHE"
chmod 0755 "$LAB_RUN"
# One up.sh/down.sh at a time (several test runs may start the lab concurrently).
if [[ ${TACHIKOMA_LAB_LOCKED-} != 1 ]]; then # set by down.sh, which already holds the lock
	exec 9>"$LAB_RUN/lock"
	flock -w 900 9 || die "timed out waiting for another up.sh/down.sh (lock $LAB_RUN/lock)"
fi

T_START=$(now_ms)
declare -A T=()

# ---------------------------------------------------------------------------------------------
# Phase 1: install Incus and the helpers
# ---------------------------------------------------------------------------------------------
find_incusd() {
	local c
	for c in "$(command -v incusd 2>/dev/null || true)" /usr/libexec/incus/incusd /usr/lib/incus/incusd /opt/incus/bin/incusd; do
		if [[ -n $c && -x $c ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

phase_install() {
	local t0 log missing=() helpers=() extra=0 os_id="" os_ver="" os_code="" incus_pkg=() bpo=0
	t0=$(now_ms)
	log=$LAB_STATE/install.log
	{ have incus && find_incusd >/dev/null; } || missing+=(incus)
	if [[ $MODE == full ]]; then
		have debootstrap || helpers+=(debootstrap)
		have mkfs.btrfs || helpers+=(btrfs-progs)
		have zstd || helpers+=(zstd)
		have mksquashfs || helpers+=(squashfs-tools)
		have openssl || helpers+=(openssl)
		have incus-simplestreams || extra=1 # incus-extra: builds the image server's tree
	fi
	have curl || helpers+=(curl)
	if ((${#missing[@]} == 0 && ${#helpers[@]} == 0 && extra == 0)); then
		T[install]=$(($(now_ms) - t0))
		say "[1/8] install: incus $(incus --version 2>/dev/null || echo '?') already installed"
		return 0
	fi
	have apt-get || die "Incus is not installed and this is not a Debian/Ubuntu system: install Incus yourself"
	if [[ -r /etc/os-release ]]; then
		# shellcheck disable=SC1091
		os_id=$(. /etc/os-release && echo "${ID:-}")
		# shellcheck disable=SC1091
		os_ver=$(. /etc/os-release && echo "${VERSION_ID:-}")
		# shellcheck disable=SC1091
		os_code=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
	fi
	: >"$log"
	if [[ $os_id == debian && ($os_ver == 12 || $os_code == bookworm) ]]; then
		bpo=1
	elif ((${#missing[@]})) && ! [[ ($os_id == debian && ${os_ver%%.*} -ge 13) || $os_code == trixie ||
		($os_id == ubuntu && ${os_ver%%.*} -ge 24) ]]; then
		die "don't know how to install Incus on ${os_id:-?} ${os_ver:-?}: install it yourself (Debian 12 backports, Debian 13, Ubuntu 24.04 are supported)"
	fi
	if ((bpo && (${#missing[@]} || extra))); then
		# Incus from backports; never `-t bookworm-backports` (it would upgrade unrelated host
		# packages) and never the full `incus` (qemu, mesa, gtk: ~1 GB).
		if ! grep -Rqs --include='*.list' --include='*.sources' --include=sources.list \
			-E '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
			cat >/etc/apt/sources.list.d/tachikoma-lab-backports.sources <<-'EOF'
				Types: deb
				URIs: http://deb.debian.org/debian
				Suites: bookworm-backports
				Components: main
				Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
			EOF
		fi
	fi
	if ((${#missing[@]})); then
		if ((bpo)); then incus_pkg=(incus-base/bookworm-backports); else incus_pkg=(incus); fi
	fi
	if ((extra)); then
		if ((bpo)); then incus_pkg+=(incus-extra/bookworm-backports); else incus_pkg+=(incus-extra); fi
	fi
	say "[1/8] install: installing ${incus_pkg[*]:+${incus_pkg[*]} }${helpers[*]} (about a minute)..."
	run_quiet "$log" apt-get -q update || die "apt-get update failed (see $log)"
	if ((${#incus_pkg[@]})) && [[ ${incus_pkg[0]} == incus ]] && apt-cache show incus-base >/dev/null 2>&1; then
		incus_pkg[0]=incus-base # the container-only split package, if this archive has it
	fi
	run_quiet "$log" apt-get -q -y -o Dpkg::Use-Pty=0 -o Dpkg::Options::=--force-confold install \
		"${incus_pkg[@]}" "${helpers[@]}" || die "installing ${incus_pkg[*]} ${helpers[*]} failed (see $log)"
	{ have incus && find_incusd >/dev/null; } || die "Incus was installed but incus/incusd were not found (see $log)"
	if [[ $MODE == full ]]; then
		have incus-simplestreams || die "incus-simplestreams (package incus-extra) is missing after the install (see $log)"
	fi
	T[install]=$(($(now_ms) - t0))
	say "[1/8] install: incus $(incus --version 2>/dev/null) installed ($(secs "${T[install]}"))"
}

# ---------------------------------------------------------------------------------------------
# Phase 2: daemons (lxcfs optional, incusd) — started by hand when PID 1 isn't systemd
# ---------------------------------------------------------------------------------------------
start_lxcfs() {
	local pid deadline
	have lxcfs || return 0
	if mountpoint -q "$LXCFS_DIR" 2>/dev/null; then return 0; fi
	pid=$(read_pid "$LAB_STATE/lxcfs.pid" || true)
	if [[ -n $pid ]] && pid_alive "$pid"; then kill "$pid" 2>/dev/null || true; fi
	# A FUSE mount whose lxcfs died with an earlier session stays in the mount table but answers
	# "Transport endpoint is not connected": detach it before mounting again.
	if awk -v d="$LXCFS_DIR" '$2 == d { found = 1 } END { exit !found }' /proc/self/mounts; then
		umount -l "$LXCFS_DIR" 2>/dev/null || fusermount -u -z "$LXCFS_DIR" 2>/dev/null ||
			warn "could not detach the stale lxcfs mount on $LXCFS_DIR"
	fi
	mkdir -p "$LXCFS_DIR"
	spawn_detached "$LAB_STATE/lxcfs.pid" "$LAB_STATE/lxcfs.log" lxcfs "$LXCFS_DIR"
	deadline=$(($(now_ms) + 5000))
	until mountpoint -q "$LXCFS_DIR" 2>/dev/null; do
		if (($(now_ms) > deadline)); then
			warn "lxcfs did not come up (see $LAB_STATE/lxcfs.log); containers will see host /proc values"
			return 0
		fi
		sleep 0.05
	done
}

# Environment of the packaged unit (Environment= and EnvironmentFile=, e.g. PATH with
# /usr/libexec/incus), so a hand-started incusd sees what systemd would give it.
unit_env() {
	local f unit="" line
	for f in /usr/lib/systemd/system/incus.service /lib/systemd/system/incus.service; do
		if [[ -r $f ]]; then unit=$f && break; fi
	done
	[[ -n $unit ]] || return 0
	while IFS= read -r line; do
		case $line in
		Environment=*) printf '%s\n' "${line#Environment=}" | tr -d '"' ;;
		EnvironmentFile=*)
			f=${line#EnvironmentFile=}
			f=${f#-}
			if [[ -r $f ]]; then grep -E '^[A-Za-z_][A-Za-z0-9_]*=' "$f" | tr -d '"' || true; fi
			;;
		esac
	done <"$unit"
}

phase_daemon() {
	local t0 incusd pid envs=() what
	t0=$(now_ms)
	if socket_ok; then
		T[daemon]=$(($(now_ms) - t0))
		say "[2/8] daemon: incusd already running"
		return 0
	fi
	incusd=$(find_incusd) || die "incusd not found"
	if pid1_is_systemd; then
		systemctl start lxcfs.service >/dev/null 2>&1 || true
		systemctl start incus.socket incus.service || die "systemctl start incus failed"
		what="started incus.service"
	else
		start_lxcfs
		pid=$(read_pid "$LAB_STATE/incusd.pid" || true)
		if [[ -n $pid ]] && pid_alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == incusd ]]; then
			what="incusd (pid $pid) was starting"
		else
			mapfile -t envs < <(unit_env)
			# Keep the daemon's own HTTP(S) off the network: it fetches instance types from
			# images.linuxcontainers.org at start and daily. Its proxy code never proxies loopback;
			# NO_PROXY keeps the lab subnet direct.
			envs+=("HTTPS_PROXY=http://127.0.0.1:9" "HTTP_PROXY=http://127.0.0.1:9"
				"NO_PROXY=localhost,127.0.0.1,::1,${SUBNET}" "https_proxy=" "http_proxy=" "no_proxy=")
			printf '\n==== %s starting %s\n' "$(date -Is)" "$incusd" >>"$LAB_STATE/incusd.log"
			spawn_detached "$LAB_STATE/incusd.pid" "$LAB_STATE/incusd.log" \
				env "${envs[@]}" "$incusd" --group incus-admin
			pid=$(read_pid "$LAB_STATE/incusd.pid")
			what="started incusd (pid $pid, log $LAB_STATE/incusd.log)"
		fi
	fi
	if ! "$incusd" waitready --timeout=120 >/dev/null 2>&1 || ! socket_ok; then
		tail -n 15 "$LAB_STATE/incusd.log" 2>/dev/null | sed 's/^/lab:   | /' >&2 || true
		die "incusd did not become ready within 120 s (log: $LAB_STATE/incusd.log)"
	fi
	T[daemon]=$(($(now_ms) - t0))
	say "[2/8] daemon: $what, ready in $(secs "${T[daemon]}")"
}

# ---------------------------------------------------------------------------------------------
# Phase 3: bridge, storage pool, default profile (preseed, explicit subnet only)
# ---------------------------------------------------------------------------------------------
preseed() { incus admin init --preseed 2>&1; }

phase_init() {
	local t0 did=() cur out driver=btrfs
	t0=$(now_ms)
	if ! incus_q network show "$BRIDGE" >/dev/null; then
		out=$(preseed <<-EOF
			networks:
			- name: $BRIDGE
			  type: bridge
			  description: tachikoma test lab bridge
			  config:
			    ipv4.address: $SUBNET
			    ipv4.nat: "true"
			    ipv6.address: none
		EOF
		) || die "creating bridge $BRIDGE ($SUBNET) failed: $(echo "$out" | tail -n 1)"
		did+=("bridge $BRIDGE $SUBNET")
	else
		cur=$(incus_q network get "$BRIDGE" ipv4.address)
		if [[ $cur != "$SUBNET" ]]; then
			if [[ -n ${TACHIKOMA_LAB_SUBNET-} ]]; then
				incus network set "$BRIDGE" ipv4.address="$SUBNET" ipv4.nat=true ipv6.address=none >/dev/null ||
					die "could not change $BRIDGE to $SUBNET"
				did+=("bridge $BRIDGE $cur -> $SUBNET")
			else
				SUBNET=$cur # keep what an earlier TACHIKOMA_LAB_SUBNET chose
			fi
		fi
	fi
	if ! incus_q storage show "$POOL" >/dev/null; then
		if ! have mkfs.btrfs; then
			out="mkfs.btrfs not installed"
		else
			out=$(preseed <<-EOF
				storage_pools:
				- name: $POOL
				  driver: btrfs
				  description: tachikoma test lab pool (btrfs on a loop file)
				  config:
				    size: $POOL_SIZE
			EOF
			) && out=""
		fi
		if [[ -n $out ]]; then
			warn "btrfs pool failed ($(echo "$out" | tail -n 1)); falling back to a slower 'dir' pool"
			incus_q storage delete "$POOL" >/dev/null || true
			driver=dir
			out=$(preseed <<-EOF
				storage_pools:
				- name: $POOL
				  driver: dir
				  description: tachikoma test lab pool (dir fallback)
			EOF
			) || die "creating storage pool $POOL failed: $(echo "$out" | tail -n 1)"
		fi
		did+=("pool $POOL ($driver)")
	fi
	if [[ $(incus_q profile device get default root pool) != "$POOL" ||
		$(incus_q profile device get default eth0 network) != "$BRIDGE" ]]; then
		out=$(preseed <<-EOF
			profiles:
			- name: default
			  description: Default Incus profile (tachikoma lab)
			  config: {}
			  devices:
			    root:
			      type: disk
			      path: /
			      pool: $POOL
			    eth0:
			      type: nic
			      name: eth0
			      network: $BRIDGE
		EOF
		) || die "updating the default profile failed: $(echo "$out" | tail -n 1)"
		did+=("default profile")
	fi
	T[init]=$(($(now_ms) - t0))
	if ((${#did[@]})); then
		local joined
		joined=$(printf '%s, ' "${did[@]}")
		say "[3/8] init: created ${joined%, } ($(secs "${T[init]}"))"
	else
		say "[3/8] init: bridge $BRIDGE ($SUBNET), pool $POOL ($(incus_q storage get "$POOL" --property driver 2>/dev/null || incus_q storage list -f csv -c nD | sed -n "s/^$POOL,//p")) present"
	fi
}

# ---------------------------------------------------------------------------------------------
# Phase 4: the tachikoma-test image. Everything that shapes the image lives in the functions below
# (plus SUITE, DEB_ARCH, INCLUDE_PKGS, RECIPE_REV): their text is hashed to name the cached tarball.
# ---------------------------------------------------------------------------------------------

# The in-guest `mount` shim that makes `mount -t virtiofs TAG DIR` behave like under tart.
virtiofs_shim() {
	cat <<-'SHIM'
		#!/bin/bash
		# tachikoma test lab: make tart's `mount -t virtiofs TAG DIR` work inside an Incus container.
		# The fake `tart` delivers `--dir` shares as Incus disk devices under /run/tart-virtiofs/TAG
		# (one subdirectory per named share, or the share itself for a single unnamed share); this
		# bind-mounts that tree onto DIR. Any other invocation runs the real mount unchanged.
		# Installed as /usr/local/sbin/mount (first in root's and sudo's PATH) and as the
		# /usr/sbin/mount.virtiofs helper (so fstab entries and /usr/bin/mount -t virtiofs work too).
		REAL=/usr/bin/mount
		SHARES=/run/tart-virtiofs
		type="" opts="" pos=() i=0 args=("$@")
		[ "${0##*/}" = mount.virtiofs ] && type=virtiofs
		while [ "$i" -lt "${#args[@]}" ]; do
		    a=${args[$i]}
		    case $a in
		        -t | --types) i=$((i + 1)); type=${args[$i]-} ;;
		        --types=*) type=${a#--types=} ;;
		        -t*) type=${a#-t} ;;
		        -o | --options) i=$((i + 1)); opts=${opts:+$opts,}${args[$i]-} ;;
		        --options=*) opts=${opts:+$opts,}${a#--options=} ;;
		        -o*) opts=${opts:+$opts,}${a#-o} ;;
		        -N | --namespace) i=$((i + 1)) ;;
		        --) pos+=("${args[@]:$((i + 1))}"); break ;;
		        -*) ;;
		        *) pos+=("$a") ;;
		    esac
		    i=$((i + 1))
		done
		if [ "$type" != virtiofs ] || [ "${#pos[@]}" -ne 2 ]; then
		    [ "${0##*/}" = mount.virtiofs ] && { echo "mount.virtiofs: usage: mount -t virtiofs TAG DIR" >&2; exit 1; }
		    exec "$REAL" "$@"
		fi
		tag=${pos[0]} dir=${pos[1]}
		case $tag in
		    "" | */* | . | ..) echo "mount: $dir: invalid virtiofs tag '$tag'" >&2; exit 32 ;;
		esac
		src=$SHARES/$tag
		if [ ! -d "$src" ]; then
		    echo "mount: $dir: virtiofs tag '$tag' is not shared with this guest (tachikoma lab shim: no $src)" >&2
		    exit 32
		fi
		mkdir -p "$dir" || { echo "mount: $dir: cannot create mount point" >&2; exit 32; }
		"$REAL" --rbind "$src" "$dir" || exit 32
		case ",$opts," in
		    *,ro,*)
		        findmnt -R -n -r -o TARGET "$dir" | while read -r t; do
		            "$REAL" -o remount,bind,ro "$(printf '%b' "$t")" || exit 32
		        done || exit 32 ;;
		esac
		exit 0
	SHIM
}

# PID 1 wrapper: Incus mounts disk devices before init runs, then systemd mounts a fresh tmpfs over
# /run and hides every device under /run, including the fake tart's /run/tart-virtiofs/TAG shares.
# When such devices exist, build that tmpfs ourselves with the shares inside and move it to /run;
# systemd then keeps the existing /run. Devices hot-plugged after boot need none of this.
init_wrapper() {
	cat <<-'INIT'
		#!/bin/sh
		# /sbin/init of the tachikoma test lab image (see virtiofs shim in /usr/local/sbin/mount).
		# Keeps Incus disk devices under /run/tart-virtiofs visible, then hands over to systemd.
		if grep -q ' /run/tart-virtiofs' /proc/self/mountinfo 2>/dev/null && ! /usr/bin/mountpoint -q /run; then
		    p=/dev/.tachikoma-init
		    if mkdir -p "$p" && /usr/bin/mount -n -t tmpfs -o mode=0700,size=64k tmpfs "$p" &&
		        /usr/bin/mount -n --make-private "$p" && mkdir "$p/run" &&
		        /usr/bin/mount -n -t tmpfs -o mode=0755,nosuid,nodev,size=20%,nr_inodes=819200 tmpfs "$p/run" &&
		        mkdir "$p/run/tart-virtiofs" && /usr/bin/mount -n --rbind /run/tart-virtiofs "$p/run/tart-virtiofs" &&
		        /usr/bin/mount -n --move "$p/run" /run; then
		        :
		    else
		        echo "tachikoma-init: could not keep /run/tart-virtiofs visible; shares will be missing" >&2
		    fi
		    /usr/bin/umount -n -R "$p" 2>/dev/null
		    rmdir "$p" 2>/dev/null
		fi
		exec /lib/systemd/systemd "$@"
	INIT
}

configure_rootfs() {
	local r=$1
	# Network: eth0 on DHCP through ifupdown + isc-dhcp-client.
	cat >"$r/etc/network/interfaces" <<-'EOF'
		# tachikoma test lab
		auto lo
		iface lo inet loopback

		auto eth0
		iface eth0 inet dhcp
	EOF
	: >"$r/etc/resolv.conf"
	echo localhost >"$r/etc/hostname"
	# Identity generated at first boot: machine-id and ssh host keys.
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id"
	ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
	rm -f "$r"/etc/ssh/ssh_host_*
	mkdir -p "$r/etc/systemd/system/ssh.service.d"
	# The packaged unit runs `sshd -t` first, which fails without host keys: generate them before it.
	cat >"$r/etc/systemd/system/ssh.service.d/tachikoma-host-keys.conf" <<-'EOF'
		[Service]
		ExecStartPre=
		ExecStartPre=/usr/bin/ssh-keygen -A
		ExecStartPre=/usr/sbin/sshd -t
	EOF
	cat >"$r/etc/ssh/sshd_config.d/tachikoma.conf" <<-'EOF'
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
	EOF
	# User admin (uid 1000) with passwordless sudo, like Tart's images; key-only SSH.
	chroot "$r" /usr/sbin/useradd --create-home --uid 1000 --user-group --groups sudo \
		--shell /bin/bash --comment admin admin
	chroot "$r" /usr/sbin/usermod --password '*' admin
	install -d -m 0700 -o 1000 -g 1000 "$r/home/admin/.ssh"
	install -m 0600 -o 1000 -g 1000 /dev/null "$r/home/admin/.ssh/authorized_keys"
	echo 'admin ALL=(ALL:ALL) NOPASSWD:ALL' >"$r/etc/sudoers.d/admin"
	chmod 0440 "$r/etc/sudoers.d/admin"
	chroot "$r" /usr/sbin/visudo -cq
	# virtiofs mount shim.
	mkdir -p "$r/usr/local/sbin"
	virtiofs_shim >"$r/usr/local/sbin/mount"
	chmod 0755 "$r/usr/local/sbin/mount"
	ln -sf /usr/local/sbin/mount "$r/usr/sbin/mount.virtiofs"
	mkdir -p "$r/run/tart-virtiofs"
	init_wrapper >"$r/usr/local/sbin/tachikoma-init"
	chmod 0755 "$r/usr/local/sbin/tachikoma-init"
	chroot "$r" /usr/bin/dpkg-divert --quiet --local --rename --divert /sbin/init.systemd-sysv --add /sbin/init
	ln -s /usr/local/sbin/tachikoma-init "$r/sbin/init"
	# Slim down.
	chroot "$r" /usr/bin/apt-get clean
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log "$r"/var/log/apt/* \
		"$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old
}

write_metadata() {
	local d=$1 recipe=$2
	mkdir -p "$d/templates"
	printf '%s\n' '{{ instance.name }}' >"$d/templates/hostname.tpl"
	cat >"$d/templates/hosts.tpl" <<-'EOF'
		127.0.0.1	localhost
		127.0.1.1	{{ instance.name }}
		::1	localhost ip6-localhost ip6-loopback
		ff02::1	ip6-allnodes
		ff02::2	ip6-allrouters
	EOF
	cat >"$d/metadata.yaml" <<-EOF
		architecture: $INCUS_ARCH
		creation_date: $(date +%s)
		properties:
		  architecture: $INCUS_ARCH
		  description: tachikoma test image (Debian $SUITE minbase, sshd, admin with sudo)
		  os: debian
		  release: $SUITE
		  variant: tachikoma-test
		  tachikoma.recipe: "$recipe"
		templates:
		  /etc/hostname:
		    when:
		    - create
		    - copy
		    template: hostname.tpl
		  /etc/hosts:
		    when:
		    - create
		    - copy
		    template: hosts.tpl
	EOF
}

recipe_hash() {
	{
		echo "rev=$RECIPE_REV suite=$SUITE arch=$DEB_ARCH include=$INCLUDE_PKGS"
		declare -f virtiofs_shim init_wrapper configure_rootfs write_metadata build_image
	} | sha256sum | cut -c1-16
}

cleanup_build() {
	local work=$1 m
	[[ -n $work && -d $work ]] || return 0
	# Unmount anything debootstrap may have left mounted (deepest first) before deleting.
	while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
		awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r
	)
	rm -rf --one-file-system "$work"
}

build_image() {
	local out=$1 recipe=$2 work log
	log=$LAB_STATE/image-build.log
	: >"$log"
	work=$(mktemp -d "$LAB_CACHE/build.XXXXXX")
	# shellcheck disable=SC2064
	trap "cleanup_build '$work'" EXIT
	mkdir -p "$LAB_CACHE/debs"
	run_quiet "$log" debootstrap --variant=minbase --include="$INCLUDE_PKGS" --arch="$DEB_ARCH" \
		--cache-dir="$LAB_CACHE/debs" "$SUITE" "$work/rootfs" "$MIRROR" ||
		die "debootstrap failed (see $log)"
	configure_rootfs "$work/rootfs" >>"$log" 2>&1 || die "configuring the image rootfs failed (see $log)"
	write_metadata "$work" "$recipe"
	tar --numeric-owner --xattrs --xattrs-include='*' -C "$work" -cf - metadata.yaml templates rootfs |
		zstd -q -3 -T0 -o "$out.part" || die "packing the image failed"
	mv -f "$out.part" "$out"
	cleanup_build "$work"
	trap - EXIT
}

phase_image() {
	local t0 recipe tarball fp cur built="" imported=""
	t0=$(now_ms)
	recipe=$(recipe_hash)
	tarball=$LAB_CACHE/$IMAGE_ALIAS-$recipe.tar.zst
	if [[ ! -s $tarball ]]; then
		say "[4/8] image: building $IMAGE_ALIAS ($recipe) with debootstrap $SUITE (about a minute)..."
		rm -f "$tarball.sha256"
		build_image "$tarball" "$recipe"
		built=" built in $(since "$t0"),"
		# Only the current recipe's tarball is worth keeping.
		find "$LAB_CACHE" -maxdepth 1 -name "$IMAGE_ALIAS-*.tar.zst*" ! -name "$IMAGE_ALIAS-$recipe.tar.zst*" -delete
	fi
	if [[ ! -s $tarball.sha256 ]]; then
		sha256sum "$tarball" | cut -d' ' -f1 >"$tarball.sha256"
	fi
	fp=$(cat "$tarball.sha256")
	cur=$(incus_q query "/1.0/images/aliases/$IMAGE_ALIAS" | sed -n 's/.*"target": *"\([0-9a-f]*\)".*/\1/p' || true)
	if [[ $cur != "$fp" ]]; then
		if ! incus_q image show "$fp" >/dev/null; then
			incus image import "$tarball" --quiet >/dev/null || die "incus image import $tarball failed"
		fi
		if [[ -n $cur ]]; then incus image alias delete "$IMAGE_ALIAS" >/dev/null; fi
		incus image alias create "$IMAGE_ALIAS" "$fp" --description "tachikoma test image, recipe $recipe" >/dev/null ||
			die "incus image alias create $IMAGE_ALIAS failed"
		if [[ -n $cur ]]; then incus_q image delete "$cur" >/dev/null || warn "could not delete the old image $cur"; fi
		imported=" imported ${fp:0:12}${cur:+ (replaced ${cur:0:12})},"
	fi
	T[image]=$(($(now_ms) - t0))
	if [[ -n $built || -n $imported ]]; then
		say "[4/8] image: $IMAGE_ALIAS$built$imported $(du -h "$tarball" | cut -f1) cached at $tarball ($(secs "${T[image]}"))"
	else
		say "[4/8] image: $IMAGE_ALIAS ${fp:0:12} up to date (recipe $recipe)"
	fi
}

# ---------------------------------------------------------------------------------------------
# Phase 5: the stock-like image and the apt repository its guests use (tests/lab/stock_image.sh)
# ---------------------------------------------------------------------------------------------
phase_stock() {
	local t0 out
	t0=$(now_ms)
	mkdir -p "$IMAGE_SERVER_DIR"
	out=$(LAB_CACHE=$LAB_CACHE SERVER_DIR=$IMAGE_SERVER_DIR SUITE=$SUITE MIRROR=$MIRROR \
		APT_URL="http://${SUBNET%/*}:$APT_PORT/" bash "$HERE/stock_image.sh" 2>&1) || {
		printf '%s\n' "$out" >&2
		die "building the stock-like image failed"
	}
	T[stock]=$(($(now_ms) - t0))
	if [[ -n $out ]]; then
		printf '%s\n' "$out" | sed 's/^lab: stock image: /lab: [5\/8] stock image: /' >&2
	else
		say "[5/8] stock image: $STOCK_ALIAS and $NOAPT_ALIAS up to date ($(cat "$IMAGE_SERVER_DIR/recipe"))"
	fi
}

# ---------------------------------------------------------------------------------------------
# Phase 6: the image server (tests/lab/image_server.ts on deno), its certificate, the lab user
# ---------------------------------------------------------------------------------------------
find_deno() {
	local c
	for c in "${DENO:-}" "$(command -v deno 2>/dev/null || true)" "$REPO_ROOT"/.cache/deno-*/node_modules/.bin/deno; do
		if [[ -n $c && -x $c ]]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

server_ok() {
	curl -fsS --max-time 3 --noproxy '*' --cacert "$IMAGE_SERVER_DIR/cert.pem" \
		"https://127.0.0.1:$IMAGE_SERVER_PORT/streams/v1/index.json" >/dev/null 2>&1 &&
		curl -fsS --max-time 3 --noproxy '*' "http://${SUBNET%/*}:$APT_PORT/Release" >/dev/null 2>&1
}

ensure_lab_user() {
	if ! getent passwd "$LAB_USER" >/dev/null; then
		useradd --user-group --no-create-home --home-dir /nonexistent --shell /bin/bash \
			--comment "tachikoma lab non-root tests" "$LAB_USER" || die "useradd $LAB_USER failed"
	fi
	if ! id -nG "$LAB_USER" | tr ' ' '\n' | grep -qx incus-admin; then
		usermod -aG incus-admin "$LAB_USER" || die "could not add $LAB_USER to incus-admin"
	fi
}

phase_server() {
	local t0 d=$IMAGE_SERVER_DIR deno pid args sum what="up"
	t0=$(now_ms)
	ensure_lab_user
	if [[ ! -s $d/cert.pem || ! -s $d/key.pem ]]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
			-subj "/CN=tachikoma lab image server" -addext "subjectAltName=IP:127.0.0.1" \
			-keyout "$d/key.pem" -out "$d/cert.pem" >/dev/null 2>&1 || die "openssl could not make the image server's certificate"
		chmod 0600 "$d/key.pem"
		chmod 0644 "$d/cert.pem"
		what="new certificate"
	fi
	args="--https 127.0.0.1:$IMAGE_SERVER_PORT=$d/simplestreams --cert $d/cert.pem --key $d/key.pem --http ${SUBNET%/*}:$APT_PORT=$d/apt"
	sum=$({ cat "$HERE/image_server.ts"; echo "$args"; } | sha256sum | cut -c1-16)
	pid=$(read_pid "$d/server.pid" || true)
	if [[ -n $pid ]] && pid_alive "$pid" && [[ $(cat "$d/server.sum" 2>/dev/null) == "$sum" ]] && server_ok; then
		T[server]=$(($(now_ms) - t0))
		say "[6/8] image server: pid $pid on https://127.0.0.1:$IMAGE_SERVER_PORT (apt on ${SUBNET%/*}:$APT_PORT)"
		return 0
	fi
	if [[ -n $pid ]] && pid_alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == deno ]]; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
		what="restarted"
	fi
	deno=$(find_deno) || die "the image server needs deno: run 'make deps' (or set DENO=/path/to/deno)"
	install -m 0644 "$HERE/image_server.ts" "$d/image_server.ts"
	printf '\n==== %s starting the image server\n' "$(date -Is)" >>"$d/server.log"
	# shellcheck disable=SC2086
	spawn_detached "$d/server.pid" "$d/server.log" env DENO_NO_UPDATE_CHECK=1 "$deno" run --quiet \
		--allow-net="127.0.0.1:$IMAGE_SERVER_PORT,${SUBNET%/*}:$APT_PORT" --allow-read="$d" \
		"$d/image_server.ts" $args
	echo "$sum" >"$d/server.sum"
	local deadline=$(($(now_ms) + 15000))
	until server_ok; do
		if (($(now_ms) > deadline)); then
			tail -n 10 "$d/server.log" | sed 's/^/lab:   | /' >&2
			die "the image server did not answer within 15 s (log: $d/server.log)"
		fi
		sleep 0.1
	done
	T[server]=$(($(now_ms) - t0))
	say "[6/8] image server: $what, pid $(read_pid "$d/server.pid") on https://127.0.0.1:$IMAGE_SERVER_PORT (apt on ${SUBNET%/*}:$APT_PORT) ($(secs "${T[server]}"))"
}

# ---------------------------------------------------------------------------------------------
# Phase 7: verify with a throwaway container
# ---------------------------------------------------------------------------------------------
VERIFY_NAME=""
verify_cleanup() { [[ -z $VERIFY_NAME ]] || incus_q delete --force "$VERIFY_NAME" >/dev/null || true; }

phase_verify() {
	local t0 t_launch t_ip t_boot ip="" deadline state banner="" admin_uid
	t0=$(now_ms)
	if [[ ${TACHIKOMA_LAB_VERIFY:-1} == 0 ]]; then
		say "[7/8] verify: skipped (TACHIKOMA_LAB_VERIFY=0)"
		return 0
	fi
	VERIFY_NAME=tkt-labcheck-$$
	trap verify_cleanup EXIT
	incus launch "$IMAGE_ALIAS" "$VERIFY_NAME" --quiet >/dev/null || die "verify: incus launch $IMAGE_ALIAS failed"
	t_launch=$(($(now_ms) - t0))
	deadline=$(($(now_ms) + 60000))
	while :; do
		ip=$(incus_q list "^${VERIFY_NAME}\$" -c 4 -f csv | grep -oE "([0-9]{1,3}\.){3}[0-9]{1,3} \(eth0\)" | head -n 1 | cut -d' ' -f1 || true)
		[[ -z $ip ]] || break
		(($(now_ms) < deadline)) || die "verify: $VERIFY_NAME got no IPv4 on $BRIDGE within 60 s"
		sleep 0.1
	done
	t_ip=$(($(now_ms) - t0))
	state=$(incus_q exec "$VERIFY_NAME" -- timeout 60 systemctl is-system-running --wait || true)
	if [[ $state != running ]]; then
		incus_q exec "$VERIFY_NAME" -- systemctl is-active --quiet ssh.service ||
			die "verify: system is '$state' and ssh.service is not active in $VERIFY_NAME"
		warn "verify: system state is '$state' (sshd active); failed units: $(incus_q exec "$VERIFY_NAME" -- systemctl --failed --plain --no-legend | cut -d' ' -f1 | tr '\n' ' ')"
	fi
	t_boot=$(($(now_ms) - t0))
	admin_uid=$(incus_q exec "$VERIFY_NAME" -- id -u admin || true)
	[[ $admin_uid == 1000 ]] || die "verify: user admin missing or not uid 1000 in $VERIFY_NAME"
	incus_q exec "$VERIFY_NAME" -- runuser -u admin -- sudo -n true || die "verify: admin has no passwordless sudo"
	# sshd answers on the bridge (traffic only to the lab's own container).
	# shellcheck disable=SC2016
	banner=$(timeout 5 bash -c 'exec 3<>"/dev/tcp/$1/22" && head -c 8 <&3' _ "$ip" 2>/dev/null || true)
	[[ $banner == SSH-2.0* ]] || die "verify: no SSH banner from $VERIFY_NAME at $ip:22"
	incus delete --force "$VERIFY_NAME" >/dev/null || warn "verify: could not delete $VERIFY_NAME"
	VERIFY_NAME=""
	trap - EXIT
	T[verify]=$(($(now_ms) - t0))
	say "[7/8] verify: launch $(secs "$t_launch"), IPv4 $ip at $(secs "$t_ip"), systemd '$state' at $(secs "$t_boot"), admin+sudo+sshd ok ($(secs "${T[verify]}") with delete)"
}

# ---------------------------------------------------------------------------------------------
# Phase 8: env file for tests
# ---------------------------------------------------------------------------------------------
phase_env() {
	local f=$LAB_RUN/env
	cat >"$f.tmp" <<-EOF
		TACHIKOMA_LAB_SOCKET=$INCUS_SOCKET
		TACHIKOMA_LAB_IMAGE=$IMAGE_ALIAS
		TACHIKOMA_LAB_BRIDGE=$BRIDGE
		TACHIKOMA_LAB_GATEWAY=${SUBNET%/*}
		TACHIKOMA_LAB_POOL=$POOL
		TACHIKOMA_LAB_SUBNET=$SUBNET
		TACHIKOMA_LAB_IMAGE_SERVER=https://127.0.0.1:$IMAGE_SERVER_PORT
		TACHIKOMA_LAB_IMAGE_SERVER_CERT=$IMAGE_SERVER_DIR/cert.pem
		TACHIKOMA_LAB_STOCK_IMAGE=$STOCK_ALIAS
		TACHIKOMA_LAB_NOAPT_IMAGE=$NOAPT_ALIAS
		TACHIKOMA_LAB_APT=${SUBNET%/*}:$APT_PORT
		TACHIKOMA_LAB_USER=$LAB_USER
	EOF
	chmod 0644 "$f.tmp"
	mv -f "$f.tmp" "$f"
	say "[8/8] env: wrote $f"
}

# ---------------------------------------------------------------------------------------------
# Until this run proves the lab works, tests must not believe an env file left by an earlier one.
if [[ $MODE == full ]]; then rm -f "$LAB_RUN/env"; fi
phase_install
phase_daemon
if [[ $MODE == daemon ]]; then exit 0; fi
phase_init
phase_image
phase_stock
phase_server
phase_verify
phase_env
say "lab up in $(since "$T_START") (install $(secs "${T[install]:-0}"), daemon $(secs "${T[daemon]:-0}"), init $(secs "${T[init]:-0}"), image $(secs "${T[image]:-0}"), stock $(secs "${T[stock]:-0}"), server $(secs "${T[server]:-0}"), verify $(secs "${T[verify]:-0}"))"
