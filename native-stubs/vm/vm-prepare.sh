#!/usr/bin/env bash
# vm-prepare.sh [-q|--quiet] — build, once, what vm-run.sh boots: Debian's 6.12 kernel (bzImage) and
# an initramfs with static busybox, guest-init.sh as /init and the modules the tests need, with
# cachefiles.ko/erofs.ko rebuilt with the on-demand (fscache mode) options by ../kmod/Makefile.
#
# Idempotent: every stage writes a stamp last and is skipped while its stamp matches, so a re-run
# is a fast no-op and an interrupted run resumes. The module build's stamp and the initramfs's file
# name hash their inputs (kmod glue, guest-init.sh, this script, module list, busybox), so editing any
# of them rebuilds just what depends on it, and checkouts at different versions share one cache.
#
# Environment:
#   LAZYPULL_VM_CACHE        cache root (default /var/cache/lazypull-vm); results in <root>/<pkg-version>/
#   LAZYPULL_KVER_PKG        Debian version of linux-source-6.12 to use (default: apt's candidate)
#   LAZYPULL_VM_EXTRA_MODULES  more module names for the initramfs (space separated)
# Output: progress on stderr; on stdout KVER_PKG=, KREL=, BZIMAGE=, INITRAMFS= and last VM_DIR=.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KMOD_DIR=$(cd "$HERE/../kmod" && pwd)
GUEST_INIT=$HERE/guest-init.sh
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")
CACHE_ROOT=${LAZYPULL_VM_CACHE:-/var/cache/lazypull-vm}
SRC_PKG=linux-source-6.12
FLAVOUR=amd64
# Modules wanted in the guest; their dependencies (and soft dependencies such as crc32c) are added
# from modules.dep. ext4+virtio_blk: scratch disk; 9p+9pnet_virtio: host root; cachefiles+erofs:
# the on-demand path under test; nbd, loop: block-device paths; overlay: container-style rootfs
# over an EROFS mount; fuse is built in on Debian (then it is skipped).
GUEST_MODULES=(ext4 virtio_blk 9p 9pnet_virtio cachefiles erofs nbd loop fuse overlay)
read -r -a EXTRA_MODULES <<<"${LAZYPULL_VM_EXTRA_MODULES:-}"
GUEST_MODULES+=("${EXTRA_MODULES[@]}")
HOST_PKGS=(qemu-system-x86 busybox-static cpio kmod xz-utils dwarves bc gcc make libc6-dev e2fsprogs erofs-utils)

QUIET=0
case "${1:-}" in
-q | --quiet) QUIET=1 ;;
"") ;;
-h | --help)
	sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"
	exit 0
	;;
*)
	echo "usage: $0 [-q|--quiet]" >&2
	exit 2
	;;
esac

export DEBIAN_FRONTEND=noninteractive
T0=${EPOCHREALTIME/./}
# say: always shown (real work, errors); info: hidden with --quiet (no-op stages).
say() { printf 'vm-prepare: %s\n' "$*" >&2; }
info() { ((QUIET)) || say "$@"; }
secs() { local d=$((${EPOCHREALTIME/./} - $1)); printf '%d.%01ds' $((d / 1000000)) $((d % 1000000 / 100000)); }
# run_step DESCRIPTION CMD...: runs CMD and logs how long it took.
run_step() {
	local desc=$1 t
	shift
	t=${EPOCHREALTIME/./}
	say "$desc ..."
	"$@"
	say "$desc: done in $(secs "$t")"
}
die() {
	say "ERROR: $*"
	exit 1
}

