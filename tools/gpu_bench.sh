#!/usr/bin/env bash
# GPU benchmark of the full-size FramePack model set (random weights, nothing downloaded), meant
# for one run of at most ~9 minutes on one large NVIDIA GPU (written for an H200):
#   1. builds the inference library and framesmith-engine against this machine's PyTorch;
#   2. writes all eight components of the real model set with random weights (the transformer:
#      24x128 heads, 20 dual + 40 single blocks, bf16 in three shards, ~26 GB; the LLaMA-shaped
#      text encoder, CLIP-L, SigLIP, the HunyuanVideo VAE; ~43 GB in all) with
#      `make-random-model --config full` (docs/full-size-model-set.md);
#   3. times generation at 640x640, latent window 9, one section: s/step with and without
#      TeaCache, then under 24 GB and 6 GB emulated cards (the governor caps PyTorch's caching
#      allocator with setMemoryFraction), each printed as one JSON line;
#   4. the full-size rehearsal on CUDA (tools/full-size-rehearsal.sh --device cuda --budget 8GiB
#      through framesmith-engine generate: prompt and image encoders, VAE encode, sampling and
#      decode of the whole job inside an 8 GiB memory fraction), its report in OUT/rehearsal.md;
#   5. host->device copy bandwidth (pinned and pageable) to compare the streaming rate with.
# Random weights give noise videos; timing does not depend on the values (TeaCache's skip
# decisions do: with random weights its speed-up is only indicative).
#
# Needs: cmake, a C++ compiler (C++17; C++20 for LibTorch >= 2.14), the CUDA toolkit (nvcc and
# headers), nlohmann-json and PCRE2 (system -dev packages or build-deps/ from
# tools/bundle-engine-deps.sh), python3 with a CUDA build of torch, ~45 GB free disk for the random
# model set (MODEL), ~60 GB host memory.
# Environment: BUILD (build dir), MODEL (model dir), OUT (results dir, default
# benchmarks/results/gpu), STEPS (sampler steps per run, default 5; the first step of a section
# is not counted in s/step), KEEP_MODEL=1 keeps MODEL.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-/tmp/framesmith-gpu-build}
MODEL=${MODEL:-/tmp/framesmith-random-full}
OUT=${OUT:-$ROOT/benchmarks/results/gpu}
STEPS=${STEPS:-5}
mkdir -p "$OUT"
RESULTS="$OUT/gpu-bench.jsonl"
: > "$RESULTS"
log() { echo "[gpu_bench $(date +%H:%M:%S)] $*" >&2; }

# --- 1. build ------------------------------------------------------------------------------
python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))' \
  | tee "$OUT/machine.txt" >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/machine.txt" 2>/dev/null || true
echo "cpus: $(nproc)" >> "$OUT/machine.txt"
# The build tools/check-libtorch2.sh makes and tests here against 2.14 (its dry run), against this
# machine's PyTorch: CUDA paths required, warnings as errors. nlohmann-json and PCRE2 come from
# build-deps/ when the machine has no -dev packages (tools/bundle-engine-deps.sh, carried along).
log "building framesmith-engine against $(command -v python3)'s torch"
TORCH_PYTHON=python3 BUILD="$BUILD" "$ROOT/tools/check-libtorch2.sh" --build-only > "$OUT/build.log" 2>&1 \
  || { tail -40 "$OUT/build.log"; exit 1; }
ENGINE="$BUILD/inference/framesmith-engine"
"$ENGINE" --version >> "$OUT/machine.txt"

# One bench run; a failure or timeout is recorded and the next run goes on.
bench() {
  local limit=$1
  shift
  log "bench $*"
  if ! timeout "$limit" "$ENGINE" bench "$@" >> "$RESULTS" 2>> "$OUT/errors.log"; then
    log "FAILED or timed out: bench $* (see $OUT/errors.log)"
    echo "{\"bench\":\"$1\",\"failed\":true,\"args\":\"$*\"}" >> "$RESULTS"
  fi
}

