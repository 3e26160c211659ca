#!/usr/bin/env bash
# tests/lab/stock_image.sh — the lab's stand-in for a public stock image, and what serves it.
#
# Builds (or takes from the cache) a "stock-like" Debian 12 container image the way the public
# `images:debian/12` is: debootstrap minbase with systemd and DHCP networking, and no sshd, no
# sudo, no user. Publishes it, with a second variant that has no apt at all, as a simplestreams
# tree (incus-simplestreams, from incus-extra), and the .deb files tachikoma's bootstrap installs
# (openssh-server, sudo, git, curl, ca-certificates and their dependencies, exactly as Debian's
# mirror had them at build time) as a flat apt repository. The image's apt sources point at that
# repository on the lab bridge, so guests never need Debian's mirror.
#
# The build downloads from Debian's mirror (debootstrap, apt-get --download-only); nothing else
# leaves the machine. Called by up.sh (phase 5); runnable alone as root. Output on stderr.
#
# Usage: bash tests/lab/stock_image.sh
# Environment (up.sh passes them; defaults in brackets):
#   LAB_CACHE [/var/cache/tachikoma-lab]  cache of built images (stock-<recipe>/)
#   SERVER_DIR [/var/lib/tachikoma-lab/image-server]  what the image server serves:
#       simplestreams/ (streams/v1/*.json, images/*) and apt/ (*.deb, Packages, Release)
#   APT_URL [http://10.213.0.1:18080/]  where guests reach apt/ (baked into the image)
#   SUITE [bookworm]  MIRROR [http://deb.debian.org/debian]
set -euo pipefail

