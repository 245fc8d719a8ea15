#!/usr/bin/env bash
# The second build: the engine against LibTorch 2.x with CUDA, compiled and tested on the CPU.
# A development and CI check; the product itself installs only from Debian (LibTorch 1.13).
#   1. a venv with torch==2.14.1 (a CUDA 13 build) from this machine's own disk, cached outside
#      the clone ($FRAMESMITH_TORCH2_VENV, default /var/tmp/framesmith-ci-cache/torch2-venv);
#      or, with TORCH_PYTHON=python3, the torch that interpreter already has (a lent GPU machine);
#   2. configures the engine (FRAMESMITH_INFERENCE_ONLY) with Torch_DIR from
#      torch.utils.cmake_prefix_path and the CUDA toolkit ($CUDA_HOME, default /usr/local/cuda, or
#      the nvcc on PATH), with FRAMESMITH_REQUIRE_CUDA (no CUDA paths = a build error, never a
#      quiet fallback) and FRAMESMITH_WERROR (warnings in project code are errors);
#   3. builds the inference library, framesmith-engine and the engine's tests ($BUILD, default
#      build-libtorch2/);
#   4. runs them with tools/count-tests.sh: unit, golden, e2e and check_golden_cli on the CPU
#      (no GPU here: what needs one is a counted, visible skip).
# Prints each part's time. tools/gpu_bench.sh runs steps 1-3 (--build-only) on a lent GPU machine:
# this script here is the dry run of that build.
#   tools/check-libtorch2.sh [--build-only]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
start=$(date +%s)
part_start=$start
TORCH_VERSION=2.14.1
BUILD_ONLY=0
[ "${1:-}" = "--build-only" ] && BUILD_ONLY=1
VENV=${FRAMESMITH_TORCH2_VENV:-/var/tmp/framesmith-ci-cache/torch2-venv}
BUILD=${BUILD:-$ROOT/build-libtorch2}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
say() { echo "== libtorch2: $*"; }
part_done() {
  local now
  now=$(date +%s)
  say "$1: $((now - part_start)) s"
  part_start=$now
}
fail() {
  echo "FAILED (libtorch2): $*" >&2
  exit 1
}

# The CUDA libraries libtorch_cuda.so links against, as torch's own metadata pins them (the
# cuda-toolkit extras are cuBLAS, cudart, cuFFT, cuFile, CUPTI, cuRAND, cuSOLVER, cuSPARSE,
# nvJitLink, NVRTC, NVTX). Its Python-only dependencies are left out: triton and cuda-bindings
# are not used by a C++ program, and cuda-bindings is not on this machine's disk.
NATIVE_DEPS=(
  'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3'
  nvidia-cudnn-cu13==9.24.0.43 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7
  nvidia-nvshmem-cu13==3.4.5 typing-extensions filelock sympy networkx jinja2 fsspec
  'setuptools>=77.0.3')

venv_torch_version() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null
import importlib.metadata as m
print(m.version("torch"))
PY
}

# --- 1. the venv -------------------------------------------------------------------------------
if [ -n "${TORCH_PYTHON:-}" ]; then
  PY=$TORCH_PYTHON
  say "using the torch of $PY"
elif [ "$(venv_torch_version || true)" != "$TORCH_VERSION" ]; then
  say "making $VENV with torch==$TORCH_VERSION"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV"
  pip_args=()
  if [ -d /opt/pypi-more/simple/torch ]; then
    # Only this machine's file indexes: pip cannot reach the network for any of it.
    say "installing from the local disk only (file:///opt/pypi-more, file:///opt/pypi, /opt/wheels)"
    pip_args=(--index-url file:///opt/pypi-more/simple --extra-index-url file:///opt/pypi/simple
      --find-links /opt/wheels)
  else
    say "no local PyTorch index on this machine: pip uses its configured index (the network)"
  fi
  "$VENV/bin/pip" install -q ${pip_args[@]+"${pip_args[@]}"} --no-deps "torch==$TORCH_VERSION"
  "$VENV/bin/pip" install -q ${pip_args[@]+"${pip_args[@]}"} "${NATIVE_DEPS[@]}"
  PY=$VENV/bin/python
else
  say "reusing $VENV (torch $TORCH_VERSION)"
  PY=$VENV/bin/python
fi
# Importing torch warns about the numpy this venv leaves out; the path is all that is read.
TORCH_CMAKE=$("$PY" -W ignore -c 'import torch.utils; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
  fail "$PY cannot import torch"
read -r torch_version cuda_version < <("$PY" -W ignore -c 'import torch; print(torch.__version__.split("+")[0], torch.version.cuda or "none")' 2>/dev/null)
TORCH_ROOT=$(cd "$TORCH_CMAKE/../.." && pwd)
SITE=$(dirname "$TORCH_ROOT")
[ -f "$TORCH_CMAKE/Torch/TorchConfig.cmake" ] || fail "no TorchConfig.cmake in $TORCH_CMAKE"
say "torch $torch_version (CUDA $cuda_version) at $TORCH_ROOT"
[ "$cuda_version" != none ] || fail "the torch of $PY is a CPU build"
part_done "venv"

# --- 2. configure ------------------------------------------------------------------------------
if [ ! -x "$CUDA_HOME/bin/nvcc" ] && command -v nvcc >/dev/null; then
  CUDA_HOME=$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)
