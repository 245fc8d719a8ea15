#!/usr/bin/env bash
# Installs the Debian packages, then configures and builds Framesmith into build/. Used by both
# README commands; safe to run again (it only does what is missing).
#   tools/setup.sh           the product: packaging/debian-build-deps.txt, tests not configured
#                            (on a fresh build/; an existing build/ keeps its configuration)
#   tools/setup.sh --tests   also packaging/debian-test-deps.txt, tests and the fuzzer on
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
[ "${1:-}" = "--tests" ] && with_tests=1

lists=(packaging/debian-build-deps.txt)
[ $with_tests -eq 1 ] && lists+=(packaging/debian-test-deps.txt)
pkgs=$(cat "${lists[@]}" | grep -vE '^\s*(#|$)' | tr '\n' ' ')
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
if [ $with_tests -eq 1 ]; then
  # Cheap when nothing changed; turns the tests on in a build/ that the main job configured.
  echo "== configuring (build/, tests on)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRAMESMITH_BUILD_TESTS=ON \
    -DFRAMESMITH_BUILD_FUZZERS=ON -DCMAKE_CXX_COMPILER_LAUNCHER="" >/dev/null
elif [ ! -f build/build.ninja ]; then
  echo "== configuring (build/)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFRAMESMITH_BUILD_TESTS=OFF \
    -DCMAKE_CXX_COMPILER_LAUNCHER="" >/dev/null
fi
echo "== building with $jobs jobs"
cmake --build build -j "$jobs"
