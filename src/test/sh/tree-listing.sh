#!/bin/bash
# tree-listing.sh DIR [--links-in-tree]: a canonical listing of a tree, to compare a source tree with a mounted image of it byte
# for byte. One line per entry, sorted by path: path, type, mode, uid, gid, mtime (ns), size (not for
# directories: file systems differ), link count, hard-link group (the first path with that inode), symlink
# target, md5 of the content, device major:minor, xattrs (name=hex, sorted). Files over 1 GiB are summed over five 1 MiB windows
# (0, 1 GiB, 2 GiB, 4 GiB - 1 MiB, the end) so sparse multi-GiB files stay cheap to compare.
# --links-in-tree: the link count of a non-directory is the number of its paths inside DIR — what an image of
# DIR can hold — rather than st_nlink, which also counts links from outside (dpkg files hard-linked into perf's
# ~/.debug build-id cache have st_nlink 2). Use it for source trees, never for the mounted image under test.
# Names must not contain newlines, tabs or backslashes (md5sum/getfattr would escape them).
set -euo pipefail
in_tree=0
if [[ ${2:-} == --links-in-tree ]]; then in_tree=1; fi
cd "$1"
export LC_ALL=C
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
find . -printf '%p\t%y\t%#m\t%U\t%G\t%T@\t%s\t%n\t%i\t%l\n' | sort -t$'\t' -k1,1 > "$tmp/meta"
find . -type f -size -1025M -print0 | xargs -0 -r md5sum | awk '{ s = $1; $1 = ""; sub(/^ +/, ""); print $0 "\t" s }' > "$tmp/sums"
find . -type f -size +1024M -print0 | while IFS= read -r -d '' p; do
  size=$(stat -c %s "$p")
  s=$(for off in 0 1024 2048 4095 $(( size / 1048576 - 1 )); do
        dd if="$p" bs=1M skip="$off" count=1 status=none | md5sum | cut -c1-32; done | md5sum | cut -c1-32)
  printf '%s\t%s\n' "$p" "$s"
done >> "$tmp/sums"
find . \( -type c -o -type b \) -exec stat -c '%n	%t:%T' {} + > "$tmp/rdev"
getfattr -R -h -d -m - -e hex --absolute-names . 2>/dev/null |
  awk '/^# file: / { f = substr($0, 9); next } /./ { print f "\t" $0 }' | sort > "$tmp/xattrs" || true
awk -F'\t' -v in_tree="$in_tree" 'BEGIN { OFS = "\t" }
  FILENAME == ARGV[1] { sum[$1] = $2; next }
  FILENAME == ARGV[2] { x[$1] = x[$1] $2 " "; next }
  FILENAME == ARGV[3] { rdev[$1] = $2; next }
  pass == 1 { if ($2 != "d") paths[$9]++; next }
  {
    if (in_tree && $2 != "d") $8 = paths[$9]
    if ($2 == "d") { $7 = "-"; $9 = "-" } else { if (!($9 in first)) first[$9] = $1; $9 = first[$9] }
    print $0, ($1 in sum ? sum[$1] : "-"), ($1 in rdev ? rdev[$1] : "-"), x[$1]
  }' "$tmp/sums" "$tmp/xattrs" "$tmp/rdev" pass=1 "$tmp/meta" pass=2 "$tmp/meta"
