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
