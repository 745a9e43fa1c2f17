#!/usr/bin/env bash
# The main job, for real: boot Debian's 6.12 kernel (fscache on-demand modules) under QEMU, run the lazypull
# daemon in it, lazily mount an EROFS image of this machine's JDK and start `java -version` from the mount —
# only the ranges the JVM touches are fetched — then check every file against the source.
# Usage: native-stubs/vm/lazypull-demo.sh [SOURCE_DIR]   (default: the JDK 17 directory)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SRC=${1:-/usr/lib/jvm/java-17-openjdk-amd64}
SRC=$(realpath -e "$SRC")

[[ $(id -u) == 0 ]] || { echo "run as root (the guest needs the host root readable over 9p)" >&2; exit 1; }
"$REPO/.ci/install-deps"
cd "$REPO"
[[ -s target/lazypull.jar ]] || mvn -B -q -ntp package -DskipTests
JAR=$REPO/target/lazypull.jar

W=$REPO/target/demo
rm -rf "$W"; mkdir -p "$W"
echo "demo: building a 2-layer image of $SRC (bootstrap + one data blob, 1 MiB chunks)"
mkfs.erofs --quiet -T0 --chunksize=1048576 --blobdev="$W/data.blob" "$W/boot.erofs" "$SRC"
java -jar "$JAR" import "$W/boot.erofs" "$W/data.blob" --output "oci:$W/layout:demo" >/dev/null
java -jar "$JAR" inspect "oci:$W/layout:demo"
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 md5sum) >"$W/tree.md5"

cat >"$W/guest.sh" <<GUEST
#!/bin/bash
set -uo pipefail
JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
lp() { "\$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$JAR" "\$@"; }
mkdir -p /mnt/cache /mnt/state /tmp/app
lp daemon --cache-dir /mnt/cache --state-dir /mnt/state >/tmp/daemon.log 2>&1 &
for i in \$(seq 60); do lp status >/dev/null 2>&1 && break; sleep 1; done
echo "== lazy mount"; t0=\$(date +%s%3N)
lp mount "oci:$W/layout:demo" /tmp/app || { cat /tmp/daemon.log; exit 1; }
echo "mounted in \$(( \$(date +%s%3N) - t0 )) ms (including the CLI's JVM start)"
echo "== run java -version from the lazily mounted JDK"
t0=\$(date +%s%3N); /tmp/app/bin/java -version; echo "took \$(( \$(date +%s%3N) - t0 )) ms"
lp status | grep -E 'reads |bytesFetched|bytesWritten|objects'
echo "== read every file and compare with the source"
t0=\$(date +%s%3N)
(cd /tmp/app && md5sum --quiet -c "$W/tree.md5") && echo "all files match the source" || exit 1
echo "read in \$(( \$(date +%s%3N) - t0 )) ms"
lp status | grep -E 'reads |bytesFetched'
echo "== drop the page cache and read again: no READ reaches the daemon"
before=\$(lp status --json | awk '\$1=="\"reads\"" {gsub(/,/,"",\$3); print \$3; exit}')
sync; echo 3 >/proc/sys/vm/drop_caches
(cd /tmp/app && md5sum --quiet -c "$W/tree.md5") && echo "all files match again"
after=\$(lp status --json | awk '\$1=="\"reads\"" {gsub(/,/,"",\$3); print \$3; exit}')
echo "READs during the warm re-read: \$((after - before))"
lp umount /tmp/app
GUEST
chmod +x "$W/guest.sh"
exec "$HERE/vm-run.sh" --timeout 1800 "$W/guest.sh"
