#!/bin/sh
# shellcheck shell=dash
# /init (PID 1) of the lazypull test VM; busybox sh. vm-prepare.sh copies this file into the initramfs.
#
# Loads the modules listed in /etc/lp-modules (in dependency order, made by vm-prepare.sh), mounts
# the host root read-only over virtio-9p at /host, turns /host into a usable chroot (proc, sys, dev,
# tmpfs on /tmp /run /var/tmp, the ext4 scratch disk on /mnt), runs the command file named by
# lp.cmd= on the kernel command line inside it, prints "@@LP-EXIT <rc>" and powers off.
# Every path out of here ends in finish(): PID 1 must never exit (that would be a kernel panic
# and the host would only see "no marker"). finish() calls busybox explicitly because it may run
# before the applet links exist.

PATH=/bin:/sbin
export PATH
BB=/bin/busybox

# Kernel command line switches (all dotted, so the kernel does not hand them to init as arguments
# or environment; they are read from /proc/cmdline):
#   lp.cmd=/abs/path   command file on the host root, run with bash inside the chroot (required)
#   lp.share=TAG:PATH  (any number) a host directory the guest's own /tmp, /run, /var/tmp or /mnt hide (a
#                      checkout in /tmp, say), exported by vm-run.sh as 9p share TAG: mounted back at PATH
LP_CMD=
LP_SHARES=

t() {
	read -r up _ </proc/uptime || up='?'
	echo "@@ uptime $up: $*"
}

# Sets the console tty's termios with TCSADRAIN (what busybox stty uses), which blocks until
# everything already written to the console has left the (emulated) UART. Without it the tail of
# the output, the marker included, can still sit in the tty buffer when poweroff -f cuts the power.
drain_console() {
	$BB stty -F /dev/console onlcr 2>/dev/null || $BB sleep 1
}

# Kernel taint bits that mean something went wrong during the run: B(5) bad page, D(7) oops,
# W(9) WARN_ON, L(14) soft lockup. O(12) and E(13) come from our own unsigned out-of-tree modules.
report_taint() {
	taint=$($BB cat /proc/sys/kernel/tainted 2>/dev/null || echo 0)
	if [ $((taint & ((1 << 5) | (1 << 7) | (1 << 9) | (1 << 14)))) -ne 0 ]; then
		echo "@@ KERNEL PROBLEM during the run (tainted=$taint: oops/WARN/bad page/soft lockup); dmesg tail:"
		$BB dmesg | $BB tail -n 100
	fi
}

finish() {
	rc=$1
	report_taint
	# Keep kernel messages off the console from here on, so none can land inside the marker line.
	$BB dmesg -n 1 2>/dev/null
	drain_console
	# The leading newline ends a last output line that had none, so the marker is a line of its own.
	printf '\n@@LP-EXIT %s\n' "$rc"
	drain_console
	$BB poweroff -f
	# Not reached unless poweroff failed; the host times out or sees the marker anyway.
	$BB sleep 10
	echo o >/proc/sysrq-trigger
}

die() {
	echo "@@ INIT FAILED: $*"
	finish 125
}

# --- basic mounts; busybox --install needs /proc to find itself ------------------------------
$BB mkdir -p /proc /sys /dev /host /tmp
$BB mount -t proc proc /proc || die "mount /proc"
$BB mount -t sysfs sysfs /sys || die "mount /sys"
$BB mount -t devtmpfs devtmpfs /dev || die "mount /dev"
$BB --install -s /bin || die "busybox --install"
t "init started (kernel boot done)"
echo "@@ guest: $(uname -r), $(nproc) vCPUs, $(sed -n 's/^MemTotal: *//p' /proc/meminfo) RAM; $(cat /etc/lp-build-info 2>/dev/null)"

# No pathname expansion from here on: the words of the command line (and the share paths) are data.
set -f
# shellcheck disable=SC2013 # words are wanted: the command line is space separated
for arg in $(cat /proc/cmdline); do
	case $arg in
	lp.cmd=*) LP_CMD=${arg#lp.cmd=} ;;
	lp.share=*) LP_SHARES="$LP_SHARES ${arg#lp.share=}" ;;
	esac
