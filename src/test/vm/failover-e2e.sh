#!/bin/bash
# Daemon failover in the real kernel (6.8+ semantics), run inside the QEMU guest by FailoverKernelIT.
# A supervisor standing in for systemd's fd store holds the /dev/cachefiles fd; we kill -9 the daemon while
# readers are blocked on cold reads (their READs sent and unanswered); the restarted daemon takes the fd back, writes `restore`, re-answers the
# re-sent OPENs from its persisted catalog and serves the re-delivered READs: every reader must finish with
# correct bytes and no EIO.
# Usage: failover-e2e.sh WORKDIR SUPERVISOR
set -uo pipefail
W=$1 SUP=$2
. "$(dirname "$0")/lib.sh"
mkdir -p /mnt/cache /mnt/state /tmp/mnt/app
trap 'echo "--- daemon log (tail)"; tail -n 60 /tmp/daemon.log 2>/dev/null' EXIT

"$SUP" --restarts 3 --notify-socket /run/lp-notify.sock -- "$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" daemon \
  --config "$TEST_CONFIG" --cache-dir /mnt/cache --state-dir /mnt/state --socket "$SOCK" >/tmp/daemon.log 2>&1 &
SUPERVISOR=$!
check daemon-ready wait_for_daemon
check devnode-parked-in-fd-store grep -q "@@SUPERVISOR stored name=cachefiles" /tmp/daemon.log
check ready-notified grep -q "@@SUPERVISOR ready" /tmp/daemon.log
check mount lp mount --socket "$SOCK" "oci:$W/layout:big" /tmp/mnt/app
first=$(sed -n 's/^@@SUPERVISOR started pid=\([0-9]*\) run=0.*/\1/p' /tmp/daemon.log)
result first-daemon-pid "$first"

# Several readers on cold data, in parallel, and the daemon must die while their READs are in flight. So it is
# frozen first (SIGSTOP: it answers nothing more, whatever it was doing), the readers start, and the kill waits
# until the kernel shows every reader blocked on a request the daemon has not answered.
files=$(cd /tmp/mnt/app && ls) # listed before the freeze: a directory READ would block too
nfiles=$(echo "$files" | wc -w)
kill -STOP "$first"
for f in $files; do
  (cd /tmp/mnt/app && md5sum "$f" >"/tmp/out.$f" 2>"/tmp/err.$f"; echo $? >"/tmp/rc.$f") &
done
check reads-in-flight-at-kill wait_ondemand_waiters "$nfiles" '^md5sum '
result readers-blocked-at-kill "$(ondemand_waiters '^md5sum ')"
check readers-still-running test -n "$(jobs -r)"
kill -9 "$first"
echo "killed daemon $first at $(date +%T.%N)"
wait_until_restarted() { for i in $(seq 120); do grep -q "took over the bound devnode" /tmp/daemon.log && return 0; sleep 1; done; return 1; }
check daemon-restarted-and-took-over wait_until_restarted
check readers-finish bash -c 'for i in $(seq 300); do [ "$(ls /tmp/rc.* 2>/dev/null | wc -l)" -ge "$(ls /tmp/mnt/app | wc -l)" ] && exit 0; sleep 1; done; exit 1'
ok=1
for f in $(cd /tmp/mnt/app && ls); do
  rc=$(cat "/tmp/rc.$f"); echo "$f: rc=$rc $(cat "/tmp/out.$f") $(cat "/tmp/err.$f")"
  [ "$rc" = 0 ] || ok=0
done
check every-reader-succeeded test "$ok" = 1
cat /tmp/out.* >/tmp/all.md5
check bytes-correct bash -c "cd /tmp/mnt/app && diff <(sort '$W/big.md5') <(sort /tmp/all.md5)"
eio=$(dmesg | grep -c "prepare_ondemand_read failed" || true)
result kernel-eio-messages "$eio"
check no-eio-in-kernel-log test "$eio" -eq 0
second_reads=$(stat_field reads)
result reads-served-after-restart "$second_reads"
check restarted-daemon-served-reads test "$second_reads" -gt 0
check restarted-daemon-no-failed-reads test "$(stat_field readsFailed)" -eq 0
sync; echo 3 >/proc/sys/vm/drop_caches
check md5-after-drop-caches bash -c "cd /tmp/mnt/app && md5sum --quiet -c '$W/big.md5'"
umount /tmp/mnt/app
kill "$SUPERVISOR" # like `systemctl stop`: the supervisor forwards SIGTERM and does not restart
wait "$SUPERVISOR"
echo "FAILS=$FAILS"
exit $(( FAILS > 0 ))
