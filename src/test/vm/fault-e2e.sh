#!/bin/bash
# Registry faults under the real kernel, run inside the QEMU guest by FaultKernelIT: docker-registry on the guest's
# loopback (port 5001) behind the test fault proxy (port 5000, dev.lazypull.testing.FaultProxy from the host's
# test classes); the daemon mounts the image by registry reference and readers read while the proxy damages half
# of the blob responses and the registry is stopped and restarted. Every reader must end — correct bytes or EIO,
# never a hang (each is bounded by `timeout`) — an image from a local layout is served throughout, and once the
# faults stop every file reads back correctly.
# Usage: fault-e2e.sh WORKDIR TEST_CLASSES
#   WORKDIR (prepared on the host): registry-storage/ (seeded with `lazypull copy`), registry.yml, lazypull.toml,
#   app.md5 (the registry image's files), local/ + local.md5 (an OCI layout image), image.env (IMAGE)
set -uo pipefail
W=$1 CLASSES=$2
. "$(dirname "$0")/lib.sh"
. "$W/image.env"
mkdir -p /mnt/cache /mnt/state /tmp/mnt/app /tmp/mnt/local /tmp/readers
REG_PID= PROXY_PID= DAEMON=
cleanup() {
  echo "--- daemon log (warnings, tail)"; grep -E 'WARN|SEVERE' /tmp/daemon.log 2>/dev/null | tail -n 25
  umount /tmp/mnt/app /tmp/mnt/local 2>/dev/null
  [ -z "$PROXY_PID" ] || kill -CONT "$PROXY_PID" 2>/dev/null # a stopped proxy would keep its SIGTERM pending
  for p in $DAEMON $PROXY_PID $REG_PID; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
}
trap cleanup EXIT
READER_TIMEOUT=150 # a reader still running after this is hung: it has at most a few READs, each <= read_timeout

