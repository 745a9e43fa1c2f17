#!/bin/bash
# Benchmark (not a test), run inside the QEMU guest by RegistryReadBenchIT: cold sequential read of one large
# file through a lazypull fscache mount vs `curl` downloading the same data blob from the same registry.
# Usage: registry-bench.sh WORKDIR   (WORKDIR: registry-storage/, registry.yml, lazypull.toml, bench.env with
#        IMAGE, REPO, BLOB, FILE, FILE_BYTES, ROUNDS; variants: lines "name|daemon JVM options|daemon flags")
set -uo pipefail
W=$1
. "$(dirname "$0")/lib.sh"
. "$W/bench.env"
REG_PID=
DAEMON=
stop_daemon() {
  umount /tmp/mnt/* 2>/dev/null
  [ -n "$DAEMON" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  DAEMON=
}
cleanup() {
  echo "--- daemon log (tail)"; tail -n 20 /tmp/daemon.log 2>/dev/null
  stop_daemon
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
}
trap cleanup EXIT
cold() { sync; echo 3 > /proc/sys/vm/drop_caches; }
status_json() { lp status --json --socket "$SOCK" > "$1"; }
field() { awk -v k="\"$2\"" '$1 == k { gsub(/,/, "", $3); print $3; exit }' "$1"; }
# cpu_ms PID: user+system CPU time of a process so far, in ms
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"; }

mkdir -p /mnt/state
cp -a "$W/registry-storage" /mnt/registry-storage
docker-registry serve "$W/registry.yml" >/tmp/registry.log 2>&1 &
REG_PID=$!
until curl -sf -o /dev/null http://127.0.0.1:5000/v2/; do sleep 0.2; done
result file-bytes "$FILE_BYTES"

n=0
while IFS='|' read -r name jvm flags; do
  [ -z "$name" ] && continue
  n=$((n + 1))
  rm -rf /mnt/cache && mkdir -p /mnt/cache
  # the JVM itself in the background (not the lp function), so $! is the daemon and kill stops it;
  # an explicit config: the guest sees the host's /etc, which may hold anything
  "$JAVA" $jvm -jar "$LAZYPULL_JAR" daemon --config "$W/lazypull.toml" --plain-http --cache-dir /mnt/cache \
    --state-dir /mnt/state/$n --socket "$SOCK" $flags >/tmp/daemon.log 2>&1 &
  DAEMON=$!
  if ! wait_for_daemon; then check "$name-daemon-ready" false; stop_daemon; continue; fi
  check "$name-daemon-ready" true
  # warm-up, not measured: the daemon's first fetches load and compile its HTTP and write paths
  mkdir -p /tmp/mnt/warm-$n
  lp mount --socket "$SOCK" --fsid "warm-$n" "$IMAGE" /tmp/mnt/warm-$n >/dev/null
  dd if=/tmp/mnt/warm-$n/$FILE of=/dev/null bs=1M count=128 status=none
  umount /tmp/mnt/warm-$n
  sleep 5
  for r in $(seq 1 "$ROUNDS"); do
    cold
    c0=$(cpu_ms "$REG_PID")
    out=$(curl -s -o /dev/null -w '%{time_total} %{size_download} %{http_code}' \
      "http://127.0.0.1:5000/v2/$REPO/blobs/$BLOB")
    set -- $out
    check "$name-curl-$r-ok" test "$3" = 200
    result "$name-curl-$r-ms" "$(awk -v t="$1" 'BEGIN { printf "%d", t * 1000 }')"
    result "$name-curl-$r-bytes" "$2"
    result "$name-curl-$r-registry-cpu-ms" $(( $(cpu_ms "$REG_PID") - c0 ))
    # a fresh fsid (so fresh cache files) per round: every round is cold
    mnt=/tmp/mnt/$name-$r
    mkdir -p "$mnt"
    check "$name-mount-$r" lp mount --socket "$SOCK" --fsid "bench-$n-$r" "$IMAGE" "$mnt"
    status_json /tmp/before.json
    cold
    c0=$(cpu_ms "$REG_PID"); d0=$(cpu_ms "$DAEMON")
    t0=$(now_ms)
    check "$name-read-$r" dd if="$mnt/$FILE" of=/dev/null bs=1M status=none
    t1=$(now_ms)
    result "$name-lazypull-$r-registry-cpu-ms" $(( $(cpu_ms "$REG_PID") - c0 ))
    result "$name-lazypull-$r-daemon-cpu-ms" $(( $(cpu_ms "$DAEMON") - d0 ))
    status_json /tmp/after.json
    result "$name-lazypull-$r-ms" $((t1 - t0))
    result "$name-lazypull-$r-fetched" $(( $(field /tmp/after.json bytesFetched) - $(field /tmp/before.json bytesFetched) ))
    result "$name-lazypull-$r-reads" $(( $(field /tmp/after.json reads) - $(field /tmp/before.json reads) ))
    result "$name-lazypull-$r-requests" $(( $(field /tmp/after.json fetches) - $(field /tmp/before.json fetches) ))
    check "$name-no-failed-reads-$r" test "$(field /tmp/after.json readsFailed)" -eq 0
    umount "$mnt"
  done
  stop_daemon
done < "$W/variants"
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
