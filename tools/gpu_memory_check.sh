#!/usr/bin/env bash
# The memory governor's checks on a real GPU, with CUDA's caching allocator limited (through
# setMemoryFraction, which the governor applies for --vram-budget / GenerationRequest's budget) to
# emulate a 6 GB and a 24 GB card:
#   - a tiny-model job at 640 px stays within the budget and leaves device memory at its baseline;
#   - with every phase started at its largest setting and a budget the whole decode does not fit
#     in, real CUDA out-of-memory errors are recovered (oom_recovered events, job completes);
#   - 20 jobs in a row do not grow allocated or reserved memory;
#   - a cancel during streamed sampling leaves nothing on the device;
#   - with FRAMESMITH_GPU_MODEL_DIR set (a FramePack model folder, or "hf"), one short job of the
#     real model per budget, and its `estimate` plan.
# These are the GovernorGpu.* tests of tests/inference/governor_e2e_test.cpp (skipped on machines
# without CUDA), plus the estimate subcommand.
#
# Usage: tools/gpu_memory_check.sh [BUILD_DIR]
#   BUILD_DIR (default build-gpu) is configured and built by tools/check-libtorch2.sh --build-only
#   (its dry run here builds and tests the same configuration against LibTorch 2.14), against the
#   LibTorch of python3's torch (a CUDA build, with the CUDA toolkit): CUDA paths required,
#   warnings as errors. nlohmann-json, PCRE2 and googletest come from build-deps/ when the
#   machine has no -dev packages (tools/bundle-engine-deps.sh, carried with the working tree).
#   FRAMESMITH_GPU_BUDGETS (default "6GiB 24GiB") lists the emulated card sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
budgets=${FRAMESMITH_GPU_BUDGETS:-"6GiB 24GiB"}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

TORCH_PYTHON=python3 BUILD="$build" TESTS=ON TARGETS="governor_e2e_test framesmith-engine" \
  tools/check-libtorch2.sh --build-only

test_bin="$build/tests/governor_e2e_test"
engine_bin="$build/inference/framesmith-engine"
[ -x "$engine_bin" ] || engine_bin=$(find "$build" -name framesmith-engine -type f -perm -u+x | head -n 1)

status=0
for budget in $budgets; do
  echo "== emulated card: $budget"
  if ! FRAMESMITH_GPU_CHECK=1 FRAMESMITH_GPU_BUDGET="$budget" \
      "$test_bin" --gtest_filter='GovernorGpu.*' --gtest_brief=0; then
    status=1
  fi
  if [ -n "${FRAMESMITH_GPU_MODEL_DIR:-}" ] && [ -n "$engine_bin" ]; then
    "$engine_bin" estimate --model "$FRAMESMITH_GPU_MODEL_DIR" --resolution 640 --seconds 5 \
      --window 9 --vram-budget "$budget" || status=1
  fi
done

# The CPU-side checks too (simulated device), so one run covers both.
"$test_bin" --gtest_filter='GovernorE2E.*' --gtest_brief=1 || status=1
[ "$status" -eq 0 ] && echo "gpu memory check: all passed" || echo "gpu memory check: FAILED"
exit "$status"
