#!/bin/bash
# Real-kernel registry end-to-end, run inside the QEMU guest by RegistryKernelIT: a docker-registry with
# htpasswd auth on the guest's loopback serves a lazypull image; the daemon mounts it by registry reference.
# Usage: registry-e2e.sh WORKDIR
#   WORKDIR (prepared on the host): registry-storage/ (seeded with `lazypull copy`), registry.yml, htpasswd,
#   lazypull.toml + docker-config.json (the daemon's credentials), tree.md5, image.env (IMAGE, IMAGE_BYTES,
#   PARTIAL_FILE)
set -uo pipefail
W=$1
. "$(dirname "$0")/lib.sh"
. "$W/image.env"
mkdir -p /mnt/cache /mnt/state /tmp/mnt/img
REG_PID=
DAEMON=
cleanup() {
  echo "--- daemon log (tail)"; tail -n 30 /tmp/daemon.log 2>/dev/null
  echo "--- registry errors (tail)"; grep 'level=error' /tmp/registry.log 2>/dev/null | tail -n 5
  umount /tmp/mnt/img 2>/dev/null
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
}
trap cleanup EXIT

# Body bytes the registry sent for successful blob GETs, from its access log (combined format).
served() {
  awk '$6 == "\"GET" && $7 ~ /\/blobs\/sha256:/ && ($9 == 200 || $9 == 206) { s += $10 } END { print s + 0 }' \
    /tmp/registry.log
}
# status_json FILE; field FILE NAME
status_json() { lp status --json --socket "$SOCK" > "$1"; }
field() { awk -v k="\"$2\"" '$1 == k { gsub(/,/, "", $3); print $3; exit }' "$1"; }

echo "### registry on the guest's loopback (htpasswd Basic auth)"
cp -a "$W/registry-storage" /mnt/registry-storage
docker-registry serve "$W/registry.yml" >/tmp/registry.log 2>&1 &
REG_PID=$!
for i in $(seq 1 100); do
  code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/v2/) && [ "$code" != 000 ] && break
  sleep 0.2
done
check registry-requires-auth test "$code" = 401

echo "### daemon (credentials from its docker config.json, plain HTTP for this host from lazypull.toml)"
# the JVM itself in the background (not the lp function), so $! is the daemon and kill stops it
"$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" daemon --config "$W/lazypull.toml" --cache-dir /mnt/cache \
  --state-dir /mnt/state --socket "$SOCK" >/tmp/daemon.log 2>&1 &
DAEMON=$!
check daemon-ready wait_for_daemon

echo "### mount by registry reference: $IMAGE"
t0=$(now_ms)
check mount lp mount --socket "$SOCK" "$IMAGE" /tmp/mnt/img
t1=$(now_ms)
result mount-ms $((t1 - t0))
b_mount=$(served)
result registry-bytes-after-mount "$b_mount"

echo "### partial read: one file ($PARTIAL_FILE)"
check partial-md5 bash -c "cd /tmp/mnt/img && grep '  $PARTIAL_FILE\$' '$W/tree.md5' | md5sum --quiet -c -"
b_partial=$(served)
result image-bytes "$IMAGE_BYTES"
result registry-bytes-partial "$b_partial"
# the point of lazy pulling: a small read costs a small fraction of the image
check partial-read-fetches-under-a-quarter test $((b_partial * 4)) -lt "$IMAGE_BYTES"

echo "### every file"
t2=$(now_ms)
check full-md5 bash -c "cd /tmp/mnt/img && md5sum --quiet -c '$W/tree.md5'"
t3=$(now_ms)
result full-read-ms $((t3 - t2))
b_full=$(served)
result registry-bytes-full "$b_full"
# each byte at most once (plus the few KiB the registration reads of the bootstrap header)
check each-byte-served-once test "$b_full" -le $((IMAGE_BYTES + 65536))
check whole-image-served test "$b_full" -ge "$IMAGE_BYTES"
status_json /tmp/s1.json
result bytes-fetched "$(field /tmp/s1.json bytesFetched)"
result reads "$(field /tmp/s1.json reads)"
check no-failed-reads test "$(field /tmp/s1.json readsFailed)" -eq 0

echo "### warm: drop caches, read again: nothing from the registry, no READs"
sync; echo 3 > /proc/sys/vm/drop_caches
check warm-md5 bash -c "cd /tmp/mnt/img && md5sum --quiet -c '$W/tree.md5'"
check warm-no-registry-bytes test "$(served)" -eq "$b_full"
status_json /tmp/s2.json
check warm-zero-reads test "$(field /tmp/s2.json reads)" -eq "$(field /tmp/s1.json reads)"
lp status --socket "$SOCK" 2>/dev/null | head -n 3
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
