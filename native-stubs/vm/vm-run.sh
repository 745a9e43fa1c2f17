#!/usr/bin/env bash
# vm-run.sh [--timeout SECONDS] [--mem SIZE] [--smp N] [--disk-size SIZE] [--keep] SCRIPT [ARG...]
#
# Runs SCRIPT as root inside a throwaway QEMU (TCG) guest booted with Debian's 6.12 kernel and the
# on-demand cachefiles/erofs modules (see vm-prepare.sh, run first and quietly when cached). The
# guest sees the host root read-only at the same paths (virtio-9p + chroot), so SCRIPT, the JDK
# and the built jar are used in place; /tmp, /run and /var/tmp are fresh tmpfs and /mnt is an
# empty ext4 scratch disk (--disk-size, default 2G). Host directories those hide that the run needs
# (the checkout, the current directory, SCRIPT's, the run directory, LAZYPULL_VM_SHARE) are shared
# back read-only at their own paths. No network (-nic none), loopback only.
# SCRIPT runs in the caller's current directory, directly if executable, else with bash.
#
# The guest console (SCRIPT's stdout+stderr, after the guest's own "@@ " lines) streams to stdout;
# vm-run's own messages go to stderr. Exit status: SCRIPT's, 124 on timeout (default 1200 s),
# 125 if the guest never reported one (boot or init failure, kernel panic), 2 on usage errors.
# Usable from ProcessBuilder: needs no tty and never reads stdin.
#
# Environment:
#   LAZYPULL_VM_RUNDIR   where per-run directories go (default <repo>/target/vm-run)
#   LAZYPULL_VM_SHARE    more host directories (space separated) the run reads, to share back into
#                        the guest if they lie under /tmp, /run, /var/tmp or /mnt
#   LAZYPULL_VM_ENV      names of extra variables to pass into the guest (CI, TZ, JAVA_HOME,
#                        MAVEN_OPTS and all LAZYPULL_* are passed when set)
#   LAZYPULL_VM_APPEND   extra kernel command line (e.g. loglevel=7)
#   LAZYPULL_VM_KEEP=1   keep the run directory (console log, disk image) like --keep
#   LAZYPULL_VM_CACHE, LAZYPULL_KVER_PKG: see vm-prepare.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SELF=$HERE/$(basename "${BASH_SOURCE[0]}")

TIMEOUT=1200
MEM=3G
SMP=2
DISK_SIZE=2G
KEEP=${LAZYPULL_VM_KEEP:-0}

say() { printf 'vm-run: %s\n' "$*" >&2; }
usage() {
	say "$*"
	say "usage: vm-run.sh [--timeout SECONDS] [--mem SIZE] [--smp N] [--disk-size SIZE] [--keep] SCRIPT [ARG...]"
	exit 2
}
need_arg() { [[ $# -ge 2 && -n $2 ]] || usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
	case $1 in
	--timeout) need_arg "$@"; TIMEOUT=$2; shift 2 ;;
	--mem) need_arg "$@"; MEM=$2; shift 2 ;;
	--smp) need_arg "$@"; SMP=$2; shift 2 ;;
	--disk-size) need_arg "$@"; DISK_SIZE=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SELF"; exit 0 ;;
	--) shift; break ;;
	-*) usage "unknown option $1" ;;
	*) break ;;
	esac