LAB_CACHE=${LAB_CACHE:-/var/cache/tachikoma-lab}
SERVER_DIR=${SERVER_DIR:-/var/lib/tachikoma-lab/image-server}
APT_URL=${APT_URL:-http://10.213.0.1:18080/}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# What the public debian/12 container image has that matters here: systemd, DHCP networking, apt.
STOCK_PKGS=systemd-sysv,ifupdown,isc-dhcp-client,netbase,iproute2,dbus,procps
# What tachikoma's bootstrap installs (it runs apt-get install --no-install-recommends).
REPO_PKGS="openssh-server sudo git curl ca-certificates"
STOCK_ALIAS=debian/12
NOAPT_ALIAS=debian/12/noapt

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

say() { printf 'lab: %s\n' "$*" >&2; }
die() {
	printf 'lab: error: %s\n' "$*" >&2
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

[[ $(id -u) -eq 0 ]] || die "stock_image.sh must run as root"
for t in debootstrap mksquashfs incus-simplestreams xz dpkg-deb sha256sum; do
	have "$t" || die "$t is missing (up.sh installs debootstrap, squashfs-tools, incus-extra)"
done
case $(uname -m) in
x86_64 | amd64) DEB_ARCH=amd64 INCUS_ARCH=x86_64 ;;
aarch64 | arm64) DEB_ARCH=arm64 INCUS_ARCH=aarch64 ;;
*) die "unsupported architecture $(uname -m)" ;;
esac
[[ $APT_URL =~ ^http://[0-9.]+:[0-9]+/$ ]] || die "APT_URL must look like http://10.213.0.1:18080/ (got '$APT_URL')"

# run_logged LOG CMD... — CMD's output into LOG; on failure its tail on stderr.
run_logged() {
	local log=$1
	shift
	if ! "$@" >>"$log" 2>&1; then
		printf 'lab: command failed: %s\n' "$*" >&2
		tail -n 20 "$log" | sed 's/^/lab:   | /' >&2
		return 1
	fi
}

unmount_under() {
	local m
	while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
		awk -v w="$1/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r
	)
}

configure_stock() {
	local r=$1
	cat >"$r/etc/network/interfaces" <<-'EOF'
		auto lo
		iface lo inet loopback

		auto eth0
		iface eth0 inet dhcp
	EOF
	: >"$r/etc/resolv.conf"
	echo localhost >"$r/etc/hostname"
	: >"$r/etc/machine-id"
	rm -f "$r/var/lib/dbus/machine-id"
	ln -s /etc/machine-id "$r/var/lib/dbus/machine-id"
	# The lab's repository instead of Debian's mirror (same packages, reachable from the bridge).
	rm -f "$r/etc/apt/sources.list.d/"*
	printf 'deb [trusted=yes] %s ./\n' "$APT_URL" >"$r/etc/apt/sources.list"
	chroot "$r" /usr/bin/apt-get clean
	rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log "$r"/var/log/apt/* \
		"$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old
}

metadata_yaml() {
	local variant=$1 description=$2
	cat <<-EOF
		architecture: $INCUS_ARCH
		creation_date: $CREATED
		properties:
		  architecture: $DEB_ARCH
		  description: "$description"
		  os: debian
		  release: "12"
		  variant: $variant
		templates:
		  /etc/hostname:
		    when: [create, copy]
		    template: hostname.tpl
		  /etc/hosts:
		    when: [create, copy]
		    template: hosts.tpl
	EOF
}

# pack_metadata OUT VARIANT DESCRIPTION — the metadata tarball of a split image.
pack_metadata() {
	local out=$1 d
	d=$(mktemp -d)
	mkdir "$d/templates"
	printf '%s\n' '{{ instance.name }}' >"$d/templates/hostname.tpl"
	printf '127.0.0.1\tlocalhost\n127.0.1.1\t{{ instance.name }}\n::1\tlocalhost ip6-localhost ip6-loopback\n' \
		>"$d/templates/hosts.tpl"
	metadata_yaml "$2" "$3" >"$d/metadata.yaml"
	tar --numeric-owner -C "$d" -cJf "$out" metadata.yaml templates
	rm -rf "$d"
}

build() {
	local out=$1 work log
	log=$LAB_CACHE/stock-build.log
	: >"$log"
	work=$(mktemp -d "$LAB_CACHE/stock-build.XXXXXX")
	# shellcheck disable=SC2064
	trap "unmount_under '$work'; rm -rf --one-file-system '$work'" EXIT
	mkdir -p "$LAB_CACHE/debs" "$work/debs"
	run_logged "$log" debootstrap --variant=minbase --include="$STOCK_PKGS" --arch="$DEB_ARCH" \
		--cache-dir="$LAB_CACHE/debs" "$SUITE" "$work/rootfs" "$MIRROR" || die "debootstrap failed (see $log)"
	unmount_under "$work/rootfs"
	# The bootstrap's packages, resolved against this very rootfs, for the lab's apt repository.
	cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
	run_logged "$log" chroot "$work/rootfs" /usr/bin/apt-get -q update || die "apt-get update in the stock rootfs failed (see $log)"
	# shellcheck disable=SC2086
	run_logged "$log" chroot "$work/rootfs" /usr/bin/apt-get -q -y --no-install-recommends \
		--download-only install $REPO_PKGS || die "downloading $REPO_PKGS failed (see $log)"
	mv "$work/rootfs/var/cache/apt/archives/"*.deb "$work/debs/"
	configure_stock "$work/rootfs" >>"$log" 2>&1 || die "configuring the stock rootfs failed (see $log)"
	CREATED=$(date +%s)
	pack_metadata "$work/stock.meta.tar.xz" stock \
		"tachikoma lab stock-like Debian 12 (minbase + systemd, no sshd, sudo or user)"
	run_logged "$log" mksquashfs "$work/rootfs" "$work/stock.squashfs" -comp zstd -noappend -quiet ||
		die "mksquashfs failed (see $log)"
	# The same system without apt and dpkg: a stock image tachikoma cannot bootstrap.
	rm -f "$work/rootfs/usr/bin/apt" "$work/rootfs/usr/bin/apt-"* "$work/rootfs/usr/bin/dpkg"*
	pack_metadata "$work/noapt.meta.tar.xz" noapt \
		"tachikoma lab stock-like Debian 12 without apt or dpkg"
	run_logged "$log" mksquashfs "$work/rootfs" "$work/noapt.squashfs" -comp zstd -noappend -quiet ||
		die "mksquashfs failed (see $log)"
	rm -rf --one-file-system "$work/rootfs"
	mkdir -p "$out.part"
	mv "$work/stock.meta.tar.xz" "$work/stock.squashfs" "$work/noapt.meta.tar.xz" "$work/noapt.squashfs" \
		"$work/debs" "$out.part/"
	rm -rf "$out"
	mv "$out.part" "$out"
	rm -rf --one-file-system "$work"
	trap - EXIT
}

# Flat apt repository: Packages (control fields + Filename, Size, SHA256) and an unsigned Release.
apt_index() {
	local dir=$1 deb
	(
		cd "$dir"
		for deb in *.deb; do
			dpkg-deb -f "$deb" | sed '/^$/d'
			printf 'Filename: ./%s\nSize: %s\nSHA256: %s\n\n' "$deb" "$(stat -c %s "$deb")" \
				"$(sha256sum "$deb" | cut -d' ' -f1)"
		done >Packages
		{
			printf 'Origin: tachikoma-lab\nLabel: tachikoma-lab\nDate: %s\nSHA256:\n' "$(date -Ru)"
			printf ' %s %s Packages\n' "$(sha256sum Packages | cut -d' ' -f1)" "$(stat -c %s Packages)"
		} >Release
	)
}

publish() {
	local src=$1 recipe=$2 tmp
	tmp=$(mktemp -d "$SERVER_DIR/.publish.XXXXXX")
	mkdir -p "$tmp/simplestreams" "$tmp/apt"
	(
		cd "$tmp/simplestreams"
		incus-simplestreams add --no-default-alias --alias "$STOCK_ALIAS" \
			"$src/stock.meta.tar.xz" "$src/stock.squashfs" >/dev/null
		incus-simplestreams add --no-default-alias --alias "$NOAPT_ALIAS" \
			"$src/noapt.meta.tar.xz" "$src/noapt.squashfs" >/dev/null
	) || die "incus-simplestreams add failed"
	ln "$src/debs/"*.deb "$tmp/apt/" 2>/dev/null || cp "$src/debs/"*.deb "$tmp/apt/"
	apt_index "$tmp/apt"
	echo "$recipe" >"$tmp/recipe"
	chmod -R go+rX "$tmp"
	rm -rf "$SERVER_DIR/simplestreams" "$SERVER_DIR/apt"
	mv "$tmp/simplestreams" "$tmp/apt" "$SERVER_DIR/"
	mv "$tmp/recipe" "$SERVER_DIR/recipe"
	rmdir "$tmp"
}

mkdir -p "$LAB_CACHE" "$SERVER_DIR"
recipe=$({
	echo "suite=$SUITE arch=$DEB_ARCH stock=$STOCK_PKGS repo=$REPO_PKGS apt=$APT_URL"
	declare -f configure_stock metadata_yaml pack_metadata build apt_index
} | sha256sum | cut -c1-16)
cache=$LAB_CACHE/stock-$recipe
t0=$(date +%s)
if [[ ! -s $cache/stock.squashfs || ! -s $cache/noapt.squashfs ]]; then
	say "stock image: building ($recipe) with debootstrap $SUITE (about a minute)..."
	# Work dirs a killed build left behind (up.sh holds the lab lock: no build runs meanwhile).
	for old in "$LAB_CACHE"/stock-build.*/; do
		[[ -d $old ]] || continue
		unmount_under "${old%/}"
		rm -rf --one-file-system "${old%/}"
	done
	build "$cache"
	find "$LAB_CACHE" -maxdepth 1 -name 'stock-*' ! -name "stock-$recipe" ! -name 'stock-build*' \
		-exec rm -rf {} +
	say "stock image: built in $(($(date +%s) - t0)) s, cached in $cache"
fi
if [[ $(cat "$SERVER_DIR/recipe" 2>/dev/null) != "$recipe" ]]; then
	publish "$cache" "$recipe"
	say "stock image: published $STOCK_ALIAS and $NOAPT_ALIAS ($recipe) in $SERVER_DIR"
fi
