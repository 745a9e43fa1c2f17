#!/usr/bin/env bash
# The main job, for real. On the host: pack a real directory tree (default: this machine's JDK 17) into a lazypull
# image with `lazypull pack` and push it with `lazypull copy` into a Debian docker-registry's storage. Then boot
# Debian's 6.12 kernel (fscache on-demand modules) under QEMU; inside it run that registry on loopback, the
# lazypull daemon, `lazypull mount REGISTRY/REPO:TAG`, and start `java -version` from the lazily mounted JDK —
# only the ranges the JVM touches are fetched — then read every file, compare with the source, and show that
# warm re-reads never reach the daemon.
# Works from any checkout location (vm-run.sh shares the checkout into the guest if the guest would hide it).
# Every step says what it does and how long it took; the slow ones say so before they start.
# Usage: native-stubs/vm/lazypull-demo.sh [SOURCE_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SRC=$(realpath -e "${1:-/usr/lib/jvm/java-17-openjdk-amd64}")

T0=$SECONDS
step() { echo "demo [$((SECONDS - T0))s]: $*"; }

[[ $(id -u) == 0 ]] || { echo "run as root (the guest needs the host root readable over 9p)" >&2; exit 1; }
step "checking the Debian packages the demo needs"
"$REPO/.ci/install-deps"
cd "$REPO"
if [[ ! -s target/lazypull.jar ]]; then
	step "building target/lazypull.jar (mvn package, about half a minute) ..."
	mvn -B -q -ntp package -DskipTests
	step "built target/lazypull.jar"
fi
JAR=$REPO/target/lazypull.jar
lp() { java -jar "$JAR" "$@"; }

W=$REPO/target/demo
rm -rf "$W"; mkdir -p "$W/registry-storage"
step "packing $SRC ($(du -sh "$SRC" | cut -f1)) into a lazypull image (EROFS bootstrap + data blobs + chunk digest tables) ..."
lp pack "$SRC" --output "oci:$W/layout:demo" >/dev/null
lp inspect "oci:$W/layout:demo" | head -n 12
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 md5sum) >"$W/tree.md5"

cat >"$W/registry.yml" <<YML
version: 0.1
log: { level: warn }
storage:
  filesystem: { rootdirectory: /mnt/registry-storage }
http: { addr: 127.0.0.1:5000 }
YML
step "pushing it into a registry's storage (docker-registry on the host, briefly) ..."
sed "s#/mnt/registry-storage#$W/registry-storage#; s#127.0.0.1:5000#127.0.0.1:5077#" "$W/registry.yml" >"$W/host-registry.yml"
docker-registry serve "$W/host-registry.yml" >"$W/host-registry.log" 2>&1 &
REG=$!
trap 'kill $REG 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:5077/v2/ 2>/dev/null && break; sleep 0.2; done
lp copy --plain-http "oci:$W/layout:demo" 127.0.0.1:5077/demo/app:v1
kill $REG; wait $REG 2>/dev/null || true; trap - EXIT
step "pushed"
printf '[[registry.host]]\nname = "127.0.0.1:5000"\nplain_http = true\n' >"$W/lazypull.toml"

cat >"$W/guest.sh" <<GUEST
#!/bin/bash
set -uo pipefail
JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
lp() { "\$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$JAR" "\$@"; }
served() { awk '\$6 == "\"GET" && \$7 ~ /\/blobs\// && (\$9 == 200 || \$9 == 206) { s += \$10 } END { print s + 0 }' /tmp/registry.log; }
reads() { lp status --json | awk '\$1=="\"reads\"" {gsub(/,/,"",\$3); print \$3; exit}'; }
T0=\$SECONDS
step() { echo "guest [\$((SECONDS - T0))s]: \$*"; }
mkdir -p /mnt/cache /mnt/state /tmp/app
step "copying the registry's storage ($(du -sh "$W/registry-storage" | cut -f1)) onto the guest's scratch disk (the host root is read-only here) ..."
cp -a "$W/registry-storage" /mnt/registry-storage
sed 's/level: warn/level: info/' "$W/registry.yml" >/tmp/registry.yml
step "starting docker-registry on 127.0.0.1:5000 ..."
docker-registry serve /tmp/registry.yml >/tmp/registry.log 2>&1 &
for i in \$(seq 300); do curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ 2>/dev/null && break; sleep 0.2; done
curl -fsS -o /dev/null http://127.0.0.1:5000/v2/ || { step "the registry did not come up"; cat /tmp/registry.log; exit 1; }
step "starting the lazypull daemon (JVM start-up under emulation takes a while) ..."
"\$JAVA" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$JAR" daemon --config "$W/lazypull.toml" \\
  --cache-dir /mnt/cache --state-dir /mnt/state >/tmp/daemon.log 2>&1 &
DAEMON=\$!
# Its control socket appears once it is set up: cheap to poll, where a CLI JVM per poll would compete with the
# daemon's own start-up for the emulated CPUs.
for i in \$(seq 900); do
  if [ -S /run/lazypull/lazypull.sock ] || ! kill -0 \$DAEMON 2>/dev/null; then break; fi
  sleep 0.2
done
lp status >/dev/null 2>&1 || { step "the daemon did not come up"; cat /tmp/daemon.log; exit 1; }
step "daemon ready"
image_bytes=\$(du -sb /mnt/registry-storage/docker/registry/v2/blobs | cut -f1)
echo "== lazy mount of 127.0.0.1:5000/demo/app:v1 (registry holds \$image_bytes bytes)"
t0=\$(date +%s%3N)
lp mount 127.0.0.1:5000/demo/app:v1 /tmp/app || { cat /tmp/daemon.log; exit 1; }
echo "mounted in \$(( \$(date +%s%3N) - t0 )) ms (including the CLI's JVM start); registry served \$(served) bytes"
echo "== java -version from the lazily mounted JDK"
t0=\$(date +%s%3N); /tmp/app/bin/java -version; echo "took \$(( \$(date +%s%3N) - t0 )) ms"
echo "registry served \$(served) of \$image_bytes bytes so far"
echo "== read every file and compare with the source"
t0=\$(date +%s%3N)
(cd /tmp/app && md5sum --quiet -c "$W/tree.md5") && echo "all files match the source" || exit 1
echo "read in \$(( \$(date +%s%3N) - t0 )) ms; registry served \$(served) bytes in all"
echo "== drop the page cache and read again: no READ reaches the daemon"
before=\$(reads)
sync; echo 3 >/proc/sys/vm/drop_caches
(cd /tmp/app && md5sum --quiet -c "$W/tree.md5") && echo "all files match again"
echo "READs during the warm re-read: \$(( \$(reads) - before ))"
lp status | head -n 4
lp umount /tmp/app
GUEST
chmod +x "$W/guest.sh"
step "preparing the guest's kernel (the first time: downloads Debian's 6.12 kernel and rebuilds cachefiles/erofs, 2-3 minutes) ..."
"$HERE/vm-prepare.sh" --quiet >/dev/null
step "booting the QEMU guest (TCG, no KVM) and running the demo in it ..."
exec "$HERE/vm-run.sh" --timeout 1800 "$W/guest.sh"
