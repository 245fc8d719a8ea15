#!/usr/bin/env bash
# The desktop integration files are valid and agree with each other and with the project:
# desktop-file-validate, appstreamcli validate, one app id everywhere, every icon size present
# with the right pixel size, and a metainfo <release> for the project's version.
# usage: packaging/check-desktop-files.sh VERSION   (CTest: packaging_metadata, label unit)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: check-desktop-files.sh VERSION}
id=io.github.framesmith.Framesmith
desktop=resources/$id.desktop
metainfo=resources/$id.metainfo.xml
fail() { echo "FAILED: $*" >&2; exit 1; }

for tool in desktop-file-validate appstreamcli; do
  command -v "$tool" >/dev/null ||
    fail "$tool is missing (packaging/debian-test-deps.txt: desktop-file-utils, appstream)"
done
desktop-file-validate "$desktop" || fail "desktop-file-validate $desktop"
appstreamcli validate --no-net "$metainfo" || fail "appstreamcli validate $metainfo"

grep -qx "Icon=$id" "$desktop" || fail "$desktop: Icon= is not $id"
grep -q "<id>$id</id>" "$metainfo" || fail "$metainfo: <id> is not $id"
grep -q "<launchable type=\"desktop-id\">$id.desktop</launchable>" "$metainfo" ||
  fail "$metainfo: <launchable> does not name $id.desktop"
grep -q "<release version=\"$version\"" "$metainfo" ||
  fail "$metainfo: no <release version=\"$version\"> for the project's version"

[ -f "resources/icons/hicolor/scalable/apps/$id.svg" ] || fail "no scalable SVG icon"
for n in 16 22 24 32 48 64 128 256 512; do
  png=resources/icons/hicolor/${n}x${n}/apps/$id.png
  [ -f "$png" ] || fail "missing $png (packaging/render-icons.sh renders it)"
  # PNG: the IHDR chunk's width and height are big-endian at bytes 16..23.
  size=$(od -An -tu1 -j16 -N8 "$png" | awk '{ print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8 }')
  [ "$size" = "${n}x${n}" ] || fail "$png is $size, not ${n}x${n}"
done
for f in packaging/windows/framesmith.ico packaging/macos/framesmith.icns; do
  [ -s "$f" ] || fail "missing $f (packaging/render-icons.sh)"
done
echo "desktop entry, metainfo and icons of $id: valid (version $version)"
