#!/usr/bin/env bash
# The main job on this host's own kernel (Linux >= 6.14: fanotify pre-content events on an EROFS file-backed
# mount; no QEMU): pack a real directory tree (default: this machine's JDK 17) into a lazypull image, push it to
# Debian's docker-registry on 127.0.0.1, start the daemon with the fanotify front end, mount the image by its
# registry reference, run `java -version` from the lazy mount, and report what was fetched against the image's
# size; then read every file against the source, drop the page cache and show that a warm re-read fetches
# nothing. Everything it starts (registry, daemon, the daemon's fd keeper, the mount) is stopped and its temp dir
# removed when it ends, also on failure or Ctrl-C.
#
# Usage (as root): native-stubs/host-demo.sh [SOURCE_DIR]
# Works from any checkout location. Installs what it needs (.ci/install-deps) and builds target/lazypull.jar if
# it is missing. Scratch space: a new directory under $LAZYPULL_DEMO_DIR (default /var/tmp), which must be on
# ext4, xfs or btrfs (the cache files get fanotify marks; tmpfs refuses them). LAZYPULL_DEMO_KEEP=1 keeps it.
set -euo pipefail
export LC_ALL=C # one decimal point for $EPOCHREALTIME, awk and the tools' output
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SRC=$(realpath -e "${1:-/usr/lib/jvm/java-17-openjdk-amd64}")
TAG=demo/jdk:17

T0=$EPOCHREALTIME
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%5.1fs", b - a }'; }
step() { echo "[$(elapsed)] $*"; }
note() { echo "          $*"; }
die() { echo "[$(elapsed)] FAILED: $*" >&2; exit 1; }
ms_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
# Reads through the mount get a time limit: if the daemon died, the fd keeper still holds its fanotify group and a
# cold read would wait for a successor; the demo fails instead of waiting for ever.
READ_LIMIT=${LAZYPULL_DEMO_READ_LIMIT:-120}
mib() { awk -v n="$1" 'BEGIN { printf "%.1f MiB", n / 1048576 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f %%", b ? 100 * a / b : 0 }'; }
# Runs a command that takes a while, printing a line every 10 s so the terminal never goes silent.
long() {
	local what=$1; shift
	( while sleep 10; do echo "[$(elapsed)]   ... still $what"; done ) &
	local ticker=$!
	local rc=0
	"$@" || rc=$?
	kill "$ticker" 2>/dev/null; wait "$ticker" 2>/dev/null || true
	return $rc
}

if [[ $(id -u) != 0 ]]; then
	echo "run as root: the daemon marks files with fanotify and lazypull mount calls mount(2)" >&2
	exit 1
fi
[[ -d $SRC ]] || { echo "$SRC is not a directory" >&2; exit 1; }
step "lazypull host demo: kernel $(uname -r), source tree $SRC"
read -r kmaj kmin < <(uname -r | awk -F. '{ print $1 + 0, $2 + 0 }')
if ((kmaj < 6 || (kmaj == 6 && kmin < 14))); then
	die "the fanotify front end needs Linux >= 6.14 (pre-content events); for the fscache front end under QEMU" \
		"run native-stubs/vm/lazypull-demo.sh"
fi

step "checking the Debian packages it needs (.ci/install-deps; a fresh machine downloads them first) ..."
"$REPO/.ci/install-deps" | sed 's/^/          /'
JAR=$REPO/target/lazypull.jar
if [[ ! -s $JAR ]]; then
	step "building target/lazypull.jar (mvn package: a minute or two the first time, when Maven downloads its plugins) ..."
	# mvn -q prints only errors (and colour resets, dropped here).
	build() { (cd "$REPO" && mvn -B -q -ntp package -DskipTests 2>&1 | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^$/d'); }
	long "building" build
	[[ -s $JAR ]] || die "mvn package did not produce $JAR"
	step "built $JAR"
fi
lp() { java -jar "$JAR" "$@"; }
lpq() { java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -jar "$JAR" "$@"; } # short CLI calls: start fast

# Scratch space on a filesystem that takes pre-content marks.
BASE=${LAZYPULL_DEMO_DIR:-/var/tmp}
fs=$(stat -f -c %T "$BASE")
case $fs in
	ext2/ext3 | xfs | btrfs) ;;
	*) die "$BASE is on $fs: the cache needs ext4, xfs or btrfs (set LAZYPULL_DEMO_DIR to a directory on one)" ;;
