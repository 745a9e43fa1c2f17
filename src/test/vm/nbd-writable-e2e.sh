#!/bin/bash
# Real-kernel writable NBD suite, run inside the QEMU guest by NbdWritableKernelIT: a disk image (ext4, made and
# imported on the host) served `--writable --device /dev/nbdN`, mounted by the kernel with discard; files written
# and deleted, fstrim; the overlay snapshotted and restored onto another /dev/nbdN; every file checked.
# Usage: nbd-writable-e2e.sh WORKDIR   (WORKDIR holds layout/ (tag disk) and disk.md5 made on the host)
set -uo pipefail
W=$1
. "$(dirname "$0")/lib.sh"
L="oci:$W/layout"
CACHE=/mnt/nbd-cache-w
mkdir -p /tmp/mnt/w1 /tmp/mnt/w2
trap 'for f in /tmp/*.err; do echo "--- $f (tail)"; tail -n 20 "$f"; done 2>/dev/null' EXIT

PID=
lp_bg() { exec "$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" "$@"; }
attach() { # attach NAME IMAGE DEVICE [args...]
  local name=$1 image=$2 dev=$3 i; shift 3
  lp_bg nbd "$image" --device "$dev" --cache-dir "$CACHE" --log-level warn "$@" >"/tmp/$name.out" 2>"/tmp/$name.err" &
  PID=$!
  for i in $(seq 1 240); do
    grep -q '^attached' "/tmp/$name.out" 2>/dev/null && return 0
    kill -0 "$PID" 2>/dev/null || return 1
    sleep 0.25
  done
  return 1
}
detach() { kill "$PID" && wait "$PID"; local rc=$?; PID=; test "$rc" -eq 143 -o "$rc" -eq 0; }
stat() { sed -n "s/.* stats .*\b$2=\([0-9]*\).*/\1/p" "/tmp/$1.err" | tail -n 1; }

echo "### the disk image writable on /dev/nbd0: ext4 with discard"
check w1-attach attach w1 "$L:disk" /dev/nbd0 --writable --overlay /mnt/ov1
check w1-device-writable test "$(cat /sys/block/nbd0/ro)" = 0
check w1-discard-advertised test "$(cat /sys/block/nbd0/queue/discard_max_bytes)" -gt 0
check w1-mount mount -o discard /dev/nbd0 /tmp/mnt/w1
check w1-base-md5 bash -c "cd /tmp/mnt/w1 && md5sum --quiet -c '$W/disk.md5'"
check w1-write bash -c "head -c 3000000 /dev/urandom > /tmp/mnt/w1/new1 && mkdir /tmp/mnt/w1/e \
  && head -c 150000 /dev/urandom > /tmp/mnt/w1/e/new2 && head -c 16000000 /dev/urandom > /tmp/mnt/w1/gone && sync"
check w1-sums bash -c "cd /tmp/mnt/w1 && md5sum new1 e/new2 d/b hello.txt > /tmp/new.md5"
check w1-delete bash -c "rm /tmp/mnt/w1/gone /tmp/mnt/w1/a && sync && fstrim /tmp/mnt/w1"
check w1-umount umount /tmp/mnt/w1
check w1-detach detach
check w1-trims-reached test "$(stat w1 zeroes)" -gt 0
check w1-flushes-reached test "$(stat w1 flushes)" -gt 0
check w1-no-failed-writes test "$(stat w1 writesFailed)" -eq 0
result w1-overlay-allocated-kib "$(du -k /mnt/ov1/data | cut -f1)"

echo "### snapshot the stopped overlay, restore it onto /dev/nbd1 (writable again)"
check snapshot lp snapshot --overlay /mnt/ov1 --output oci:/mnt/snap:s1
check w2-attach attach w2 oci:/mnt/snap:s1 /dev/nbd1 --writable --overlay /mnt/ov2
check w2-mount mount /dev/nbd1 /tmp/mnt/w2
check w2-md5 bash -c "cd /tmp/mnt/w2 && md5sum --quiet -c /tmp/new.md5"
check w2-deleted-stay-deleted test ! -e /tmp/mnt/w2/gone -a ! -e /tmp/mnt/w2/a
check w2-write bash -c "echo again > /tmp/mnt/w2/again.txt && sync"
check w2-umount umount /tmp/mnt/w2
check w2-detach detach

[ -n "$PID" ] && kill "$PID"
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
