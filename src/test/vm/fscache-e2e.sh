#!/bin/bash
# Real-kernel fscache end-to-end suite, run inside the QEMU guest by FscacheKernelIT.
# Usage: fscache-e2e.sh WORKDIR   (WORKDIR holds layout/ and *.md5 made on the host)
set -uo pipefail
W=$1
. "$(dirname "$0")/lib.sh"
L="oci:$W/layout"
mkdir -p /mnt/cache /mnt/state /tmp/mnt
trap 'echo "--- daemon log (tail)"; tail -n 40 /tmp/daemon.log 2>/dev/null' EXIT

echo "### clear errors before binding"
out=$(lp daemon --config "$TEST_CONFIG" --cache-dir /tmp/tmpfs-cache --state-dir /tmp/st --socket /tmp/x.sock 2>&1); rc=$?
check daemon-refuses-tmpfs-cache test "$rc" -ne 0 -a -n "$(grep -o tmpfs <<<"$out")"
echo "$out"

echo "### start the daemon"
t0=$(now_ms)
# Started directly (not through the lp function) so that $! is the JVM itself and `kill` stops it.
"$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" daemon --config "$TEST_CONFIG" --cache-dir /mnt/cache --state-dir /mnt/state \
  --socket "$SOCK" --log-level info >/tmp/daemon.log 2>&1 &
DAEMON=$!
check daemon-ready wait_for_daemon
result daemon-start-ms $(( $(now_ms) - t0 ))
out=$(lp daemon --config "$TEST_CONFIG" --cache-dir /mnt/cache2 --state-dir /tmp/st2 --socket /tmp/y.sock 2>&1); rc=$?
check second-daemon-devnode-busy test "$rc" -ne 0 -a -n "$(grep -o busy <<<"$out")"
echo "$out"

# verify NAME TAG MOUNTPOINT MD5FILE [mount args...]: mount, md5 every file, then prove warm re-reads send no READ
verify() {
  local name=$1 tag=$2 mnt=$3 md5=$4; shift 4
  mkdir -p "$mnt"
  local r0 t0 t1 t2 r1 r2 r3 b0 b1
  r0=$(stat_field reads); b0=$(stat_field bytesWritten)
  t0=$(now_ms)
  check "$name-mount" lp mount --socket "$SOCK" "$@" "$L:$tag" "$mnt"
  t1=$(now_ms)
  check "$name-md5-cold" bash -c "cd '$mnt' && md5sum --quiet -c '$md5'"
  t2=$(now_ms)
  r1=$(stat_field reads); b1=$(stat_field bytesWritten)
  result "$name-mount-ms" $((t1 - t0))
  result "$name-cold-read-ms" $((t2 - t1))
  result "$name-reads" $((r1 - r0))
  result "$name-bytes-written" $((b1 - b0))
  check "$name-cold-sent-reads" test $((r1 - r0)) -gt 0
  sync; echo 3 > /proc/sys/vm/drop_caches
  check "$name-md5-after-drop-caches" bash -c "cd '$mnt' && md5sum --quiet -c '$md5'"
  r2=$(stat_field reads)
  result "$name-reads-after-drop-caches" $((r2 - r1))
  check "$name-zero-reads-after-drop-caches" test "$r2" -eq "$r1"
  check "$name-umount" lp umount "$mnt"
  check "$name-remount" lp mount --socket "$SOCK" "$@" "$L:$tag" "$mnt"
  check "$name-md5-after-remount" bash -c "cd '$mnt' && md5sum --quiet -c '$md5'"
  r3=$(stat_field reads)
  result "$name-reads-after-remount" $((r3 - r2))
  check "$name-zero-reads-after-remount" test "$r3" -eq "$r2"
}

echo "### (a) single-device image from mkfs.erofs"
verify single single /tmp/mnt/single "$W/tree.md5"

echo "### unknown fsid fails cleanly, the daemon keeps serving"
mkdir -p /tmp/mnt/unknown
check unknown-fsid-mount-fails bash -c '! mount -t erofs none /tmp/mnt/unknown -o fsid=no-such-image 2>&1'
check daemon-alive-after-unknown kill -0 "$DAEMON"
refused=$(stat_field opensRefused)
result opens-refused "$refused"
check unknown-fsid-refused-by-daemon test "$refused" -ge 1

