#!/usr/bin/env bash
# Installs the Debian packages (packaging/debian-build-deps.txt), then configures and builds
# Framesmith into build/. Used by both README commands; safe to run again (it only does what is
# missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

pkgs=$(grep -vE '^\s*(#|$)' packaging/debian-build-deps.txt | tr '\n' ' ')
missing=()
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

jobs=$(nproc 2>/dev/null || echo 2)
if [ ! -f build/build.ninja ]; then
  echo "== configuring (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRAMESMITH_BUILD_FUZZERS=ON \
    -DCMAKE_CXX_COMPILER_LAUNCHER="" >/dev/null
fi
echo "== building with $jobs jobs"
cmake --build build -j "$jobs"
