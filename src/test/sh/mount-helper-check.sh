#!/bin/bash
# mount-helper-check.sh HELPER_DIR SOCKET IMAGE MOUNTPOINT MD5_LIST: mount(8) with the lazypull mount helper, for
# real, against the daemon listening on SOCKET. Run it in a private mount namespace (unshare --mount
# --propagation private): it lays HELPER_DIR (holding mount.lazypull) over /usr/sbin with a read-only overlay, so
# mount(8) finds /sbin/mount.lazypull without the host's /sbin being touched. Prints "ok: …" per check; exits
# non-zero at the first failed one.
set -uo pipefail
helper_dir=$1 socket=$2 image=$3 mnt=$4 md5=$5
fail() { echo "FAILED: $*"; findmnt "$mnt"; exit 1; }
mounted() { [[ $(findmnt -rn -M "$mnt" -o FSTYPE | tail -n 1) == erofs ]]; }

mount -t overlay overlay -o "lowerdir=$helper_dir:/usr/sbin" /usr/sbin || fail "overlay of $helper_dir on /usr/sbin"
[[ -x /sbin/mount.lazypull ]] || fail "/sbin/mount.lazypull is not visible"

out=$(mount -t lazypull -o "ro,_netdev,socket=$socket,domain=helper-test" "$image" "$mnt" 2>&1) ||
	fail "mount -t lazypull: $out"
mounted || fail "no erofs mount at $mnt after mount -t lazypull"
(cd "$mnt" && md5sum --quiet -c "$md5") || fail "contents differ"
echo "ok: mount -t lazypull -o ro,_netdev,socket=…,domain=… IMAGE DIR mounts it, every file reads right ($out)"

out=$(mount -t lazypull -o "socket=$socket,domain=helper-test" "$image" "$mnt" 2>&1)
rc=$?
[[ $rc == 32 && $out == *"already an EROFS mount point"* ]] || fail "a second mount on $mnt: exit $rc: $out"
echo "ok: a second mount on the same directory is refused with exit 32"

umount "$mnt" || fail "umount"
! mounted || fail "still mounted after umount"
echo "ok: umount(8) unmounts it"

out=$(mount -t lazypull -o "socket=$socket,nosuid" "$image" "$mnt" 2>&1)
rc=$?
[[ $rc != 0 && $out == *"unsupported option 'nosuid'"* ]] || fail "an unsupported option: exit $rc: $out"
! mounted || fail "mounted despite an unsupported option"
echo "ok: an option lazypull cannot apply (nosuid) is refused (exit $rc), nothing mounted"

out=$(mount -f -v -t lazypull -o "socket=$socket,prefetch=none,fsid=helper-fake" "$image" "$mnt" 2>&1) ||
	fail "mount -f: $out"
[[ $out == *"mount --socket $socket --prefetch none --fsid helper-fake -- $image $mnt"* ]] ||
	fail "mount -f did not say what it would run: $out"
! mounted || fail "mount -f mounted"
echo "ok: mount -f names the lazypull command it would run and mounts nothing"

printf '%s %s lazypull ro,_netdev,nofail,socket=%s,domain=helper-test,x-systemd.requires=lazypull.service 0 0\n' \
	"$image" "$mnt" "$socket" >"$mnt.fstab"
out=$(mount --fstab "$mnt.fstab" "$mnt" 2>&1) || fail "mount by an fstab line: $out"
mounted || fail "no mount from the fstab line"
(cd "$mnt" && md5sum --quiet -c "$md5") || fail "contents differ (fstab mount)"
umount "$mnt" || fail "umount (fstab mount)"
echo "ok: an fstab line (type lazypull, x-systemd.* and _netdev options) mounts it; umount unmounts it"

missing=oci:$mnt.absent:v1
out=$(mount -t lazypull -o "socket=$socket" "$missing" "$mnt" 2>&1)
rc=$?
[[ $rc == 32 && $out == *"lazypull mount:"* ]] || fail "an unknown image: exit $rc: $out"
! mounted || fail "mounted an unknown image"
echo "ok: an unknown image fails with exit 32 and lazypull's reason, nothing mounted"
