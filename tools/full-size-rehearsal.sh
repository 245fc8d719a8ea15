#!/usr/bin/env bash
# The full-size rehearsal (issue #13): the real FramePack model set (all eight components at their
# real sizes and dtypes, random weights: `make-random-model --config full`) runs one job end to end
# on this machine inside a simulated card (`--device cpu --vram-budget 8GiB`: the simulated device
# counts every allocation by default), the smallest bucket, one section, two steps. Writes
# DIR/report.md: per phase the simulated device's peak, the host's peaks (RssAnon, VmHWM) from the
# memory telemetry, the planner's estimates and the measured peaks (`peak` events), the time, and
# what streamed (`residency` events).
#
#   tools/full-size-rehearsal.sh [--dir DIR] [--budget 8GiB] [--resolution 64] [--steps 2]
#                                [--device cpu|cuda] [--fp8] [--keep] [--build DIR]
#                                [--model DIR] [--engine]
#
# --fp8: the transformer as Kijai's single float8 file (FramePackI2V_HY_fp8_e4m3fn.safetensors,
# 16.3 GB, `make-random-model --dtype fp8_e4m3fn`) in DIR/model-fp8, the other components hard
# links to DIR/model's; the run and its report go to DIR/run-fp8 and DIR/report-fp8.md.
#
# The set takes ~43 GB in DIR (default /var/tmp/framesmith-full-size; reused when complete, removed
# afterwards unless --keep); --model DIR uses a complete set written elsewhere (left in place).
# With --device cuda the same job runs with the budget as the allocator's memory fraction.
# The job runs through framesmith-cli (an MP4) when the build has it, else, or with --engine,
# through framesmith-engine's own generate (the same pipeline without Qt: PPM frames): the lent
# GPU machine builds the engine only (tools/gpu_bench.sh runs this script there).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=/var/tmp/framesmith-full-size
budget=8GiB
resolution=64
steps=2
device=cpu
keep=0
fp8=0
build=build
given_model=
use_engine=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    --resolution) resolution=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --fp8) fp8=1; shift ;;
    --build) build=$2; shift 2 ;;
    --model) given_model=$2; shift 2 ;;
    --engine) use_engine=1; shift ;;
    *) echo "full-size-rehearsal: unknown option $1" >&2; exit 2 ;;
  esac
done

cli="$build/app/framesmith-cli"
engine="$build/inference/framesmith-engine"
[ -x "$cli" ] && [ $use_engine -eq 0 ] || cli="$engine"
if [ ! -x "$engine" ]; then
  echo "full-size-rehearsal: no $engine: build first (tools/setup.sh)" >&2
  exit 1
fi
model="$dir/model"
if [ -n "$given_model" ]; then
  if [ $fp8 -eq 1 ]; then
    echo "full-size-rehearsal: --model and --fp8 do not go together (--fp8 writes its own set)" >&2
    exit 2
  fi
  model=$given_model
  keep=1
fi
work="$dir/run"
report="$dir/report.md"
if [ $fp8 -eq 1 ]; then
  work="$dir/run-fp8"
  report="$dir/report-fp8.md"
fi
mkdir -p "$dir" "$work"
start=$(date +%s)

# 1. The model set (reused when a previous run left it complete).
t0=$(date +%s)
if [ -n "$given_model" ]; then
  : # inspect-model below stops the rehearsal when the given set is incomplete
elif [ ! -f "$model/transformer/diffusion_pytorch_model.safetensors.index.json" ] ||
   [ ! -f "$model/text_encoder/model.safetensors.index.json" ] || [ ! -f "$model/.complete" ]; then
  rm -rf "$model"
  "$engine" make-random-model "$model" --config full
  touch "$model/.complete"
