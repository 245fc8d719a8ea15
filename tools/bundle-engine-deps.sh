#!/usr/bin/env bash
# Copies the engine's small libraries besides LibTorch (nlohmann-json's and CLI11's headers, PCRE2's
# header and 8-bit runtime, googletest's sources for the GPU tests) from this machine's Debian
# packages into a folder that travels with
# the working tree to a machine that has neither the -dev packages nor a network (the lent GPU
# machine: `run` with carry=["build-deps"]). CMake takes them from there when the system has none
# (cmake/FramesmithEngineDeps.cmake, FRAMESMITH_DEPS_DIR). No links: plain files only.
#   tools/bundle-engine-deps.sh [DIR]      (default: build-deps, ignored by git)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build-deps}
json=/usr/include/nlohmann/json.hpp
pcre_h=/usr/include/pcre2.h
arch=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
pcre_so=$(readlink -f "/usr/lib/$arch/libpcre2-8.so.0")
for f in "$json" /usr/include/CLI/CLI.hpp "$pcre_h" "$pcre_so" /usr/src/googletest/CMakeLists.txt; do
  [ -f "$f" ] || { echo "missing $f (apt-get install nlohmann-json3-dev libcli11-dev libpcre2-dev googletest)" >&2; exit 1; }
done
rm -rf "$out"
mkdir -p "$out/include" "$out/lib"
cp -rL /usr/include/nlohmann "$out/include/"
cp -rL /usr/include/CLI "$out/include/"
cp "$pcre_h" "$out/include/"
cp "$pcre_so" "$out/lib/libpcre2-8.so.0"
cp -rL /usr/src/googletest "$out/googletest"
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
echo "$out: $(du -sh "$out" | cut -f1) (nlohmann-json $(ver nlohmann-json3-dev), CLI11 $(ver libcli11-dev), PCRE2 $(ver libpcre2-dev), googletest $(ver googletest))"
