# Shared helpers for scripts that run inside the QEMU guest (chroot into the host root over 9p).
# Output protocol read by the host-side JUnit tests:
#   @@CHECK <name> PASS|FAIL [detail]   one assertion
#   @@RESULT <name> <value>             a measured figure for the summary
JAVA=${JAVA:-/usr/lib/jvm/java-17-openjdk-amd64/bin/java}
# C1 only: the guest runs under TCG, where C2 compilation costs more than it saves for short runs.
JAVA_OPTS=${JAVA_OPTS:--XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k}
# The host-made AppCDS archive (VmHarness): JVM start dominates the guest's many short CLI runs under TCG.
[ -n "${LAZYPULL_CDS:-}" ] && [ -r "$LAZYPULL_CDS" ] && JAVA_OPTS="$JAVA_OPTS -XX:SharedArchiveFile=$LAZYPULL_CDS -Xlog:cds=off"
: "${LAZYPULL_JAR:?LAZYPULL_JAR must point at lazypull.jar}"
SOCK=/run/lazypull/lazypull.sock
# Guest daemons must not read the host's /etc/lazypull (the host root is the guest's root over 9p).
TEST_CONFIG=/tmp/lazypull-test.toml
printf '[daemon]\nimages_dir = "/nonexistent/images.d"\n' >"$TEST_CONFIG"
FAILS=0

lp() { "$JAVA" $JAVA_OPTS -jar "$LAZYPULL_JAR" "$@"; }

check() { # check NAME COMMAND... : runs COMMAND, reports PASS/FAIL
  local name=$1; shift
  if "$@"; then echo "@@CHECK $name PASS"; else echo "@@CHECK $name FAIL"; FAILS=$((FAILS + 1)); fi
}

result() { echo "@@RESULT $1 $2"; }

now_ms() { date +%s%3N; }

# stat_field NAME: one counter from `lazypull status --json`
stat_field() { lp status --json --socket "$SOCK" | awk -v k="\"$1\"" '$1 == k { gsub(/,/, "", $3); print $3; exit }'; }

wait_for_daemon() {
  local i
  for i in $(seq 1 120); do
    if [ -S "$SOCK" ] && lp status --socket "$SOCK" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  return 1
}

# ondemand_waiters [REGEX]: how many processes (with REGEX in their command line, if given) the kernel shows
# blocked on an on-demand request the daemon has not answered yet: cachefiles_ondemand_send_req waits there for
# the daemon's reply to a READ (or an OPEN). Read from /proc/PID/stack (root only), all in one grep: a process
# per task would make one scan take seconds under TCG.
ondemand_waiters() {
  local stack n=0
  for stack in $(grep -ls cachefiles_ondemand_send_req /proc/[0-9]*/stack); do
    [ -z "${1:-}" ] || tr '\0' ' ' <"${stack%/stack}/cmdline" 2>/dev/null | grep -qE "$1" || continue
    n=$((n + 1))
  done
  echo "$n"
}

# wait_ondemand_waiters N [REGEX] [SECONDS]: until at least N such processes wait at once (default 120 s).
wait_ondemand_waiters() {
  local end=$((SECONDS + ${3:-120}))
  until [ "$(ondemand_waiters "${2:-}")" -ge "$1" ]; do
    if [ "$SECONDS" -ge "$end" ]; then
      echo "timed out after ${3:-120} s: $(ondemand_waiters "${2:-}") of $1 processes${2:+ matching $2} blocked on an on-demand request"
      return 1
    fi
    sleep 0.2
  done
}

# wait_until SECONDS COMMAND...: polls COMMAND (every 0.2 s) until it succeeds; says so and fails on timeout.
wait_until() {
  local secs=$1 end=$((SECONDS + $1))
  shift
  until "$@"; do
    if [ "$SECONDS" -ge "$end" ]; then
      echo "timed out after $secs s waiting for: $*"
      return 1
    fi
    sleep 0.2
  done
}
