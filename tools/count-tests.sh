#!/usr/bin/env bash
# Runs the CTest tests of one build directory, fast labels first (unit, then golden, e2e, gui,
# fuzz), each test with its own timeout, and counts single test cases: a GoogleTest executable's
# cases from its test-results/<name>.counts, a Qt Test executable's from its Totals line, any
# other CTest test as one. Skips are counted and listed with their reasons, never counted as
# passes. Ends with "tests: N passed, N failed, N skipped"; fails on a failure or when nothing
# passed. Used by tools/run-tests.sh (build/) and tools/check-libtorch2.sh.
#   tools/count-tests.sh BUILD_DIR
set -uo pipefail
[ $# -eq 1 ] && [ -d "$1" ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
export QT_QPA_PLATFORM=offscreen
cd "$1"
results=test-results
rm -rf "$results"
mkdir -p "$results"
passed=0 failed=0 skipped=0
skip_reasons=()
failed_names=()

# Adds one CTest test's cases to the totals. $1 name, $2 CTest status (Passed, Failed, Skipped,
# Not Run, Timeout, ...).
count_test() {
  local name=$1 status=$2 counts="$results/$1.counts" qt="$results/$1.qttest.txt"
  local p=0 f=0 s=0
  if [ -f "$counts" ]; then
    p=$(sed -n 's/^passed //p' "$counts")
    f=$(sed -n 's/^failed //p' "$counts")
    s=$(sed -n 's/^skipped //p' "$counts")
    while IFS= read -r line; do
      line=${line#skip }
      skip_reasons+=("$name: ${line/$'\t'/: }")
    done < <(grep '^skip ' "$counts")
  elif [ -f "$qt" ] && grep -q '^Totals:' "$qt"; then
    read -r p f s < <(sed -n 's/^Totals: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped.*/\1 \2 \3/p' "$qt")
    while IFS= read -r line; do skip_reasons+=("$name: ${line#SKIP   : }"); done < <(grep -A1 '^SKIP   :' "$qt" | grep -v '^--$' | paste - - | sed 's/\s\+Loc:.*//')
  else
    case "$status" in
      Passed) p=1 ;;
      Skipped)
        s=1
        skip_reasons+=("$name: $(grep -h -m1 '^SKIPPED:' ctest-*.log 2>/dev/null | sed 's/^SKIPPED: //' || true)") ;;
      *) f=1 ;;
    esac
  fi
  # A crash or time-out after some cases passed still fails the test.
  if [ "$status" != Passed ] && [ "$status" != Skipped ] && [ "${f:-0}" -eq 0 ]; then f=1; fi
  [ "${f:-0}" -gt 0 ] && failed_names+=("$name ($status)")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  skipped=$((skipped + ${s:-0}))
}

for label in unit golden e2e gui fuzz; do
  n=$(ctest -N -L "^${label}\$" | sed -n 's/^Total Tests: //p')
  [ "${n:-0}" -gt 0 ] || continue
  echo "== ctest -L $label ($n tests)"
  start=$(date +%s)
  ctest -L "^${label}\$" --output-on-failure -j 2 | tee "ctest-${label}.log"
  echo "== ctest -L $label: $(($(date +%s) - start)) s"
  # Result lines: "  3/16 Test  #5: name ....   Passed    1.2 sec" or "***Failed", "***Skipped",
  # "***Timeout", "***Not Run", "***Exception: ...".
  while read -r name status; do
    count_test "$name" "$status"
  done < <(sed -n 's/^ *[0-9]*\/[0-9]* Test *#[0-9]*: \([^ ]*\) \.*\** *\([A-Za-z]*\).*/\1 \2/p' \
             "ctest-${label}.log")
done

if [ ${#skip_reasons[@]} -gt 0 ]; then
  echo "== skipped (${#skip_reasons[@]}):"
  printf '  %s\n' "${skip_reasons[@]}"
fi
# Say it plainly when the GPU checks did not run: a green CPU run proves nothing about CUDA.
gpu_skipped=$(printf '%s\n' "${skip_reasons[@]}" | grep -ci 'cuda\|gpu' || true)
if [ "${gpu_skipped:-0}" -gt 0 ]; then
  echo "== note: $gpu_skipped CUDA/GPU test cases were skipped: this run made no CUDA assertion"
fi
if [ ${#failed_names[@]} -gt 0 ]; then
  echo "== failed:"
  printf '  %s\n' "${failed_names[@]}"
fi
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
