#!/bin/bash
# Real-kernel fscache mounts of images built by `lazypull pack` and `lazypull convert`, run inside the QEMU
# guest by PackFscacheIT. Usage: pack-e2e.sh WORKDIR  (WORKDIR holds layout/ and *.md5 made on the host)
set -uo pipefail
W=$1
. "$(dirname "$0")/lib.sh"
L="oci:$W/layout"
mkdir -p /mnt/cache /mnt/state /tmp/mnt
trap 'echo "--- daemon log (tail)"; tail -n 40 /tmp/daemon.log 2>/dev/null' EXIT

# An explicit empty config: the test must not depend on whatever /etc/lazypull/config.toml the host has.
: > /tmp/empty-config.toml
lp daemon --config /tmp/empty-config.toml --cache-dir /mnt/cache --state-dir /mnt/state --socket "$SOCK" --log-level info >/tmp/daemon.log 2>&1 &
DAEMON=$!
check daemon-ready wait_for_daemon

# mount_and_md5 NAME TAG MD5FILE: mount by reference (tagged device slots: no device= options), md5 every file
mount_and_md5() {
  local name=$1 tag=$2 md5=$3 mnt=/tmp/mnt/$1 t0 t1 r0 r1
  mkdir -p "$mnt"
  r0=$(stat_field reads)
  check "$name-mount" lp mount --socket "$SOCK" "$L:$tag" "$mnt"
  check "$name-no-device-options" bash -c "! grep ' $mnt ' /proc/mounts | grep -q device="
  t0=$(now_ms)
  check "$name-md5" bash -c "cd '$mnt' && md5sum --quiet -c '$md5'"
  t1=$(now_ms)
  r1=$(stat_field reads)
  result "$name-cold-read-ms" $((t1 - t0))
  result "$name-reads" $((r1 - r0))
  check "$name-served-lazily" test $((r1 - r0)) -gt 0
}

echo "### image built by lazypull pack (1 MiB chunks, several blobs)"
mount_and_md5 packed packed "$W/packed.md5"
check packed-symlink test "$(readlink /tmp/mnt/packed/link-to-hello)" = hello.txt

echo "### image built by lazypull convert (two layers, a whiteout, an opaque dir)"
mount_and_md5 converted converted "$W/converted.md5"
check converted-whiteout test ! -e /tmp/mnt/converted/gone.txt
check converted-opaque test ! -e /tmp/mnt/converted/opaque/old.txt

check no-failed-reads test "$(stat_field readsFailed)" -eq 0
for m in /tmp/mnt/*; do umount "$m" 2>/dev/null; done
kill "$DAEMON"; wait "$DAEMON" 2>/dev/null
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