# --- 2. random full-size model ---------------------------------------------------------------
# Written to a marker last, so that its presence means a complete set (a killed write is redone).
if [ ! -f "$MODEL/.complete" ]; then
  log "writing the random full-size model set to $MODEL"
  rm -rf "$MODEL"
  bench 420 make-random-model --out "$MODEL" --config full
  touch "$MODEL/.complete"
fi

# --- 3. s/step at 640x640, window 9 ------------------------------------------------------------
GEN_ARGS=(--model "$MODEL" --device cuda --resolution 640 --window 9 --seconds 1 --steps "$STEPS")
bench 150 generate "${GEN_ARGS[@]}"
bench 150 generate "${GEN_ARGS[@]}" --teacache
bench 150 generate "${GEN_ARGS[@]}" --vram-budget 24GB
bench 180 generate "${GEN_ARGS[@]}" --vram-budget 6GB

# --- 4. the full-size rehearsal on CUDA ----------------------------------------------------------
# The same job as on the simulated card here (64 px, one section, two steps), inside a real 8 GiB
# memory fraction; its frames and events stay in REHEARSAL_DIR, the report comes to OUT.
REHEARSAL_DIR=${REHEARSAL_DIR:-/tmp/framesmith-gpu-rehearsal}
log "full-size rehearsal on CUDA, 8 GiB"
if timeout 240 "$ROOT/tools/full-size-rehearsal.sh" --model "$MODEL" --device cuda --budget 8GiB \
    --build "$BUILD" --dir "$REHEARSAL_DIR" --engine > "$OUT/rehearsal.log" 2>&1; then
  echo '{"bench":"rehearsal","device":"cuda","budget":"8GiB","failed":false}' >> "$RESULTS"
else
  log "FAILED or timed out: the rehearsal (see $OUT/rehearsal.log)"
  echo '{"bench":"rehearsal","failed":true,"args":"full-size-rehearsal.sh --device cuda"}' >> "$RESULTS"
fi
cp "$REHEARSAL_DIR/report.md" "$OUT/rehearsal.md" 2>/dev/null || true
cp "$REHEARSAL_DIR/run/events.jsonl" "$OUT/rehearsal-events.jsonl" 2>/dev/null || true

# --- 5. copy bandwidth -------------------------------------------------------------------------
bench 60 memcpy --device cuda --size 2GiB

[ "${KEEP_MODEL:-0}" = 1 ] || rm -rf "$MODEL"

# --- summary -----------------------------------------------------------------------------------
python3 - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tbytes = None
for r in rows:
    if r.get("bench") == "make-random-model":
        tbytes = r["transformer_params"] * 2
print("\n| run | s/step (median) | total s | peak GiB | residency |\n|---|---|---|---|---|")
for r in rows:
    if r.get("bench") != "generate" or r.get("failed"):
        continue
    last = r.get("last", {})
    name = ("TeaCache" if r.get("teacache") else "no TeaCache") + (
        ", budget %.0f GB" % (r["budget"] / 1e9) if r.get("budget") else ", unconstrained")
    print("| %s | %.3f | %.1f | %.1f | %s |" % (name, last.get("s_per_step_median", 0),
          r.get("median_s", 0), last.get("peak_bytes", 0) / 2**30,
          "; ".join(last.get("residency", [])[:2])))
for r in rows:
    if r.get("bench") == "memcpy":
        print("\nhost->device copy: pinned %.1f GB/s, pageable %.1f GB/s" %
              (r["pinned_gb_per_s"], r["pageable_gb_per_s"]))
        if tbytes:
            for g in rows:
                if (g.get("bench") == "generate" and g.get("budget") and not g.get("teacache")
                        and not g.get("failed")):
                    s = g["last"].get("s_per_step_median", 0)
                    if s > 0:
                        print("budget %.0f GB: the whole transformer (%.1f GB) per step would need "
                              "%.1f GB/s" % (g["budget"] / 1e9, tbytes / 1e9, tbytes / s / 1e9))
for r in rows:
    if r.get("failed"):
        print("FAILED:", r["args"])
PY
[ -f "$OUT/rehearsal.md" ] && cat "$OUT/rehearsal.md"
log "results in $RESULTS"
