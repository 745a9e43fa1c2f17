#!/bin/sh
# Installs lazypull from this unpacked release: the launcher, the jar, the mount helper (mount -t lazypull),
# systemd units, docs and example config.
# Usage (as root): ./install.sh [--prefix /usr/local] [--sysconfdir /etc] [--sbindir /sbin] [--no-systemd]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=/usr/local
etc=/etc
sbin=/sbin
systemd=1
while [ $# -gt 0 ]; do
  case $1 in
    --prefix) prefix=$2; shift 2 ;;
    --sysconfdir) etc=$2; shift 2 ;;
    --sbindir) sbin=$2; shift 2 ;;
    --no-systemd) systemd=0; shift ;;
    *) echo "usage: install.sh [--prefix DIR] [--sysconfdir DIR] [--sbindir DIR] [--no-systemd]" >&2; exit 2 ;;
  esac
done
install -d "$prefix/bin" "$prefix/lib/lazypull" "$prefix/share/doc/lazypull/examples" "$sbin"
install -m 0644 "$here/lib/lazypull.jar" "$prefix/lib/lazypull/lazypull.jar"
install -m 0755 "$here/bin/lazypull" "$prefix/bin/lazypull"
# Start-up: a class-data archive (AppCDS) of what the short commands load, made with this host's JDK for this jar
# (`lazypull train-cds` runs them once on a scratch tree, offline). Optional: without it they start slower.
# Written under a temporary name and moved into place only once complete: the launcher never sees a half-written one.
jsa=$prefix/lib/lazypull/lazypull.jsa
jsa_tmp=$jsa.tmp.$$
rm -f "$jsa" "$jsa_tmp"
train=$(mktemp -d)
if LAZYPULL_JAVA_OPTS="-XX:ArchiveClassesAtExit=$jsa_tmp -Xlog:cds=off -Xlog:cds+dynamic=off" \
  "$prefix/bin/lazypull" train-cds "$train/scratch" >/dev/null 2>&1 && [ -s "$jsa_tmp" ]; then
  mv -f "$jsa_tmp" "$jsa"
else
  rm -f "$jsa_tmp"
  echo "note: no class-data archive made (commands start a little slower)" >&2
fi
rm -rf "$train"
# mount(8) runs /sbin/mount.TYPE for `mount -t TYPE`, fstab lines and systemd .mount units of that type.
sed "s#/usr/local/bin/lazypull#$prefix/bin/lazypull#g" "$here/sbin/mount.lazypull" >"$sbin/mount.lazypull"
chmod 0755 "$sbin/mount.lazypull"
cp -R "$here/docs/." "$prefix/share/doc/lazypull/"
cp -R "$here/systemd/examples/." "$prefix/share/doc/lazypull/examples/"
install -d -m 0755 "$etc/lazypull" "$etc/lazypull/images.d" "$etc/lazypull/nbd"
[ -e "$etc/lazypull/config.toml" ] || install -m 0644 "$here/systemd/examples/config.toml" "$etc/lazypull/config.toml"
if [ "$systemd" = 1 ]; then
  for unit in lazypull.service lazypull-nbd@.service; do
    sed "s#/usr/local/bin/lazypull#$prefix/bin/lazypull#g; s#/usr/local/share/doc#$prefix/share/doc#g" \
      "$here/systemd/$unit" >"$etc/systemd/system/$unit"
    chmod 0644 "$etc/systemd/system/$unit"
  done
  if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
fi
echo "installed lazypull $("$prefix/bin/lazypull" --version 2>/dev/null | head -n1) under $prefix"
[ "$systemd" = 1 ] && echo "start it with: systemctl enable --now lazypull" || true
