#!/usr/bin/env bash
# Runs the CPU benchmarks (framesmith-engine bench ...; see docs/benchmarks.md) and regenerates
# the tables of docs/benchmarks.md from their JSON lines. Takes ~5 minutes on 2 cores.
#   ENGINE=path/to/framesmith-engine (default: build/inference/framesmith-engine)
#   LONG_SECONDS=20  length of the long video of the memory-vs-length run (default 20; 60 takes
#                    ~10 minutes here; its result is kept in benchmarks/results/long-video.jsonl)
#   THREADS=N        LibTorch intra-op threads (default: LibTorch's choice)
#   HOST_LENGTHS=5,20,60  also runs bench long-video (host RSS and section time of whole
#                    framesmith-cli jobs; ~10 minutes at HOST_RESOLUTION=128 here, unset: skipped;
#                    its result is kept in benchmarks/results/long-video-host.jsonl)
#   CLI=path/to/framesmith-cli (default: build/app/framesmith-cli), BEFORE_CLI=another build's
#                    framesmith-cli to measure side by side (optional)
# Results: benchmarks/results/cpu.jsonl (raw), docs/benchmarks.md (tables regenerated).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENGINE=${ENGINE:-$ROOT/build/inference/framesmith-engine}
LONG_SECONDS=${LONG_SECONDS:-20}
GOLDEN="$ROOT/tests/data/golden/framepack-tiny-a"
RESULTS="$ROOT/benchmarks/results/cpu.jsonl"
[ -x "$ENGINE" ] || { echo "no engine at $ENGINE (set ENGINE=)" >&2; exit 1; }
mkdir -p "$(dirname "$RESULTS")"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
THREAD_ARGS=()
[ -n "${THREADS:-}" ] && THREAD_ARGS=(--threads "$THREADS")

run() {
  echo "bench $*" >&2
  "$ENGINE" bench "$@" ${THREAD_ARGS[@]+"${THREAD_ARGS[@]}"} >> "$TMP/results.jsonl"
}

"$ENGINE" make-tiny-model "$TMP/tiny" > /dev/null
# 1. the models on the golden case inputs and on random inputs of the default shape
run transformer --model "$GOLDEN" --inputs "$GOLDEN/transformer_forward.safetensors" --repeat 9
run transformer --model "$GOLDEN" --repeat 9
run vae-decode --model "$GOLDEN" --inputs "$GOLDEN/vae_decode.safetensors" --repeat 3
run vae-decode --model "$GOLDEN" --inputs "$GOLDEN/vae_decode.safetensors" --tiling whole --repeat 3
run section --model "$GOLDEN" --inputs "$GOLDEN/sections.safetensors" --repeat 3
# 2. streamed (chunked) decode vs whole
run chunked-decode --model "$GOLDEN" --chunks 16,4,1 --bands 4 --repeat 2
# 3. device peak of a 5 s and a long video (tiny model, simulated device)
run video-memory --model "$TMP/tiny" --steps 2 --short 5 --long "$LONG_SECONDS"
# 4. a quarter of the unconstrained peak vs unconstrained
run budget --model "$TMP/tiny" --seconds 1 --steps 2 --fraction 0.25 --repeat 3
# 5. telemetry at 10 Hz
run telemetry --model "$TMP/tiny" --hz 10 --repeat 8 --trial-seconds 1
# 6. chunked vs plain attention
run attention --lengths 1024,2048,4096 --heads 4 --dim 64 --chunk 1024 --repeat 3

{
  echo "{\"bench\":\"machine\",\"cpu\":\"$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)\",\"cores\":$(nproc),\"date\":\"$(date -u +%Y-%m-%dT%H:%MZ)\",\"engine\":\"$("$ENGINE" --version | tr -d '"')\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
  cat "$TMP/results.jsonl"
} > "$RESULTS"
if [ "${LONG_SECONDS%.*}" -ge 60 ]; then
  { head -1 "$RESULTS"; grep '"bench":"video-memory"' "$RESULTS"; } > "$ROOT/benchmarks/results/long-video.jsonl"
fi
# 8. host memory and section time vs video length: whole CLI jobs, one child process each
if [ -n "${HOST_LENGTHS:-}" ]; then
  CLI=${CLI:-$ROOT/build/app/framesmith-cli}
  host=(--model "$TMP/tiny" --image "$ROOT/resources/demo/start.png" --seconds "$HOST_LENGTHS"
        --resolution "${HOST_RESOLUTION:-128}" --steps 1)
  : > "$TMP/host.jsonl"
  for program in ${BEFORE_CLI:-} "$CLI"; do
    for variant in original f1; do
      echo "bench long-video $program $variant" >&2
      "$CLI" bench long-video "${host[@]}" --variant "$variant" --program "$program" |
        grep '"runs"' >> "$TMP/host.jsonl"
    done
  done
  cp "$TMP/host.jsonl" "$ROOT/benchmarks/results/long-video-host.jsonl"
fi
python3 "$ROOT/benchmarks/make_report.py" "$RESULTS" "$ROOT/docs/benchmarks.md"
echo "wrote $RESULTS and docs/benchmarks.md" >&2
