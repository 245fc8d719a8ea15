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
#   BUILD_DIR (default build-gpu) is configured here if it has no build yet, against the LibTorch
#   of python3's torch (torch.utils.cmake_prefix_path; a CUDA build, with the CUDA toolkit).
#   Torch wheels built with the old std::string ABI (_GLIBCXX_USE_CXX11_ABI=0, pip's up to 2.5)
#   pass that ABI on to the tests, which then cannot link the system's googletest: googletest is
#   then built here with that ABI, from GTEST_SOURCE_DIR (default /usr/src/googletest).
#   FRAMESMITH_GPU_BUDGETS (default "6GiB 24GiB") lists the emulated card sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
budgets=${FRAMESMITH_GPU_BUDGETS:-"6GiB 24GiB"}

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

if [ ! -f "$build/build.ninja" ] && [ ! -f "$build/Makefile" ]; then
  generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  if [ "$(python3 -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')" = 0 ]; then
    gtest_src=${GTEST_SOURCE_DIR:-/usr/src/googletest}
    mkdir -p "$build"
    gtest_prefix="$(cd "$build" && pwd)/googletest-abi0"
    if [ ! -f "$gtest_src/CMakeLists.txt" ]; then
      echo "torch uses _GLIBCXX_USE_CXX11_ABI=0: set GTEST_SOURCE_DIR to googletest's sources" >&2
      exit 1
    fi
    cmake -S "$gtest_src" -B "$build/googletest-abi0-build" ${generator[@]+"${generator[@]}"} \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS=-D_GLIBCXX_USE_CXX11_ABI=0 -DBUILD_GMOCK=OFF \
      -DCMAKE_INSTALL_PREFIX="$gtest_prefix" -DCMAKE_INSTALL_LIBDIR=lib
    cmake --build "$build/googletest-abi0-build" --target install -j "$(nproc)"
    prefix="$gtest_prefix;$prefix"
  fi
  cmake -S . -B "$build" ${generator[@]+"${generator[@]}"} -DCMAKE_BUILD_TYPE=Release \
    -DFRAMESMITH_INFERENCE_ONLY=ON -DFRAMESMITH_BUILD_BENCHMARKS=OFF -DCMAKE_PREFIX_PATH="$prefix"
fi
cmake --build "$build" --target governor_e2e_test framesmith-engine -j "$(nproc)"

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