esac
W=$(mktemp -d "$BASE/lazypull-demo.XXXXXX")
mkdir -p "$W"/{registry,cache,state,run,images.d,mnt}
SOCK=$W/run/lazypull.sock
REG_PID= DAEMON_PID= MOUNTED=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[[ $rc == 0 ]] || echo "[$(elapsed)] cleaning up after a failure (exit $rc)" >&2
	if [[ $rc != 0 ]]; then # what was there when it failed
		if [[ -n $DAEMON_PID ]]; then
			kill -0 "$DAEMON_PID" 2>/dev/null && echo "--- the daemon (pid $DAEMON_PID) is running" >&2 ||
				echo "--- the daemon (pid $DAEMON_PID) has exited" >&2
		fi
		[[ -z $MOUNTED ]] || echo "--- the mount: $(findmnt -n -o FSTYPE,SOURCE "$W/mnt" || echo "gone")" >&2
	fi
	if mountpoint -q "$W/mnt"; then # also when stopped while lazypull mount was still running
		lpq umount --socket "$SOCK" "$W/mnt" 2>/dev/null || umount -l "$W/mnt" || true
	fi
	if [[ -n $DAEMON_PID ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
		kill "$DAEMON_PID"
		for _ in $(seq 150); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$DAEMON_PID" 2>/dev/null || true
	fi
	# A daemon that did not stop cleanly leaves its fd keeper (it holds the fanotify group): end it too.
	local keeper
	if [[ -f $W/run/keeper-fanotify ]] && keeper=$(cut -d' ' -f1 "$W/run/keeper-fanotify") &&
		grep -qs FdKeeper "/proc/$keeper/cmdline"; then
		kill "$keeper" 2>/dev/null || true
	fi
	[[ -z $REG_PID ]] || { kill "$REG_PID" 2>/dev/null; wait "$REG_PID" 2>/dev/null || true; }
	if [[ $rc != 0 ]]; then
		[[ ! -s $W/daemon.log ]] || { echo "--- daemon log (last 20 lines)"; tail -n 20 "$W/daemon.log"; } >&2
		[[ ! -s $W/registry.log ]] ||
			{ echo "--- registry access log (last 5 lines)"; grep -v '^time=' "$W/registry.log" | tail -n 5; } >&2
	fi
	if [[ ${LAZYPULL_DEMO_KEEP:-0} == 1 ]]; then
		echo "[$(elapsed)] kept $W"
	elif mountpoint -q "$W/mnt"; then
		echo "[$(elapsed)] $W/mnt is still mounted: left $W in place" >&2
	else
		rm -rf "$W"
	fi
	[[ $rc != 0 ]] || step "cleaned up: mount, daemon, registry and $W are gone"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The registry: Debian's docker-registry with a config of our own (the shipped one breaks auth), on a port the
# kernel picks, with an access log that says how many bytes each blob GET sent.
step "starting docker-registry on 127.0.0.1 (private config and storage) ..."
cat >"$W/registry.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $W/registry
http:
  addr: 127.0.0.1:0
YML
docker-registry serve "$W/registry.yml" >"$W/registry.log" 2>&1 &
REG_PID=$!
PORT=
for _ in $(seq 100); do
	PORT=$(sed -n 's/.*msg="listening on 127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$W/registry.log" | head -n1)
	[[ -z $PORT ]] || break
	kill -0 "$REG_PID" 2>/dev/null || die "docker-registry exited: $(tail -n 3 "$W/registry.log")"
	sleep 0.1
done
[[ -n $PORT ]] || die "docker-registry did not say which port it listens on"
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v2/" || die "docker-registry does not answer on 127.0.0.1:$PORT"
REF=127.0.0.1:$PORT/$TAG
step "registry up on 127.0.0.1:$PORT"

src_bytes=$(find "$SRC" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
step "packing $SRC ($(mib "$src_bytes")) into a lazypull image and pushing it to $REF ..."
t=$EPOCHREALTIME
long "packing" lp pack "$SRC" --push "$REF" --plain-http --scratch-dir "$W" >/dev/null 2>"$W/pack.log" ||
	die "lazypull pack: $(tail -n 5 "$W/pack.log")"
note "$(tail -n 1 "$W/pack.log" | sed 's/^\[ *[0-9.]*s\] //') ($(ms_since "$t") ms)"
manifest=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://127.0.0.1:$PORT/v2/${TAG%%:*}/manifests/${TAG#*:}")
image_bytes=$(grep -oE '"size" *: *[0-9]+' <<<"$manifest" | grep -oE '[0-9]+$' | awk '{ s += $1 } END { print s }')
note "the image in the registry: $(mib "$image_bytes") (bootstrap + data blobs, zstd chunks, + config)"
# What the mount must show, to compare with: every regular file's md5, every entry's type, mode, owner and target.
(cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 md5sum) >"$W/tree.md5"
meta() { (cd "$1" && find . -mindepth 1 \( -type f -printf '%y %m %U:%G %s %Ts %P\n' \) -o \
	\( ! -type f -printf '%y %m %U:%G %l %P\n' \) | sort); }
meta "$SRC" >"$W/tree.meta"

# The daemon: fanotify front end, private cache/state/socket; plain HTTP for the loopback registry by config.
cat >"$W/lazypull.toml" <<TOML
[daemon]
images_dir = "$W/images.d"

[[registry.host]]
name = "127.0.0.1:$PORT"
plain_http = true
TOML
step "starting the lazypull daemon (--frontend fanotify, cache in $W/cache) ..."
setsid java -jar "$JAR" daemon --frontend fanotify --config "$W/lazypull.toml" --cache-dir "$W/cache" \
	--state-dir "$W/state" --socket "$SOCK" </dev/null >"$W/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 300); do
	[[ -S $SOCK ]] && break
	kill -0 "$DAEMON_PID" 2>/dev/null || die "the daemon exited: $(grep -v '^\s*at ' "$W/daemon.log" | tail -n 3)"
	sleep 0.1
done
[[ -S $SOCK ]] || die "the daemon did not open its control socket within 30 s"
status() { lpq status --socket "$SOCK" --json; }
stat_of() { awk -v k="\"$1\"" '$1 == k { gsub(/,/, "", $3); print $3; exit }' <<<"$2"; }
st=$(status)
[[ $(grep -o '"frontend" : "[a-z]*"' <<<"$st") == *fanotify* ]] || die "the daemon is not on the fanotify front end"
step "daemon ready (pid $DAEMON_PID, fanotify front end; started by hand, so an fd keeper holds its fanotify group)"

served() { # blob bytes and blob GETs the registry has sent so far (its access log: status 200/206 and body size)
	awk '$6 == "\"GET" && $7 ~ /\/blobs\/sha256:/ && ($9 == 200 || $9 == 206) { s += $10; n++ }
		END { printf "%d %d\n", s, n }' "$W/registry.log"
}

step "mounting $REF at $W/mnt (lazypull mount: the daemon fetches and checks the bootstrap, marks the cache file) ..."
t=$EPOCHREALTIME
lpq mount --socket "$SOCK" "$REF" "$W/mnt" | sed 's/^/          /'
MOUNTED=1
read -r b n < <(served)
note "mounted in $(ms_since "$t") ms (including the CLI's JVM start): $(findmnt -n -o FSTYPE,SOURCE "$W/mnt")"
note "so far the registry has sent $(mib "$b") in $n blob GETs (the bootstrap)"

step "running java -version from the lazily mounted JDK ..."
t=$EPOCHREALTIME
java_rc=0
timeout "$READ_LIMIT" "$W/mnt/bin/java" -version >"$W/java-version.txt" 2>&1 || java_rc=$?
sed 's/^/          | /' "$W/java-version.txt"
((java_rc == 0)) || die "java -version from the lazy mount failed (exit $java_rc; 124: not done in ${READ_LIMIT} s)"
java_ms=$(ms_since "$t")
read -r cold_b n < <(served)
st=$(status)
note "took $java_ms ms; the registry sent $(mib "$cold_b") in $n blob GETs:" \
	"$(pct "$cold_b" "$image_bytes") of the image's $(mib "$image_bytes")"
note "(daemon: $(stat_of reads "$st") fanotify events, $(stat_of fetches "$st") fetches," \
	"$(mib "$(stat_of bytesDecompressed "$st")") written to the cache after decompression)"

step "reading every file through the mount and comparing with $SRC ..."
t=$EPOCHREALTIME
(cd "$W/mnt" && timeout "$READ_LIMIT" md5sum --quiet -c "$W/tree.md5") ||
	die "reading through the mount failed (or took over ${READ_LIMIT} s), or a file differs from the source"
meta "$W/mnt" | diff -u "$W/tree.meta" - >"$W/meta.diff" || die "metadata differs: $(head -n 20 "$W/meta.diff")"
read_ms=$(ms_since "$t")
read -r all_b n < <(served)
note "all $(wc -l <"$W/tree.md5") files match (contents; every entry's type, mode, owner, size, mtime, link" \
	"target) in $read_ms ms"
twice="no byte fetched twice"
((all_b <= image_bytes)) || twice="$((all_b - image_bytes)) bytes more than the image"
note "the registry has now sent $(mib "$all_b") in $n blob GETs: $(pct "$all_b" "$image_bytes") of the image ($twice)"

step "dropping the page cache (echo 3 > /proc/sys/vm/drop_caches) and reading every file again ..."
mountpoint -q "$W/mnt" || die "$W/mnt is no longer mounted"
st0=$(status)
sync
echo 3 >/proc/sys/vm/drop_caches
t=$EPOCHREALTIME
mountpoint -q "$W/mnt" || die "$W/mnt is no longer mounted"
(cd "$W/mnt" && timeout "$READ_LIMIT" md5sum --quiet -c "$W/tree.md5") ||
	die "the warm re-read failed (or took over ${READ_LIMIT} s), or a file differs from the source"
warm_ms=$(ms_since "$t")
read -r warm_b warm_n < <(served)
st=$(status)
events=$(($(stat_of reads "$st") - $(stat_of reads "$st0")))
fetched=$(($(stat_of bytesFetched "$st") - $(stat_of bytesFetched "$st0")))
note "all files match again, read in $warm_ms ms from the local cache files"
note "during the warm re-read the registry sent $((warm_b - all_b)) bytes in $((warm_n - n)) blob GETs;" \
	"the daemon fetched $fetched bytes"
if ((events == 0)); then
	note "and no fanotify event reached the daemon (complete cache files are unmarked)"
else
	note "($events fanotify events still reached the daemon and were allowed at once from its chunk bitmap)"
fi

step "unmounting ..."
lpq umount --socket "$SOCK" "$W/mnt"
MOUNTED=
echo
echo "SUMMARY (kernel $(uname -r), fanotify front end): $REF, $(mib "$image_bytes") in the registry" \
	"($(mib "$src_bytes") of files)"
echo "  java -version from the fresh lazy mount: $java_ms ms, fetched $(mib "$cold_b")" \
	"($(pct "$cold_b" "$image_bytes") of the image)"
echo "  reading every file: $read_ms ms, all match the source; $(mib "$all_b") fetched in all"
echo "  warm re-read after drop_caches: $warm_ms ms, $((warm_b - all_b)) bytes fetched"
echo "  total time $(elapsed)"