done

# --- modules (already decompressed; listed in load order with any options) --------------------
failed=
while read -r ko opts; do
	[ -n "$ko" ] || continue
	# shellcheck disable=SC2086 # $opts is a list of module parameters on purpose
	insmod "/lib/modules/$ko" $opts || failed="$failed $ko"
done </etc/lp-modules
if [ -n "$failed" ]; then
	# Not fatal: a test that needs the module fails on its own, the rest still run. But loud.
	echo "@@ ERROR: insmod FAILED for:$failed (dmesg tail follows)"
	dmesg | tail -n 20
fi
t "modules loaded"

# --- networking stays off (QEMU runs with -nic none): only loopback, for local servers ---------
ip link set lo up || echo "@@ WARNING: could not bring up lo"
# "localhost" resolves through the host's /etc/hosts (InetAddress.getLocalHost() needs that).
hostname localhost

# --- host root over 9p, then the chroot around it -----------------------------------------------
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose,ro hostroot /host ||
	die "mount host root over 9p"
mount -t proc proc /host/proc || die "mount /host/proc"
mount -t sysfs sysfs /host/sys || die "mount /host/sys"
mount -t devtmpfs devtmpfs /host/dev || die "mount /host/dev"
mkdir -p /host/dev/pts /host/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts /host/dev/pts || die "mount /host/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev shm /host/dev/shm || die "mount /host/dev/shm"
# devtmpfs lacks what udev normally adds; bash needs /dev/fd for process substitution.
ln -sfn /proc/self/fd /host/dev/fd
ln -sfn /proc/self/fd/0 /host/dev/stdin
ln -sfn /proc/self/fd/1 /host/dev/stdout
ln -sfn /proc/self/fd/2 /host/dev/stderr
ln -sfn pts/ptmx /host/dev/ptmx
# Writable scratch space; the host root itself is read-only.
mount -t tmpfs -o mode=1777,nosuid,nodev tmp /host/tmp || die "mount /host/tmp"
mount -t tmpfs -o mode=0755,nosuid,nodev run /host/run || die "mount /host/run"
mount -t tmpfs -o mode=1777,nosuid,nodev vartmp /host/var/tmp || die "mount /host/var/tmp"
# The ext4 scratch disk: cachefiles needs a cache dir on a disk fs with xattrs (tmpfs does not
# work). virtio-blk registers the disk during insmod; wait briefly in case that is ever deferred.
n=0
while [ ! -b /dev/vda ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
# noinit_itable: no background inode-table zeroing thread eating emulated CPU on a throwaway disk.
mount -t ext4 -o noinit_itable /dev/vda /host/mnt || die "mount scratch disk /dev/vda on /mnt"
# Host directories the mounts above hide (vm-run.sh shares each one the run needs), back at their own paths.
for share in $LP_SHARES; do
	tag=${share%%:*}
	path=${share#*:}
	mkdir -p "/host$path" || die "mkdir $path for share $tag"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=loose,ro "$tag" "/host$path" ||
		die "mount host directory $path (9p share $tag)"
done

# --- the command ---------------------------------------------------------------------------------
[ -n "$LP_CMD" ] || die "no lp.cmd= on the kernel command line"
[ -f "/host$LP_CMD" ] || die "command file $LP_CMD not visible in the guest (host paths under /tmp, /run, /var/tmp and /mnt are hidden by guest mounts unless shared with lp.share=)"
t "command start"
# A clean environment like a fresh login; the command file (written by vm-run.sh) exports the
# variables the caller passes through (CI and others) and cds to the caller's directory.
chroot /host /usr/bin/env -i HOME=/root \
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	LANG=C.UTF-8 TERM=dumb /bin/bash "$LP_CMD" </dev/null 2>&1
rc=$?
t "command done (rc=$rc)"
finish "$rc"
