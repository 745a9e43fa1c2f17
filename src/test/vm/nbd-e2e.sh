#!/bin/bash
# Real-kernel NBD end-to-end suite, run inside the QEMU guest by NbdKernelIT: `lazypull nbd --device /dev/nbdN`
# attaches the export to the kernel's nbd driver, and `mount -t erofs /dev/nbdN` reads the flattened device.
# Usage: nbd-e2e.sh WORKDIR   (WORKDIR holds layout/, tree.md5, blob.size and single.digest made on the host, and
#   registry-storage/, registry.yml, guest-config/, image.bytes for the registry-backed export)
set -uo pipefail
W=$1
. "$(dirname "$0")/lib.sh"
L="oci:$W/layout"
CACHE=/mnt/nbd-cache
BLOB_SIZE=$(cat "$W/blob.size")
mkdir -p /tmp/mnt/multi /tmp/mnt/single /tmp/mnt/raw /tmp/mnt/reg
REG_PID=
trap 'for f in /tmp/*.err; do echo "--- $f (tail)"; tail -n 20 "$f"; done 2>/dev/null
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null' EXIT

PID=
# The JVM itself in the background (lp is a function: `lp … &` would leave $! naming a subshell, not java).
lp_bg() { exec "$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" "$@"; }
# attach NAME IMAGE DEVICE [args...]: start the export on DEVICE, return once the kernel device is live
attach() {
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
# detach: SIGTERM disconnects the device and prints the stats line
detach() { kill "$PID" && wait "$PID"; local rc=$?; PID=; test "$rc" -eq 143 -o "$rc" -eq 0; }
# stat NAME KEY: one figure from the stats line the export printed at exit
stat() { sed -n "s/.* stats .*\b$2=\([0-9]*\).*/\1/p" "/tmp/$1.err" | tail -n 1; }
released() { ! test -e "/sys/block/$(basename "$1")/pid"; }

check nbd-device-present test -b /dev/nbd0

echo "### multi-device image (computed layout): attach, mount, read one small file"
t0=$(now_ms)
check multi-attach attach multi "$L:multi" /dev/nbd0
result multi-attach-ms $(( $(now_ms) - t0 ))
check multi-device-read-only test "$(cat /sys/block/nbd0/ro)" = 1
check multi-device-size test "$(cat /sys/block/nbd0/size)" -eq "$(cat "$W/flat.sectors")"
out=$(lp nbd "$L:multi" --device /dev/nbd0 --cache-dir /tmp/other-cache 2>&1); rc=$?
check second-attach-refused test "$rc" -ne 0 -a -n "$(grep -o 'in use' <<<"$out")"
echo "$out" | tail -n 2
check multi-mount mount -t erofs -o ro /dev/nbd0 /tmp/mnt/multi
check multi-small-file grep -q 'hello from lazypull' /tmp/mnt/multi/hello.txt
check multi-umount umount /tmp/mnt/multi
check multi-detach detach
check multi-device-released released /dev/nbd0
partial=$(stat multi bytesFetched)
result multi-partial-bytes-fetched "$partial"
result multi-blob-bytes "$BLOB_SIZE"
check multi-partial-fetch-is-partial test "$partial" -gt 0 -a "$partial" -lt $((BLOB_SIZE / 2))

echo "### same cache, full read: every file matches, nothing fetched twice"
check multi-reattach attach multi2 "$L:multi" /dev/nbd0
check multi-remount mount -t erofs -o ro /dev/nbd0 /tmp/mnt/multi
t0=$(now_ms)
check multi-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
result multi-md5-ms $(( $(now_ms) - t0 ))
check multi-symlink test "$(readlink /tmp/mnt/multi/link-to-hello)" = hello.txt
umount /tmp/mnt/multi
check multi2-detach detach
full=$(stat multi2 bytesFetched)
result multi-rest-bytes-fetched "$full"
check multi-no-refetch test "$full" -le $((BLOB_SIZE - partial + 16384))
check multi-no-failed-reads test "$(stat multi2 readsFailed)" -eq 0

echo "### restart over a full cache: served without fetching"
check multi-warm-attach attach multi3 "$L:multi" /dev/nbd0
check multi-warm-mount mount -t erofs -o ro /dev/nbd0 /tmp/mnt/multi
check multi-warm-md5 bash -c "cd /tmp/mnt/multi && md5sum --quiet -c '$W/tree.md5'"
umount /tmp/mnt/multi
check multi3-detach detach
check multi-warm-zero-fetch test "$(stat multi3 bytesFetched)" -eq 0

echo "### single-device image on /dev/nbd1"
check single-attach attach single "$L:single" /dev/nbd1
check single-mount mount -t erofs -o ro /dev/nbd1 /tmp/mnt/single
check single-md5 bash -c "cd /tmp/mnt/single && md5sum --quiet -c '$W/tree.md5'"
umount /tmp/mnt/single
check single-detach detach

echo "### raw export of one blob (the single image's bootstrap, itself an EROFS image) on /dev/nbd2"
check raw-attach attach raw "$L:single" /dev/nbd2 --blob "$(cat "$W/single.digest")"
check raw-mount mount -t erofs -o ro /dev/nbd2 /tmp/mnt/raw
check raw-md5 bash -c "cd /tmp/mnt/raw && md5sum --quiet -c '$W/tree.md5'"
umount /tmp/mnt/raw
check raw-detach detach

echo "### an image in docker-registry on the guest's loopback (pack --push, digest tables): lazy and verified"
cp -a "$W/registry-storage" /mnt/registry-storage
docker-registry serve "$W/registry.yml" >/tmp/registry.log 2>&1 &
REG_PID=$!
for i in $(seq 1 100); do
  curl -s -o /dev/null http://127.0.0.1:5000/v2/ && break
  sleep 0.2
done
# Body bytes the registry sent for successful blob GETs, from its access log (combined format).
served() {
  awk '$6 == "\"GET" && $7 ~ /\/blobs\/sha256:/ && ($9 == 200 || $9 == 206) { s += $10 } END { print s + 0 }' \
    /tmp/registry.log
}
IMAGE_BYTES=$(cat "$W/image.bytes")
# A cache of its own: pack writes the same data blob as mkfs.erofs for this tree, which the runs above cached.
CACHE=/mnt/nbd-cache-reg check reg-attach attach reg 127.0.0.1:5000/nbd/app:v1 /dev/nbd3 --plain-http \
  --config "$W/guest-config/lazypull.toml"
check reg-mount mount -t erofs -o ro /dev/nbd3 /tmp/mnt/reg
check reg-small-file grep -q 'hello from lazypull' /tmp/mnt/reg/hello.txt
b_partial=$(served)
result reg-bytes-partial "$b_partial"
result reg-image-bytes "$IMAGE_BYTES"
check reg-partial-is-partial test "$b_partial" -gt 0 -a "$b_partial" -lt $((IMAGE_BYTES / 2))
check reg-md5 bash -c "cd /tmp/mnt/reg && md5sum --quiet -c '$W/tree.md5'"
umount /tmp/mnt/reg
check reg-detach detach
check reg-chunks-verified test "$(stat reg chunksVerified)" -gt 0
check reg-no-failed-reads test "$(stat reg readsFailed)" -eq 0 -a "$(stat reg integrityFailures)" -eq 0
kill "$REG_PID"; wait "$REG_PID" 2>/dev/null; REG_PID=

[ -n "$PID" ] && kill "$PID"
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