echo "### (b) multi-device image: bootstrap + data blob (untagged slot, mounted with device=)"
verify multi multi /tmp/mnt/multi "$W/tree.md5"

echo "### (c) one data blob shared by two fsids in one domain"
verify shared1 shared1 /tmp/mnt/shared1 "$W/tree.md5" --domain shared-dom
mkdir -p /tmp/mnt/shared2
before=$(stat_field opens)
check shared2-mount lp mount --socket "$SOCK" --domain shared-dom "$L:shared2" /tmp/mnt/shared2
check shared2-md5 bash -c "cd /tmp/mnt/shared2 && md5sum --quiet -c '$W/tree.md5'"
after=$(stat_field opens)
# shared1 is still mounted, so its blob cookie is live: shared2 adds only its own bootstrap OPEN.
result shared2-opens $((after - before))
check shared-blob-opened-once test $((after - before)) -eq 1

echo "### summary"
lp status --socket "$SOCK"
result reads-total "$(stat_field reads)"
result reads-failed "$(stat_field readsFailed)"
result bytes-written "$(stat_field bytesWritten)"
check no-failed-reads test "$(stat_field readsFailed)" -eq 0
for m in /tmp/mnt/*; do umount "$m" 2>/dev/null; done

echo "### cache GC: shrink to a budget, evict one image; culled data is fetched again on demand"
usage0=$(stat_field usageBytes)
result cache-usage-before-gc "$usage0"
check gc-to-budget lp gc --socket "$SOCK" --budget 12M
usage1=$(stat_field usageBytes)
result cache-usage-after-gc "$usage1"
check gc-within-budget test "$usage1" -le $((12 << 20))
check gc-freed-something test "$usage1" -lt "$usage0"
# (the image's access profile may prefetch in the background: count bytes fetched, not READs)
f0=$(stat_field bytesFetched)
check after-gc-remount lp mount --socket "$SOCK" "$L:multi" /tmp/mnt/multi
check after-gc-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
check after-gc-refetched test "$(stat_field bytesFetched)" -gt "$f0"
check after-gc-umount lp umount /tmp/mnt/multi
check evict-image lp evict --socket "$SOCK" "$L:multi"
f1=$(stat_field bytesFetched)
check after-evict-remount lp mount --socket "$SOCK" "$L:multi" /tmp/mnt/multi
check after-evict-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
check after-evict-refetched test "$(stat_field bytesFetched)" -gt "$f1"
umount /tmp/mnt/multi
check evict-image lp evict --socket "$SOCK" "$L:multi"
r1=$(stat_field reads)
check after-evict-remount lp mount --socket "$SOCK" "$L:multi" /tmp/mnt/multi
check after-evict-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
check after-evict-refetched test "$(stat_field reads)" -gt "$r1"
umount /tmp/mnt/multi

echo "### prefetch: the access profile recorded on the first mount is replayed on a cold remount"
check profile-recorded bash -c "ls /mnt/state/profiles/*.json >/dev/null"
check profile-evict lp evict --socket "$SOCK" "$L:multi"
check profile-mount lp mount --socket "$SOCK" "$L:multi" /tmp/mnt/multi
check profile-prefetch-finished lp prefetch --socket "$SOCK" --status --wait "$L:multi"
r0=$(stat_field reads)
check profile-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
r1=$(stat_field reads)
result reads-after-profile-replay $((r1 - r0))
check profile-replay-left-no-reads test "$r1" -eq "$r0"
umount /tmp/mnt/multi

echo "### prefetch --all --wait through the daemon, then a cold read sends zero READs"
check prefetch-evict lp evict --socket "$SOCK" "$L:multi"
check prefetch-mount lp mount --socket "$SOCK" --prefetch none "$L:multi" /tmp/mnt/multi
check prefetch-all-wait lp prefetch --socket "$SOCK" --all --wait "$L:multi"
r0=$(stat_field reads)
check prefetch-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
r1=$(stat_field reads)
result reads-after-prefetch $((r1 - r0))
check prefetch-left-no-reads test "$r1" -eq "$r0"
out=$(lp prefetch --socket "$SOCK" no-such-image 2>&1); rc=$?
check prefetch-unknown-image-fails test "$rc" -ne 0
echo "$out"
umount /tmp/mnt/multi
kill "$DAEMON"; wait "$DAEMON" 2>/dev/null
check daemon-stopped-on-sigterm bash -c "! kill -0 $DAEMON 2>/dev/null"
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
