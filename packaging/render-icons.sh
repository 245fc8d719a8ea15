#!/usr/bin/env bash
# Renders the icons from the one SVG we drew (resources/icons/hicolor/scalable/apps/): the hicolor
# PNG sizes for Linux, packaging/windows/framesmith.ico and packaging/macos/framesmith.icns.
# The results are committed, so building and packaging need no SVG renderer; run this after
# editing the SVG. Needs rsvg-convert (Debian: librsvg2-bin) and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
id=io.github.framesmith.Framesmith
svg=resources/icons/hicolor/scalable/apps/$id.svg
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sizes=()
for n in 16 22 24 32 48 64 128 256 512; do
  dir=resources/icons/hicolor/${n}x${n}/apps
  mkdir -p "$dir"
  rsvg-convert --width "$n" --height "$n" --keep-aspect-ratio --output "$dir/$id.png" "$svg"
  sizes+=("$n=$dir/$id.png")
done
rsvg-convert --width 1024 --height 1024 --output "$tmp/1024.png" "$svg"
python3 packaging/pack-icons.py packaging/windows/framesmith.ico packaging/macos/framesmith.icns \
  "${sizes[@]}" "1024=$tmp/1024.png"
echo "rendered ${#sizes[@]} PNG sizes, framesmith.ico and framesmith.icns from $svg"