APT_UPDATED=0
apt_update_once() {
	((APT_UPDATED)) && return 0
	run_step "apt-get update" apt-get update -qq
	APT_UPDATED=1
}
# ensure_pkgs PKG...: installs the ones that are missing (nothing, not even apt-get update, if none).
ensure_pkgs() {
	local p missing=() ok
	# One dpkg-query for all: "<name> <status>" for the known ones; unknown names print nothing. It exits 1
	# when any name is unknown (never installed), which must not end the script under pipefail.
	ok=" $({ dpkg-query -W -f='${Package} ${db:Status-Status}\n' "$@" 2>/dev/null || true; } |
		awk '$2 == "installed" {printf "%s ", $1}')"
	for p in "$@"; do [[ $ok == *" $p "* ]] || missing+=("$p"); done
	((${#missing[@]})) || return 0
	apt_update_once
	run_step "apt-get install ${missing[*]}" \
		apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
}

# --- the kernel version ----------------------------------------------------------------------------
# The candidate of linux-source-6.12 from apt's current lists (bookworm-security moves it forward).
candidate() {
	if [[ -n ${LAZYPULL_KVER_PKG:-} ]]; then
		echo "$LAZYPULL_KVER_PKG"
		return
	fi
	LC_ALL=C apt-cache policy "$SRC_PKG" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" {print $2}'
}
# Debian's ABI name: 6.12.117-1~deb12u1 -> 6.12.117+deb12 (upstream version + "+debNN").
abi_guess() {
	local v=$1 up suffix
	up=${v%%-*}
	suffix=${v##*~}      # deb12u1
	suffix=${suffix%%u*} # deb12
	[[ $suffix == deb* ]] || return 1
	echo "$up+$suffix"
}
has_version() { LC_ALL=C apt-cache madison "$1" 2>/dev/null | awk -v v="$2" '$3 == v {f=1} END {exit !f}'; }
# The ABI whose linux-image-<abi>-amd64-unsigned exists at exactly this package version: the guess
# above, checked; else (if Debian ever changes the scheme) found among the image package names.
resolve_abi() {
	local v=$1 abi name
	if abi=$(abi_guess "$v") && has_version "linux-image-$abi-$FLAVOUR-unsigned" "$v"; then
		echo "$abi"
		return
	fi
	while read -r name _; do
		abi=${name#linux-image-}
		abi=${abi%-"$FLAVOUR"-unsigned}
		if has_version "$name" "$v"; then
			echo "$abi"
			return
		fi
	# ABIs look like 6.12.117+deb12 (or 6.12.0-1 in older schemes); the pattern keeps out the
	# other flavours (-cloud-amd64, -rt-amd64).
	done < <(apt-cache search --names-only "^linux-image-6\.12\.[^-]*(-[0-9]+)?-$FLAVOUR-unsigned\$")
	return 1
}

busybox_version() { dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo unknown; }
# Input hashes: a stage is current iff its stamp holds exactly this.
kmod_hash() { { echo "$PKGVER"; find "$KMOD_DIR" -maxdepth 1 -type f -print0 | sort -z | xargs -0 cat; } | sha256sum | cut -c1-16; }
initramfs_hash() {
	{
		echo "$PKGVER ${GUEST_MODULES[*]} $(busybox_version)"
		cat "$VM/kmod/.stamp" "$GUEST_INIT" "$SELF"
	} | sha256sum | cut -c1-16
}
stamp_ok() { [[ -f $1 && $(<"$1") == "$2" ]]; }
# The initramfs is named by the hash of its inputs. Several checkouts of lazypull at different versions
# (worktrees, a CI job next to a developer) share this cache; with one fixed name each would rebuild it
# for its own guest-init.sh in turn, and a guest could boot another checkout's /init, replaced between
# vm-prepare and QEMU's start. A name is complete once it exists (written to .tmp, then renamed).
initramfs_file() { echo "$VM/initramfs-$(initramfs_hash).cpio.gz"; }
# ready: the final products exist and match the current inputs (the whole check for a warm run).
ready() {
	stamp_ok "$VM/kmod/.stamp" "$(kmod_hash)" && [[ -s $(initramfs_file) && -s $VM/bzImage ]]
}
set_version() {
	PKGVER=$1
	VM=$CACHE_ROOT/$PKGVER
}

emit() {
	local krel initramfs
	krel=$(<"$VM/krel")
	initramfs=$(initramfs_file)
	# Its mtime says when it was last used: do_initramfs prunes the ones unused for a month.
	touch "$initramfs"
	say "ready: kernel $krel (package $PKGVER) in $(secs "$T0")"
	printf 'KVER_PKG=%s\nKREL=%s\nBZIMAGE=%s\nINITRAMFS=%s\nVM_DIR=%s\n' \
		"$PKGVER" "$krel" "$VM/bzImage" "$initramfs" "$VM"
}

# --- stages: each builds into NAME.tmp and renames it when complete (a killed run leaves no
# half-made result behind); main() runs a stage only when its result is missing or stale. ---------
do_download() {
	local d=$VM/debs
	rm -rf "$d.tmp"
	mkdir -p "$d.tmp"
	# APT::Sandbox::User=root: as root, apt-get download otherwise warns that _apt cannot write here.
	(cd "$d.tmp" && apt-get download -q -o APT::Sandbox::User=root \
		"linux-image-$KREL-unsigned=$PKGVER" "linux-headers-$KREL=$PKGVER" \
		"linux-headers-$ABI-common=$PKGVER" "linux-kbuild-$ABI=$PKGVER" "$SRC_PKG=$PKGVER" >/dev/null)
	touch "$d.tmp/.done"
	rm -rf "$d"
	mv "$d.tmp" "$d"
	say "debs: $(du -sh "$d" | cut -f1) in $d"
}

do_extract_root() {
	local r=$VM/root deb
	rm -rf "$r.tmp"
	mkdir -p "$r.tmp"
	# Extract, do not install: the host's own kernel and /usr/src stay as they are.
	for deb in "$VM"/debs/linux-{image,headers,kbuild}-*.deb; do dpkg-deb -x "$deb" "$r.tmp"; done
	[[ -f $r.tmp/usr/src/linux-headers-$KREL/Module.symvers ]] || die "headers for $KREL missing in the .debs"
	[[ -f $r.tmp/boot/vmlinuz-$KREL ]] || die "vmlinuz-$KREL missing in the .debs"
	touch "$r.tmp/.done"
	rm -rf "$r"
	mv "$r.tmp" "$r"
}

do_extract_src() {
	local s=$VM/src
	rm -rf "$s.tmp"
	mkdir -p "$s.tmp"
	# Stream the tarball out of the .deb and keep only what the module build needs (plus the
	# protocol's UAPI header and doc, for reference) instead of storing its 150 MB a second time.
	dpkg-deb --fsys-tarfile "$VM"/debs/"$SRC_PKG"_*.deb |
		tar -xO "./usr/src/$SRC_PKG.tar.xz" |
		tar -xJ -C "$s.tmp" "$SRC_PKG/fs/cachefiles" "$SRC_PKG/fs/erofs" \
			"$SRC_PKG/include/uapi/linux/cachefiles.h" "$SRC_PKG/Documentation/filesystems/caching/cachefiles.rst"
	touch "$s.tmp/.done"
	rm -rf "$s"
	mv "$s.tmp" "$s"
}

# What the headers and kbuild packages themselves depend on (the kernel's compiler, gcc-12 for
# bookworm's 6.12, and kbuild's libraries and pahole), so a compiler change follows the kernel.
build_deps() {
	local p
	for p in "linux-headers-$KREL" "linux-kbuild-$ABI"; do
		LC_ALL=C apt-cache show "$p=$PKGVER" 2>/dev/null | sed -n 's/^Depends: //p' | head -n1
	done | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep -v -e '^linux-' -e '^$' | sort -u
}

do_kmod() {
	local k=$VM/kmod deps
	mapfile -t deps < <(build_deps)
	((${#deps[@]} == 0)) || ensure_pkgs "${deps[@]}"
	rm -rf "$k.tmp"
	make -s -C "$KMOD_DIR" -j"$(nproc)" KDIR="$VM/root/usr/src/linux-headers-$KREL" \
		KSRC="$VM/src/$SRC_PKG" OUT="$k.tmp" >&2
	kmod_hash >"$k.tmp/.stamp"
	rm -rf "$k"
	mv "$k.tmp" "$k"
}

# Decompresses a module file (Debian ships .ko.xz) to DEST.
unpack_ko() {
	case $1 in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko) cp "$1" "$2" ;;
	*) die "unsupported module compression: $1" ;;
	esac
}

do_initramfs() {
	local h out mods=$VM/modtree i=$VM/initramfs.d line path opts name m
	local -A seen=()
	h=$(initramfs_hash)
	out=$(initramfs_file)
	# Load order from the real modules.dep: a hard-linked copy of the image's module tree with our
	# two modules in updates/ (which depmod prefers to kernel/), then depmod on that copy.
	rm -rf "$mods"
	mkdir -p "$mods/lib/modules"
	cp -al "$VM/root/lib/modules/$KREL" "$mods/lib/modules/"
	mkdir -p "$mods/lib/modules/$KREL/updates"
	cp "$VM/kmod/cachefiles.ko" "$VM/kmod/erofs.ko" "$mods/lib/modules/$KREL/updates/"
	depmod -b "$mods" "$KREL"

	rm -rf "$i"
	mkdir -p "$i"/{bin,dev,etc,host,proc,sys,tmp,lib/modules}
	# ldd succeeds only on a dynamic executable; the initramfs has no libc.
	if LC_ALL=C ldd /bin/busybox >/dev/null 2>&1; then die "/bin/busybox is not static (install busybox-static)"; fi
	cp /bin/busybox "$i/bin/busybox"
	ln -s busybox "$i/bin/sh" # for the #!/bin/sh of /init; the other applets are linked at boot
	install -m 0755 "$GUEST_INIT" "$i/init"
	: >"$i/etc/lp-modules"
	for m in "${GUEST_MODULES[@]}"; do
		# -C /dev/null: no options from the host's modprobe.d leak in. Output lines are
		# "insmod PATH [OPTS]" in load order (soft dependencies included), or "builtin NAME".
		modprobe -C /dev/null -d "$mods" -S "$KREL" --show-depends "$m" >"$VM/deps.tmp" ||
			die "module $m not found for $KREL"
		while read -r line; do
			[[ $line == insmod\ * ]] || continue
			read -r _ path opts <<<"$line"
			name=$(basename "$path")
			name=${name%.xz}
			[[ -n ${seen[$name]:-} ]] && continue
			seen[$name]=1
			unpack_ko "$path" "$i/lib/modules/$name"
			echo "$name${opts:+ $opts}" >>"$i/etc/lp-modules"
		done <"$VM/deps.tmp"
	done
	rm -f "$VM/deps.tmp"
	echo "kernel package $PKGVER, initramfs $h" >"$i/etc/lp-build-info"
	say "initramfs modules: $(cut -d' ' -f1 "$i/etc/lp-modules" | sed 's/\.ko$//' | tr '\n' ' ')"
	# Sorted names, root-owned (we run as root anyway), no name/time in the gzip header.
	(cd "$i" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -6n) \
		>"$out.tmp"
	mv "$out.tmp" "$out"
	# The kernel depends on the package version only (which names $VM), so another initramfs's run
	# may be booting it: never rewrite it.
	if [[ ! -s $VM/bzImage ]]; then
		cp "$VM/root/boot/vmlinuz-$KREL" "$VM/bzImage.tmp"
		mv "$VM/bzImage.tmp" "$VM/bzImage"
	fi
	rm -rf "$mods" "$i"
	# Other checkouts' initramfs files (2.3 MB each), unless one was used in the last 30 days.
	find "$VM" -maxdepth 1 -name 'initramfs-*.cpio.gz' ! -name "${out##*/}" -mtime +30 -delete
	say "initramfs: $(du -h "$out" | cut -f1) in $out, kernel: $(du -h "$VM/bzImage" | cut -f1)"
}

# --- main ----------------------------------------------------------------------------------------
mkdir -p "$CACHE_ROOT"
# One prepare at a time per cache (vm-run.sh calls this; parallel test forks would race).
exec 9>"$CACHE_ROOT/.lock"
flock 9

ensure_pkgs "${HOST_PKGS[@]}"

# Warm path: the version apt's lists name is already built and current -> no network at all.
PKGVER=$(candidate)
if [[ -n $PKGVER ]]; then
	set_version "$PKGVER"
	if ready; then
		info "cached: $VM"
		emit
		exit 0
	fi
fi
# Downloads ahead: bring the lists up to date first (the security archive moves on, and
# superseded versions vanish from it after a while). Rebuilding from cached .debs needs no network.
if [[ -z $PKGVER || ! -f $VM/debs/.done ]]; then
	apt_update_once
	PKGVER=$(candidate)
	[[ -n $PKGVER ]] || die "apt knows no candidate for $SRC_PKG (is bookworm-security in the sources?)"
	set_version "$PKGVER"
fi
ABI=$(resolve_abi "$PKGVER") || die "no linux-image-*-$FLAVOUR-unsigned at version $PKGVER"
KREL=$ABI-$FLAVOUR
say "kernel: package $PKGVER, ABI $ABI, release $KREL; cache $VM"
mkdir -p "$VM"
echo "$KREL" >"$VM/krel"

if [[ -f $VM/debs/.done ]]; then info "debs: cached"; else
	run_step "download kernel image/headers/kbuild/source .debs" do_download
fi
if [[ -f $VM/root/.done ]]; then info "kernel image/headers: cached"; else
	run_step "extract kernel image, headers, kbuild" do_extract_root
fi
if [[ -f $VM/src/.done ]]; then info "module sources: cached"; else
	run_step "extract fs/cachefiles, fs/erofs from linux-source" do_extract_src
fi
if stamp_ok "$VM/kmod/.stamp" "$(kmod_hash)"; then info "cachefiles.ko/erofs.ko: cached"; else
	run_step "build cachefiles.ko + erofs.ko with ONDEMAND" do_kmod
fi
if [[ -s $(initramfs_file) && -s $VM/bzImage ]]; then
	info "initramfs: cached"
else
	run_step "assemble initramfs" do_initramfs
fi
ready || die "internal error: results not current after building"

others=$(find "$CACHE_ROOT" -mindepth 1 -maxdepth 1 -type d ! -name "$PKGVER" -printf '%f ')
[[ -z $others ]] || info "other versions in $CACHE_ROOT (delete them to free space): $others"
emit