start_registry() {
  docker-registry serve "$W/registry.yml" >>/tmp/registry.log 2>&1 &
  REG_PID=$!
  for i in $(seq 1 100); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5001/v2/)" = 200 ] && return 0
    sleep 0.2
  done
  return 1
}
fault_rate() { curl -s "http://127.0.0.1:5000/__fault/rate/$1" >/dev/null; }
faults_injected() { curl -s http://127.0.0.1:5000/__fault/stats | awk '$1 != "NONE" { s += $2 } END { print s + 0 }'; }
# requests the proxy could not forward because the registry was down
upstream_errors() { curl -s http://127.0.0.1:5000/__fault/upstream-errors; }

echo "### registry on 127.0.0.1:5001, fault proxy on 127.0.0.1:5000 in front of it"
cp -a "$W/registry-storage" /mnt/registry-storage
check registry-up start_registry
# the proxy is test code: the host's test classes, no CDS archive (that one is for the jar)
"$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$CLASSES" dev.lazypull.testing.FaultProxy \
  --listen 127.0.0.1:5000 --upstream 127.0.0.1:5001 --seed 7 --rate 0 --slow-ms 400 >/tmp/proxy.log 2>&1 &
PROXY_PID=$!
proxy_up() {
  for i in $(seq 1 150); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:5000/v2/)" = 200 ] && return 0
    sleep 0.2
  done
  return 1
}
check proxy-up proxy_up

echo "### daemon, mounts: $IMAGE through the proxy, and a local layout image"
"$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" daemon --config "$W/lazypull.toml" --cache-dir /mnt/cache \
  --state-dir /mnt/state --socket "$SOCK" >/tmp/daemon.log 2>&1 &
DAEMON=$!
check daemon-ready wait_for_daemon
check mount lp mount --socket "$SOCK" "$IMAGE" /tmp/mnt/app
check mount-local lp mount --socket "$SOCK" "oci:$W/local:v1" /tmp/mnt/local

echo "### faults on: half of the blob responses damaged; three waves of readers on cold files; the registry"
echo "### stopped under the second wave and restarted"
fault_rate 0.5
t0=$(now_ms)
# reader NAME FILE: md5sum of FILE bounded by timeout; exit status and output kept for the checks below
reader() {
  (cd "$(dirname "$2")" && timeout "$READER_TIMEOUT" md5sum "$(basename "$2")" >"/tmp/readers/$1.out" \
    2>"/tmp/readers/$1.err"; echo $? >"/tmp/readers/$1.rc") &
}
# wave N FIRST LAST: readers on files fFIRST..fLAST, each cold (no other wave reads them)
wave() { for i in $(seq "$2" "$3"); do reader "wave$1-f$i" "/tmp/mnt/app/f$i.bin"; done; }
wave 1 0 3
# wave 2 once the faults have bitten wave 1's fetches, with the registry up (or wave 1 ended unscathed: with
# half of the responses damaged that is unlikely, but not an error)
wave_1_under_faults() { [ "$(faults_injected)" -gt 0 ] || [ "$(ls /tmp/readers/wave1-*.rc 2>/dev/null | wc -l)" -ge 4 ]; }
check wave-1-under-faults wait_until 120 wave_1_under_faults
# The registry stops under the second wave. Its readers end at their first EIO, which half of the responses
# cause, so a wave left running could be over before the registry stops. So the proxy is frozen (SIGSTOP) while
# wave 2 starts: fetches cannot complete, and once one of its readers waits on a READ the registry stops; then
# the proxy resumes and forwards what it holds to the stopped registry.
down_before=$(upstream_errors)
kill -STOP "$PROXY_PID"
wave 2 4 7
check wave-2-reads-in-flight wait_ondemand_waiters 1 '^md5sum f[4-7][.]bin' 120
kill "$REG_PID"; wait "$REG_PID" 2>/dev/null
kill -CONT "$PROXY_PID"
echo "registry stopped at $(( $(now_ms) - t0 )) ms"
# while it is down the local image is served
check local-md5-while-registry-down bash -c "cd /tmp/mnt/local && timeout 120 md5sum --quiet -c '$W/local.md5'"
# the registry comes back once a fetch has found it down (the proxy counts the requests it could not forward)
outage_seen() { [ "$(upstream_errors)" -gt "$down_before" ]; }
check registry-outage-seen wait_until 120 outage_seen
check registry-restarted start_registry
echo "registry back at $(( $(now_ms) - t0 )) ms"
wave 3 8 11
wait_readers() {
  local n
  n=$(ls /tmp/mnt/app | wc -l)
  for i in $(seq 1 $((READER_TIMEOUT + 30))); do
    [ "$(ls /tmp/readers/*.rc 2>/dev/null | wc -l)" -ge "$n" ] && return 0
    sleep 1
  done
  return 1
}
check readers-ended wait_readers
result fault-phase-ms $(( $(now_ms) - t0 ))
ok=0 eio=0 hung=0 wrong=0 other=0
for rc in /tmp/readers/*.rc; do
  name=$(basename "$rc" .rc); code=$(cat "$rc")
  if [ "$code" = 0 ]; then
    if grep -qFf "/tmp/readers/$name.out" "$W/app.md5"; then ok=$((ok + 1)); else wrong=$((wrong + 1)); fi
  elif [ "$code" = 124 ]; then
    hung=$((hung + 1))
  elif grep -q 'Input/output error' "/tmp/readers/$name.err"; then
    eio=$((eio + 1))
  else
    other=$((other + 1))
  fi
  echo "$name: rc=$code $(cat "/tmp/readers/$name.out" "/tmp/readers/$name.err" | tr '\n' ' ')"
done
result readers-correct "$ok"
result readers-eio "$eio"
result readers-hung "$hung"
result readers-wrong-bytes "$wrong"
check no-reader-hung test "$hung" -eq 0
check no-wrong-bytes test "$wrong" -eq 0
check every-reader-correct-or-eio test "$other" -eq 0
check faults-bit test "$eio" -gt 0
curl -s http://127.0.0.1:5000/__fault/stats | tr '\n' ' ' | sed 's/^/faults injected: /'; echo
result faults-injected "$(faults_injected)"

echo "### faults off: every file reads back correctly"
fault_rate 0
t1=$(now_ms)
check md5-after-recovery bash -c "cd /tmp/mnt/app && timeout 300 md5sum --quiet -c '$W/app.md5'"
result recovery-read-ms $(( $(now_ms) - t1 ))
sync; echo 3 >/proc/sys/vm/drop_caches
check md5-after-drop-caches bash -c "cd /tmp/mnt/app && timeout 120 md5sum --quiet -c '$W/app.md5'"
check local-md5 bash -c "cd /tmp/mnt/local && timeout 120 md5sum --quiet -c '$W/local.md5'"
lp status --json --socket "$SOCK" >/tmp/status.json
for k in reads readsOk readsFailed readsTimedOut integrityMismatchesOrigin chunksVerified; do
  result "daemon-$k" "$(awk -v k="\"$k\"" '$1 == k { gsub(/,/, "", $3); print $3; exit }' /tmp/status.json)"
done
result kernel-eio-messages "$(dmesg | grep -c 'prepare_ondemand_read failed\|fscache_read failed' || true)"
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