done
[[ $# -ge 1 ]] || usage "no SCRIPT given"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || usage "--timeout wants whole seconds"
[[ $SMP =~ ^[0-9]+$ ]] || usage "--smp wants a number"

# The guest mounts its own filesystems over /tmp, /run and /var/tmp (tmpfs) and /mnt (the scratch disk), which
# hides whatever the host has there: a checkout cloned to /tmp, say, with the jar, the test scripts and the test
# data under target/. Every directory a run needs that lies there is therefore exported again as a read-only 9p
# share of its own, which the guest mounts back at the same path on top of its own mounts (lp.share= on the
# kernel command line, see guest-init.sh). Paths stay the same on both sides, so the absolute paths that the
# host writes into scripts and configs keep working wherever the checkout is. /proc, /sys and /dev are the
# guest's own and cannot be shared back.
hidden_in_guest() {
	case $1/ in
	/tmp/* | /run/* | /var/tmp/* | /mnt/*) return 0 ;;
	esac
	return 1
}
SHARES=()
# need_visible WHAT DIR: the guest must see DIR (an absolute, resolved path) at the same path.
need_visible() {
	local what=$1 dir=$2
	case $dir/ in
	/proc/* | /sys/* | /dev/*) usage "$what $dir is under /proc, /sys or /dev, which the guest replaces with its own" ;;
	/tmp/ | /run/ | /var/tmp/ | /mnt/) usage "$what $dir is where the guest mounts its own filesystem: use a subdirectory" ;;
	esac
	hidden_in_guest "$dir" || return 0
	# The share goes on the kernel command line, which is split at whitespace and interprets quotes.
	[[ $dir != *[[:space:]\"]* ]] || usage "$what $dir contains whitespace or a quote: it cannot be shared into the guest"
	SHARES+=("$dir")
}
SCRIPT=$(realpath -e -- "$1") || usage "SCRIPT $1 does not exist"
shift
[[ -f $SCRIPT ]] || usage "SCRIPT $SCRIPT is not a file"
CWD=$(pwd -P)
RUNROOT=${LAZYPULL_VM_RUNDIR:-$REPO/target/vm-run}
mkdir -p "$RUNROOT"
RUNROOT=$(realpath -e "$RUNROOT")
# The command file's path goes on the kernel command line, which is split at spaces.
[[ $RUNROOT != *[[:space:]]* ]] || usage "the run directory $RUNROOT contains whitespace; set LAZYPULL_VM_RUNDIR"

# The checkout (the jar, the guest scripts, target/), the caller's directory, SCRIPT's directory, the run
# directory (the command file), and whatever else the caller names.
need_visible "the checkout" "$REPO"
need_visible "the current directory" "$CWD"
need_visible "SCRIPT's directory" "$(dirname "$SCRIPT")"
need_visible "the run directory" "$RUNROOT"
read -r -a extra_shares <<<"${LAZYPULL_VM_SHARE:-}"
for d in "${extra_shares[@]}"; do
	r=$(realpath -e -- "$d") || usage "LAZYPULL_VM_SHARE: $d does not exist"
	need_visible "the LAZYPULL_VM_SHARE entry" "$r"
done
# One share per outermost directory: C-locale sorting puts every directory before what lies under it.
KEPT=() VIRTFS_SHARES=() APPEND_SHARES=''
if ((${#SHARES[@]})); then
	n=0
	while IFS= read -r d; do
		for k in "${KEPT[@]}"; do [[ $d/ == "$k"/* ]] && continue 2; done
		KEPT+=("$d")
		# QEMU option values escape a comma by doubling it.
		VIRTFS_SHARES+=(-virtfs "local,path=${d//,/,,},mount_tag=lpshare$n,security_model=none,readonly=on,multidevs=remap")
		APPEND_SHARES+=" lp.share=lpshare$n:$d"
		say "sharing $d into the guest at the same path (the guest's own /tmp, /run, /var/tmp, /mnt would hide it)"
		n=$((n + 1))
	done < <(printf '%s\n' "${SHARES[@]}" | LC_ALL=C sort -u)
fi

T0=${EPOCHREALTIME/./}
secs() { local d=$((${EPOCHREALTIME/./} - $1)); printf '%d.%01d' $((d / 1000000)) $((d % 1000000 / 100000)); }

# --- kernel + initramfs (a fast no-op when cached; progress on stderr when it has work) ----------
PREP=$("$HERE/vm-prepare.sh" --quiet </dev/null) || { say "vm-prepare.sh failed"; exit 125; }
BZIMAGE=$(sed -n 's/^BZIMAGE=//p' <<<"$PREP")
INITRAMFS=$(sed -n 's/^INITRAMFS=//p' <<<"$PREP")
[[ -s $BZIMAGE && -s $INITRAMFS ]] || { say "vm-prepare.sh gave no kernel/initramfs"; exit 125; }

# --- the run directory: scratch disk, command file, console log ---------------------------------
RUN=$(mktemp -d "$RUNROOT/run.XXXXXX")
QEMU_PID='' SUB=''
# shellcheck disable=SC2317 # cleanup and on_signal run from traps
cleanup() {
	# Stop QEMU if still running, and let the console pipeline finish writing into $RUN first.
	[[ -z $SUB || -n $QEMU_PID ]] || QEMU_PID=$(cat "$RUN/qemu.pid" 2>/dev/null || true)
	if [[ -n $QEMU_PID ]] && kill -0 "$QEMU_PID" 2>/dev/null; then kill -TERM "$QEMU_PID" 2>/dev/null || true; fi
	if [[ -n $SUB ]]; then wait "$SUB" 2>/dev/null || true; fi
	if ((KEEP)); then
		rm -f "$RUN/scratch.img"
		say "kept $RUN"
	else
		rm -rf "$RUN" || true
	fi
}
trap cleanup EXIT
# A kill of vm-run.sh (e.g. a JUnit timeout destroying the process) must stop QEMU too. QEMU runs
# in the background and vm-run.sh waits with the `wait` builtin, so these traps fire at once.
# shellcheck disable=SC2317
on_signal() {
	say "terminated by SIG$1"
	exit $((128 + $2)) # the EXIT trap stops QEMU and cleans up
}
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP

# A fresh sparse ext4 (mkfs on the host is instant; the guest's cachefiles needs a disk fs with
# xattrs). lazy init + the guest's noinit_itable: nothing is zeroed. -E nodiscard: no point on a
# new sparse file.
truncate -s "$DISK_SIZE" "$RUN/scratch.img"
mkfs.ext4 -q -F -L lpscratch -E lazy_itable_init=1,lazy_journal_init=1,nodiscard "$RUN/scratch.img"

# The command file the guest's init runs with `bash` in a clean environment (env -i): pass the
# chosen variables, go to the caller's directory, run SCRIPT with its arguments.
PASS_VARS=(CI TZ JAVA_HOME MAVEN_OPTS)
read -r -a extra_vars <<<"${LAZYPULL_VM_ENV:-}"
PASS_VARS+=("${extra_vars[@]}")
mapfile -t lp_vars < <(compgen -e | grep '^LAZYPULL_' || true)
PASS_VARS+=("${lp_vars[@]}")
{
	echo "# generated by vm-run.sh"
	for v in "${PASS_VARS[@]}"; do
		[[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || usage "LAZYPULL_VM_ENV: bad variable name $v"
		[[ -n ${!v+set} ]] && printf 'export %s=%q\n' "$v" "${!v}"
	done
	printf 'cd %q || exit 125\n' "$CWD"
	if [[ -x $SCRIPT ]]; then
		printf 'exec %q' "$SCRIPT"
	else
		printf 'exec /bin/bash %q' "$SCRIPT"
	fi
	for a in "$@"; do printf ' %q' "$a"; done
	echo
} >"$RUN/cmd.sh"

# --- boot -------------------------------------------------------------------------------------------
# Serial console on stdio (-nographic), stdin from /dev/null (no tty needed, nothing read), the host
# root as a read-only 9p export (multidevs=remap: the host root spans several filesystems, remap
# keeps inode numbers unique), throwaway disk with cache=unsafe (guest flushes are no-ops).
# The console filter drops the \r of the serial line discipline and the terminal escapes SeaBIOS
# prints, line-buffered (sed -u) so the output streams; tee keeps a copy to find the marker in.
# edd=off: skips the BIOS disk probe, whose "Probing EDD ... ok" has no newline and would glue
# itself onto the guest's first line.
# One guest at a time on this machine: TCG guests are CPU-bound, and parallel runs (several test
# sessions, a CI job next to a developer) would only slow each other past their timeouts.
exec 9>"${LAZYPULL_VM_LOCK:-/run/lock/lazypull-vm-run.lock}"
if ! flock -n 9; then
	say "waiting for another guest run to finish (lock ${LAZYPULL_VM_LOCK:-/run/lock/lazypull-vm-run.lock})"
	flock 9
fi
APPEND="console=ttyS0 rdinit=/init panic=-1 loglevel=4 edd=off lp.cmd=$RUN/cmd.sh$APPEND_SHARES ${LAZYPULL_VM_APPEND:-}"
say "booting (timeout ${TIMEOUT}s, ${SMP} vCPU, ${MEM} RAM, ${DISK_SIZE} disk): $SCRIPT${*:+ $*}"
T_BOOT=${EPOCHREALTIME/./}
(
	set +e
	timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
		-accel tcg,thread=multi -cpu max -smp "$SMP" -m "$MEM" \
		-nographic -nic none -no-reboot -pidfile "$RUN/qemu.pid" \
		-kernel "$BZIMAGE" -initrd "$INITRAMFS" -append "$APPEND" \
		-drive file="$RUN/scratch.img",if=virtio,format=raw,cache=unsafe \
		-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
		"${VIRTFS_SHARES[@]}" \
		</dev/null 2>&1 |
		sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[c]//g' |
		tee "$RUN/console.log"
	echo "${PIPESTATUS[0]}" >"$RUN/qemu.rc"
) &
SUB=$!
# QEMU's pid, for the signal trap (written by QEMU itself once it runs).
for _ in {1..50}; do
	[[ -s $RUN/qemu.pid ]] && break
	kill -0 "$SUB" 2>/dev/null || break
	sleep 0.1
done
QEMU_PID=$(cat "$RUN/qemu.pid" 2>/dev/null || true)
# Waiting for the whole subshell (not just QEMU) means sed and tee have written their last line
# to console.log before it is parsed: the marker is the last thing the guest prints.
wait "$SUB" || true
QEMU_PID='' SUB=''
QRC=$(cat "$RUN/qemu.rc" 2>/dev/null || echo 125)

# The last marker wins: the guest prints it once, after everything else (a script that echoes the
# marker text itself cannot override the real one).
RC=$(sed -n 's/^@@LP-EXIT \([0-9]\{1,3\}\)$/\1/p' "$RUN/console.log" | tail -n 1)
GUEST_T=$(sed -n 's/^@@ uptime \([0-9.]*\): command start$/\1/p' "$RUN/console.log" | tail -n 1)
if [[ -n $RC ]]; then
	:
elif [[ $QRC == 124 || $QRC == 137 ]]; then
	say "TIMEOUT: the guest did not finish within ${TIMEOUT}s"
	RC=124
else
	say "the guest ended without reporting an exit status (qemu exit $QRC): boot/init failure or kernel panic"
	RC=125
fi
say "exit $RC; command started at guest uptime ${GUEST_T:-?}s; boot+run $(secs "$T_BOOT")s, total $(secs "$T0")s"
exit "$RC"
