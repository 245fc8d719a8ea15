#!/usr/bin/env bash
# The whole test suite: set-up and build (tools/setup.sh), then CTest, fast labels first
# (unit, then golden, e2e, gui, fuzz), each test with its own timeout.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh || exit 1
export QT_QPA_PLATFORM=offscreen
cd build
passed=0
failed=0
for label in unit golden e2e gui fuzz; do
  n=$(ctest -N -L "^${label}\$" | sed -n 's/^Total Tests: //p')
  [ "${n:-0}" -gt 0 ] || continue
  echo "== ctest -L $label ($n tests)"
  ctest -L "^${label}\$" --output-on-failure -j 2 | tee "ctest-${label}.log"
  p=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 \1/p' "ctest-${label}.log")
  set -- $p
  total=${1:-0}
  bad=${2:-$n}
  passed=$((passed + total - bad))
  failed=$((failed + bad))
done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
