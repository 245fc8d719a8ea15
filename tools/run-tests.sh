#!/usr/bin/env bash
# The whole test suite: set-up and build (tools/setup.sh --tests), then every test in build/,
# counted by tools/count-tests.sh (fast labels first, skips listed with their reasons). Ends with
# "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
suite_start=$(date +%s)
tools/setup.sh --tests || exit 1
echo "== set-up and build: $(($(date +%s) - suite_start)) s"
tools/count-tests.sh build
rc=$?
echo "== run-tests.sh: $(($(date +%s) - suite_start)) s in all"
exit $rc