fi
if [ $fp8 -eq 1 ]; then
  base=$model
  model="$dir/model-fp8"
  if [ ! -f "$model/.complete" ]; then
    rm -rf "$model"
    mkdir -p "$model"
    for c in "$base"/*/; do
      c=$(basename "$c")
      [ "$c" = transformer ] || cp -al "$base/$c" "$model/$c"
    done
    "$engine" make-random-model "$model" --config full --only transformer --dtype fp8_e4m3fn
    touch "$model/.complete"
  fi
fi
write_s=$(($(date +%s) - t0))
"$engine" inspect-model "$model" > "$work/inspect.txt" ||
  { echo "full-size-rehearsal: $model is not a complete model set: $work/inspect.txt" >&2; exit 1; }
"$engine" estimate --model "$model" --resolution "$resolution" --seconds 1 \
  --vram-budget "$budget" --device "$device" > "$work/estimate.txt" || true

# 2. The job: a start image (a colour gradient as a binary PPM, which both framesmith-cli and
# framesmith-engine read; written by Python's standard library), one section (1 s at window 9),
# two steps, no TeaCache.
python3 - "$work/start.ppm" "$resolution" <<'EOF'
import sys
path, n = sys.argv[1], int(sys.argv[2])
pixels = bytes(v for y in range(n) for x in range(n) for v in (x * 255 // n, y * 255 // n, 128))
open(path, "wb").write(b"P6\n%d %d\n255\n" % (n, n) + pixels)
EOF
if [ "$cli" = "$engine" ]; then
  out_args=(--out "$work/frames")  # one PPM per frame
else
  out_args=(--out "$work/rehearsal.mp4")
fi
t0=$(date +%s)
set +e
"$cli" generate --model "$model" --image "$work/start.ppm" --prompt "a lighthouse at dawn" \
  "${out_args[@]}" --seconds 1 --steps "$steps" --resolution "$resolution" \
  --no-teacache --device "$device" --vram-budget "$budget" --events "$work/events.jsonl" \
  --job-dir "$work/job" --restart > "$work/generate.log" 2>&1
rc=$?
set -e
job_s=$(($(date +%s) - t0))

# 3. The report.
python3 - "$work/events.jsonl" "$report" "$rc" "$write_s" "$job_s" "$budget" \
  "$resolution" "$steps" "$device" "$fp8" "$work/estimate.txt" <<'EOF'
import json, sys
events_path, report, rc, write_s, job_s, budget, res, steps, device, fp8, estimate = sys.argv[1:]
def gib(b): return "%.2f GiB" % (b / 2**30) if b is not None else "–"
def ratio(a, b): return "%.2f" % (a / b) if a and b else "–"
events = []
with open(events_path) as f:
    for line in f:
        line = line.strip()
        if line:
            events.append(json.loads(line))
def group(phase):
    if phase.startswith("section") or phase.startswith("sampling"): return "sampling"
    if phase.startswith("decode"): return "decode"
    return phase or "(between phases)"
phases, order = {}, []
def entry(g):
    if g not in phases:
        phases[g] = {"t0": None, "t1": None, "device": 0, "anon": 0, "beyond": 0, "hwm": 0,
                     "plan": None, "peaks": []}
        order.append(g)
    return phases[g]
# Decode begins by offloading what sampling kept resident: the samples taken before that offload
# finished hold the transformer's modules, not the decoder's work; they get a row of their own
# (when nothing was resident there is no offload, and no such row).
def is_offload(e):
    return (group(e.get("phase", "")) == "decode" and e["type"] == "residency"
            and "offloaded" in e.get("action", ""))
offloaded = not any(is_offload(e) for e in events)
for e in events:
    # Progress events are named after the GUI's stages, not the governor's phases.
    if e["type"] in ("progress", "finished", "section_done", "chunk_decoded"): continue
    g = group(e.get("phase", ""))
    if is_offload(e):
        offloaded = True
    if g == "decode" and e["type"] == "memory" and not offloaded:
        g = "decode: before the transformer's offload"
    p = entry(g)
    if e["type"] == "plan":
        p["plan"] = e.get("estimate")  # the last plan of a phase is the one it ran with
        continue
    p["t0"] = e["t"] if p["t0"] is None else p["t0"]
    p["t1"] = e["t"]
    if e["type"] == "memory":
        alloc, anon = e.get("allocated", 0), e.get("host_rss_anon", 0)
        p["device"] = max(p["device"], alloc)
        p["anon"] = max(p["anon"], anon)
        # The simulated device's bytes are host memory too: what the host holds besides them.
        p["beyond"] = max(p["beyond"], anon - (alloc if device == "cpu" else 0))
        p["hwm"] = max(p["hwm"], e.get("host_peak_rss", 0))
    elif e["type"] == "peak":
        p["peaks"].append(e)
out = []
out.append("# Full-size rehearsal\n")
out.append("device %s, budget %s, %s px, one section, %s steps; exit status %s; model set written "
           "in %s s, job %s s\n" % (device, budget, res, steps, rc, write_s, job_s))
out.append("transformer: %s\n" % ("Kijai's single float8 file (F8_E4M3 weights, bf16 norms, biases "
                                  "and modulation)" if fp8 == "1" else "bf16 in three shards"))
with open(estimate) as f:
    for line in f:
        if line.startswith(("weights:", "host:")):
            out.append("- plan, " + line.strip())
out.append("")
out.append("| phase | seconds | device peak (telemetry) | plan estimate | peak / plan "
           "| `peak` events: measured / estimate (scope) | host RssAnon peak "
           "| host anon besides the device | host VmHWM (with mapped weights) |")
out.append("|---|---|---|---|---|---|---|---|---|")
for g in order:
    p = phases[g]
    if p["t0"] is None and p["plan"] is None: continue
    seconds = ("%.1f" % (p["t1"] - p["t0"])) if p["t0"] is not None and g[0] != "(" else "–"
    peaks = "; ".join("%s / %s = %.2f (%s)" % (gib(e.get("measured")), gib(e.get("estimate")),
                                                e.get("ratio", 0), e.get("scope", "activations"))
                      for e in p["peaks"]) or "–"
    out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        g, seconds, gib(p["device"]), gib(p["plan"]), ratio(p["device"], p["plan"]), peaks,
        gib(p["anon"]), gib(p["beyond"]), gib(p["hwm"])))
beyond = max((p["beyond"] for p in phases.values()), default=0)
out.append("\nHost anonymous memory besides the device's own bytes, at its highest: **%s** "
           "(goal: at most 4 GiB).\n" % gib(beyond))
out.append("\n## What streamed\n")
for e in events:
    if e["type"] == "residency":
        out.append("- %s: %s" % (e.get("phase", ""), e.get("action", "")))
out.append("\n## Recoveries\n")
for e in events:
    if e["type"] == "oom_recovered":
        out.append("- %s (%s): %s, %s" % (e.get("phase", ""), e.get("memory", ""),
                                          e.get("action", ""), e.get("outcome", "")))
for e in events:
    if e["type"] == "error":
        out.append("\n**error:** %s" % e.get("message", ""))
open(report, "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
echo "== full-size rehearsal: $(($(date +%s) - start)) s in all; report: $report"
if [ "$keep" -eq 0 ]; then rm -rf "$dir/model" "$dir/model-fp8"; fi
exit "$rc"