fi
[ -x "$CUDA_HOME/bin/nvcc" ] || fail "no nvcc in $CUDA_HOME/bin nor on PATH (set CUDA_HOME)"
[ -f "$CUDA_HOME/include/cuda_runtime_api.h" ] || fail "no cuda_runtime_api.h in $CUDA_HOME/include"
say "CUDA toolkit $("$CUDA_HOME/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p') at $CUDA_HOME"
# NVRTC, which LibTorch's CMake links: the toolkit's, else the pip wheels' (versioned name only;
# nvidia/cu13/lib for CUDA 13 wheels, nvidia/cuda_nvrtc/lib for CUDA 12 ones).
nvrtc=""
for f in "$CUDA_HOME"/lib64/libnvrtc.so "$SITE"/nvidia/cu1*/lib/libnvrtc.so.[0-9]* \
  "$SITE"/nvidia/cuda_nvrtc/lib/libnvrtc.so.[0-9]*; do
  [ -f "$f" ] && { nvrtc=$f; break; }
done
[ -n "$nvrtc" ] || fail "no libnvrtc in $CUDA_HOME/lib64 or $SITE/nvidia"
mkdir -p "$BUILD"
gen=()
command -v ninja >/dev/null && gen=(-G Ninja)
# TORCH_ROOT first in CMAKE_PREFIX_PATH: TorchConfig.cmake's find_library calls would otherwise
# take Debian's libtorch from /usr/lib (cmake/FramesmithTorch.cmake refuses that mix). LibTorch's
# CMake finds CUDA with the old FindCUDA (CUDA_TOOLKIT_ROOT_DIR) and wants NVRTC, which the pip
# wheels ship under a versioned name only. No CUDA kernels are compiled, so the architecture list
# only silences the "no GPU to detect" probe.
# TESTS=ON with --build-only and TARGETS="..." builds chosen test targets (tools/gpu_memory_check.sh);
# CMAKE_ARGS adds configure options (e.g. -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON to build as a
# machine without -dev packages does, from build-deps/).
tests=${TESTS:-ON}
[ $BUILD_ONLY -eq 1 ] && tests=${TESTS:-OFF}
# nlohmann-json and PCRE2 from the system, else from build-deps/ (tools/bundle-engine-deps.sh),
# which a machine without -dev packages gets carried with the working tree.
deps=()
[ -d "$ROOT/build-deps" ] && deps=(-DFRAMESMITH_DEPS_DIR="$ROOT/build-deps")
cmake -S "$ROOT" -B "$BUILD" ${gen[@]+"${gen[@]}"} -DCMAKE_BUILD_TYPE=Release \
  -DFRAMESMITH_INFERENCE_ONLY=ON -DFRAMESMITH_BUILD_TESTS=$tests -DFRAMESMITH_BUILD_BENCHMARKS=OFF \
  -DFRAMESMITH_REQUIRE_CUDA=ON -DFRAMESMITH_WERROR=ON \
  -DTorch_DIR="$TORCH_CMAKE/Torch" -DCMAKE_PREFIX_PATH="$TORCH_ROOT" \
  -DCUDA_TOOLKIT_ROOT_DIR="$CUDA_HOME" -DCMAKE_CUDA_COMPILER="$CUDA_HOME/bin/nvcc" \
  -DCUDA_nvrtc_LIBRARY="$nvrtc" -DTORCH_CUDA_ARCH_LIST=9.0 ${deps[@]+"${deps[@]}"} ${CMAKE_ARGS:-} \
  > "$BUILD/check-cmake.log" 2>&1 || { tail -40 "$BUILD/check-cmake.log"; fail "configure (log: $BUILD/check-cmake.log)"; }
grep -E "^-- LibTorch " "$BUILD/check-cmake.log" | sed 's/^-- /== libtorch2: /'
part_done "configure"

# --- 3. build ------------------------------------------------------------------------------------
targets=()
for t in ${TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$BUILD" ${targets[@]+"${targets[@]}"} -j "$(nproc 2>/dev/null || echo 2)" \
  > "$BUILD/check-build.log" 2>&1 ||
  { grep -E "error|Error" "$BUILD/check-build.log" | head -40; fail "build (log: $BUILD/check-build.log)"; }
version=$("$BUILD/inference/framesmith-engine" --version)
echo "$version"
case "$version" in
  *"LibTorch $torch_version, CUDA paths compiled in, SDPA attention"*) ;;
  *) fail "the engine was not built as expected: $version" ;;
esac
part_done "build"

if [ $BUILD_ONLY -eq 1 ]; then
  say "$(($(date +%s) - start)) s in all (build only)"
  exit 0
fi

# --- 4. tests on the CPU ---------------------------------------------------------------------------
tests_rc=0
# One OpenMP thread per test: CTest runs two at a time, and the wheel's libgomp spin-waits at
# every barrier, so two tests with two threads each on two cores run GroupNorm-heavy tests ~15x
# slower (measured: the streamed-decode test, 14 s alone vs > 3 min so).
OMP_NUM_THREADS=1 tools/count-tests.sh "$BUILD" || tests_rc=$?
part_done "tests"
say "$(($(date +%s) - start)) s in all"
[ $tests_rc -eq 0 ] || fail "tests (see above)"
say "PASSED"
