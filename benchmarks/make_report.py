#!/usr/bin/env python3
"""Writes docs/benchmarks.md from the JSON lines of `framesmith-engine bench ...`.

usage: make_report.py RESULTS.jsonl OUT.md   (other *.jsonl next to RESULTS are read as well:
long-video.jsonl holds the 60 s memory run, which takes too long for every run)
"""
import glob
import json
import os
import sys

MIB = 2**20


def load(path):
    rows = []
    for line in open(path):
        line = line.strip()
        if line:
            rows.append(json.loads(line))
    return rows


def ms(s):
    return "%.1f ms" % (s * 1e3) if s < 1 else "%.2f s" % s


def mib(b):
    return "%.1f MiB" % (b / MIB)


def spread(r):
    return "%s / %s (IQR %s–%s)" % (ms(r["min_s"]), ms(r["max_s"]), ms(r["q1_s"]), ms(r["q3_s"]))


def main():
    results, out_path = sys.argv[1], sys.argv[2]
    rows = load(results)
    extra = []
    for p in sorted(glob.glob(os.path.join(os.path.dirname(results), "*.jsonl"))):
        if os.path.abspath(p) != os.path.abspath(results):
            extra.append((os.path.basename(p), load(p)))
    by = {}
    for r in rows:
        by.setdefault(r["bench"], []).append(r)
    m = by.get("machine", [{}])[0]
    o = []
    w = o.append
    w("# Benchmarks\n")
    w("Numbers that say whether Framesmith is fast and frugal. Everything here is measured by the")
    w("engine's own harness, `framesmith-engine bench SUBCOMMAND` (also `framesmith-cli bench`),")
    w("which times the work over repeats after a warm-up and prints one JSON line: the **median**")
    w("and the spread (min / max and the interquartile range). Ratios are always measured **side by")
    w("side in one process**, the variants interleaved repeat by repeat, so that a change in the")
    w("machine's load hits both alike. Device memory is measured on the **simulated device**")
    w("(`memory/simulated_device.h`): its allocator counts every byte by default (only what is marked")
    w("as host data with a `HostScope` is left out), so peaks are exact byte counts, not estimates, and a")
    w("forgotten mark shows up as more bytes, never fewer.\n")
    w("Regenerate this file with `tools/run-benchmarks.sh` (about 5 minutes on 2 cores; raw lines in")
    w("`benchmarks/results/cpu.jsonl`). The GPU script is `tools/gpu_bench.sh` (below). All"
      " subcommands and options: `framesmith-engine bench --help`.\n")
    w("## Machine\n")
    w("| | |\n|---|---|")
    w("| CPU | %s, **%s cores** (shared with other jobs: load average %s during the run) |" %
      (m.get("cpu", "?"), m.get("cores", "?"), m.get("load", "?")))
    w("| engine | %s |" % m.get("engine", "?"))
    w("| date | %s |" % m.get("date", "?"))
    w("| GPU | none: CPU numbers only; the CPU is a stand-in, absolute times say little about a GPU |\n")
    w("The models are the tiny random-weight ones (the golden case set `framepack-tiny-a`, and")
    w("`make-tiny-model`), so times are dominated by overheads and the VAE; what carries over to")
    w("real models are the **ratios and the memory shapes**. On a shared 2-core machine single")
    w("timings scatter by ±20 %; read the medians and the spreads together.\n")

    w("## 1. Model forwards\n")
    w("`bench transformer|vae-decode|section --model DIR [--inputs CASE] [--repeat N] [--threads N]`."
      " With `--inputs` the `in.*` tensors of a golden case; without, random inputs of the default"
      " shape (transformer: 9 latent frames of 8×8, 512 text tokens of which 64 valid, clean latents"
      " 2 + 2 + 16 frames, 729 image tokens; VAE: 9 latent frames of 8×8).\n")
    w("| bench | inputs | shape | threads | median | min / max (IQR) | repeats |")
    w("|---|---|---|---|---|---|---|")
    for r in by.get("transformer", []) + by.get("vae-decode", []) + by.get("section", []):
        name = r["bench"]
        shape = r.get("hidden_states") or r.get("latents") or "%sx%s, window %s, %s steps" % (
            r.get("width"), r.get("height"), r.get("window"), r.get("steps"))
        if name == "vae-decode":
            name += " (%s)" % r["tiling"]
        inputs = os.path.basename(r["inputs"]) if r["inputs"] != "random" else "random"
        w("| %s | %s | %s | %s | **%s** | %s | %s |" % (name, inputs, shape, r["threads"],
          ms(r["median_s"]), spread(r), r["repeat"]))
    for r in by.get("section", []):
        w("\nOne section (sampling + decode): %s per sampler step (median; min %s, max %s)." % (
            ms(r["s_per_step_median"]), ms(r["s_per_step_min"]), ms(r["s_per_step_max"])))
    w("")

    w("## 2. Streamed (chunked) VAE decode vs the whole decode\n")
    w("`bench chunked-decode`: `memory::StreamedVaeDecoder` at several chunk sizes against"
      " `Vae::decode_tile` on all frames (the whole decode, the reference), and diffusers' temporal"
      " tiles (FramePack's default) for comparison. PSNR against the whole decode, in [-1, 1];"
      " device peak = activations (weights excluded).\n")
    for r in by.get("chunked-decode", []):
        w("Latents %s, %s repeats, %s threads.\n" % (r["latents"], r["repeat"], r["threads"]))
        w("| variant | median | time ratio | PSNR vs whole | max abs diff | device peak |")
        w("|---|---|---|---|---|---|")
        for v in r["rows"]:
            p = v["psnr_db"]
            w("| %s | %s | %.2fx | %s | %.2g | %s |" % (v["variant"], ms(v["median_s"]),
              v["time_ratio"], "identical" if p == "inf" else "%.1f dB" % p, v["max_abs"],
              mib(v["device_peak_bytes"])))
        peaks = [(v["variant"], v["device_peak_bytes"]) for v in r["rows"]
                 if v["variant"].startswith("streamed") and "bands" not in v["variant"]]
        if any(b[1] > a[1] for a, b in zip(peaks, peaks[1:])):
            w("\nNote: the peak does not fall monotonically with the chunk size here (a smaller"
              " chunk peaks higher than a larger one); measured as is, not yet explained.")
        w("\nThe streamed decode equals the whole decode to float rounding at every chunk size"
          " (PSNR > 130 dB), while diffusers' overlapping temporal tiles, which FramePack uses,"
          " differ visibly from it.")
    w("")

    w("## 3. Device peak vs video length\n")
    w("`bench video-memory`: the whole `generate()` on the tiny model, 64×64, window 9, on the"
      " simulated device with no budget; goal peak(60 s) ≤ 1.05 × peak(5 s).\n")
    w("| short | long | sections | peak short | peak long | ratio | goal | source |")
    w("|---|---|---|---|---|---|---|---|")
    vm = [(os.path.basename(results), r) for r in by.get("video-memory", [])]
    for name, ex in extra:
        vm += [(name, r) for r in ex if r["bench"] == "video-memory"]
    for src, r in vm:
        w("| %g s | %g s | %s / %s | %s | %s | **%.3f** | %s | %s |" % (
            r["short_seconds_video"], r["long_seconds_video"], r["short"]["sections"],
            r["long"]["sections"], mib(r["short"]["peak_bytes"]), mib(r["long"]["peak_bytes"]),
            r["peak_ratio"], "met" if r["peak_ratio"] <= 1.05 else "MISSED", src))
    w("")

    w("## 4. Generation under a quarter of the unconstrained peak\n")
    w("`bench budget`: one unconstrained run measures the peak, then unconstrained and budgeted"
      " runs alternate (tiny model, 1 s video, 2 steps); goal: ≤ 1.3× the time.\n")
    w("| budget | unconstrained | budgeted | time ratio | goal | peak under budget | governor |")
    w("|---|---|---|---|---|---|---|")
    for r in by.get("budget", []):
        w("| %s (%.0f %% of %s) | %s | %s | **%.2fx** | %s | %s | %s |" % (
            mib(r["budget_bytes"]), r["fraction"] * 100, mib(r["unconstrained_peak_bytes"]),
            ms(r["unconstrained_median_s"]), ms(r["budget_median_s"]), r["time_ratio"],
            "met" if r["time_ratio"] <= 1.3 else "MISSED", mib(r["limited"]["peak_bytes"]),
            "; ".join(r["limited"]["residency"][:2])))
    w("\nReading: on the tiny model the transformer's blocks are 1.2 MiB, so streaming them costs"
      " nothing and the budgeted run comes out *faster* (its decode plan differs from the"
      " unconstrained one); this shows that the budget is kept (peak under budget above) and that"
      " the governor's bookkeeping is cheap, not what streaming costs on a real 13 B transformer;"
      " that is what the GPU script's 6 GB / 24 GB runs measure.")
    w("")

    w("## 5. Telemetry overhead\n")
    w("`bench telemetry`: transformer forwards for ~1 s per trial with and without the sampler"
      " thread at 10 Hz (ABBA order), wall time and process CPU time (all threads); goal < 1 %."
      " The sampler's own busy time (probe + event + callback, per second of job) is exact; the"
      " A/B differences are medians of whole trials and, on this shared 2-core machine, scatter"
      " by several per cent either way (they are noise, not cost, when negative).\n")
    w("| rate | wall off / on (median) | wall A/B | CPU A/B | sampler busy | samples | goal |")
    w("|---|---|---|---|---|---|---|")
    for r in by.get("telemetry", []):
        cpu = "%+.1f %%" % (r["cpu_overhead"] * 100) if "cpu_overhead" in r else "–"
        w("| %g Hz | %s / %s | %+.1f %% | %s | %.4f %% | %s | %s |" % (
            r["hz"], ms(r["off_median_s"]), ms(r["on_median_s"]), r["overhead"] * 100, cpu,
            r["sampler_busy_fraction"] * 100, r["samples"],
            "met (sampler busy)" if r["sampler_busy_fraction"] < 0.01 else "MISSED"))
    w("\nReading: the sampler thread itself spends well under 0.01 % of the job's time. The A/B"
      " medians do not resolve 1 % here: five runs of this benchmark on this machine (load 2–8"
      " from other builds) gave wall-time differences between −36 % and +94 %, i.e. the"
      " machine's noise. A quiet machine (or the GPU script's longer steps) is needed to confirm"
      " the < 1 % goal by A/B timing; by the sampler's own busy time it is met with a wide margin.")
    w("")

    w("## 6. Chunked exact attention vs plain softmax attention (LibTorch 1.13)\n")
    for r in by.get("attention", []):
        w("`bench attention`: %s heads × %s dims, query chunk %s, %s repeats.\n" % (
            r["heads"], r["dim"], r["chunk"], r["repeat"]))
        w("| sequence | plain | chunked | time ratio | plain peak | chunked peak | max abs diff |")
        w("|---|---|---|---|---|---|---|")
        for v in r["rows"]:
            w("| %s | %s | %s | %.2fx | %s | %s | %.2g |" % (
                v["length"], ms(v["plain_median_s"]), ms(v["chunked_median_s"]), v["time_ratio"],
                mib(v["plain_peak_bytes"]), mib(v["chunked_peak_bytes"]), v["max_abs_diff"]))
    w("")

    # Section 7 is text until a GPU has run tools/gpu_bench.sh (then its results come here).
    w('## 7. GPU (not run yet)\n\n`tools/gpu_bench.sh` builds the engine against the machine\'s PyTorch, writes the full-size model set with random weights (`make-random-model --config full`, all eight components, ~43 GB, see [full-size-model-set.md](full-size-model-set.md): the transformer with 24×128 heads, 20 + 40 blocks, bf16 in the hub\'s three shards), and reports s/step at 640×640, window 9, with and without TeaCache, unconstrained and under 24 GB and 6 GB emulated cards (`--vram-budget`, which the governor turns into `setMemoryFraction`). Then it runs the full-size rehearsal of section 9 on CUDA inside an 8 GiB memory fraction (`tools/full-size-rehearsal.sh --device cuda --engine`: `framesmith-engine generate`, the whole pipeline without Qt, since the GPU machine builds the engine only) and copies its report to `OUT/rehearsal.md`; last, pinned and pageable host→device copy bandwidth to compare block streaming with. It is written to fit ~9 minutes on an H200. **It has not been run** (no GPU was lent to any session so far), so there are no GPU numbers here yet; the engine\'s `generate` that the rehearsal uses there was checked here on the tiny model (`tests/inference/engine_jobs_e2e_test.cpp`: the frames equal `generate()`\'s video byte for byte, and a resume after a kill makes them again).\n\nOn a lent H200, two `run` calls back to back (the machine stays warm 30 s between calls; the build is shared):\n\n```sh\nBUILD=/tmp/fsb MODEL=/tmp/fsm OUT=$OUT tools/gpu_bench.sh            # ~9 min: build, model set, s/step, rehearsal, copy bandwidth\ntools/gpu_memory_check.sh /tmp/fsb 2>&1 | tee $OUT/memory-check.log  # ~3 min: the GovernorGpu cases at 6 and 24 GiB\n```\n\nwith `carry: ["build-deps"]` (made here by `tools/bundle-engine-deps.sh`).\n')
    long_video_section(w, results, rows, extra)
    # Sections from 9 on are written by hand (the full-size rehearsal's report, the activation
    # peaks at full width): kept as the file has them.
    kept = ""
    if os.path.exists(out_path):
        old = open(out_path).read()
        at = old.find("\n## 9. ")
        if at >= 0:
            kept = old[at + 1:]
    open(out_path, "w").write("\n".join(o) + "\n" + ("\n" + kept if kept else ""))


# The measurement before the streamed section loop (framesmith-cli generate, tiny model,
# 320 px, 1 step, CPU): seconds, sections, peak RSS, wall, first and last section time.
LONG_VIDEO_BEFORE = [(5, 4, "1.16 GB", "106 s", "29.6 s", "30.5 s"),
                     (20, 17, "3.76 GB", "584 s", "29.2 s", "42.0 s"),
                     (40, 33, "6.94 GB", "1196 s", "29.2 s", "46.9 s")]


def program_name(path):
    """The parent commit's CLI, kept outside the build tree for the before numbers, is "before"."""
    return "framesmith-cli" if "/build" in path else "before: " + os.path.basename(path)


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def long_video_section(w, results, rows, extra):
    """Section 8: `bench long-video` summary lines (those with "runs"), before and after."""
    lv = [(os.path.basename(results), r) for r in rows if r["bench"] == "long-video" and "runs" in r]
    for name, ex in extra:
        lv += [(name, r) for r in ex if r["bench"] == "long-video" and "runs" in r]
    w("## 8. Host memory and section time vs video length\n")
    w("`bench long-video`: whole `framesmith-cli generate` jobs of several lengths, one child"
      " process each (MP4 writing included), run one after the other in one bench run; peak RSS is"
      " the child's `ru_maxrss`, section times come from its events (one section_done to the next)."
      " Goals: peak RSS of the longest ≤ 1.1 × the shortest; last section within 10 % of the"
      " second.\n")
    w("Before (the issue's numbers, whole-history path, tiny model, 320 px, 1 step):\n")
    w("| video | sections | peak RSS | wall | first section | last section |")
    w("|---|---|---|---|---|---|")
    for row in LONG_VIDEO_BEFORE:
        w("| %d s | %d | %s | %s | %s | %s |" % row)
    w("")
    if not lv:
        w("No `bench long-video` lines yet.\n")
        return
    w("Single section times scatter with the machine's load, so the table also gives the median of"
      " sections 2–6 against the median of the last five (trend).\n")
    w("| program | variant | px | video | sections | peak RSS | wall | 2nd section | last section | last / 2nd"
      " | median 2–6 | median last 5 | trend | RSS vs shortest | source |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for src, r in lv:
        base = r["runs"][0]["peak_rss_bytes"]
        for run in r["runs"]:
            t = run["section_s"]
            early, late = median(t[1:6]), median(t[-5:])
            w("| %s | %s | %s | %g s | %d | %s | %.1f s | %s | %s | %s | %s | %s | %.2f | **%.3f** | %s |" % (
                program_name(r["program"]), r["variant"], r["resolution"], run["seconds_video"],
                run["sections"], mib(run["peak_rss_bytes"]), run["wall_s"],
                ms(run["second_section_s"]) if "second_section_s" in run else "–",
                ms(run["last_section_s"]) if "last_section_s" in run else "–",
                "%.3f" % run["last_vs_second"] if "last_vs_second" in run else "–",
                ms(early), ms(late), late / early, run["peak_rss_bytes"] / base, src))
    w("")
    w("What was run: the tiny model at **128 px** (128×128 frames from the demo image), 1 step,"
      " window 9, CPU, instead of the issue's 320 px: on this shared 2-core machine a 60 s job at"
      " 320 px takes ~25 minutes after the change and far longer before it. `framesmith-cli` is"
      " the streamed path; `framesmith-cli` from the parent commit (`--program`) is the"
      " whole-history path, measured by the same bench, same settings. Section times scatter with"
      " the other jobs on the machine (load average ~4 during these runs).\n")
    w("Goals, measured here: peak RSS 60 s vs 5 s is 1.11 (original) and 1.16 (F1), just over the"
      " 1.1 goal, against 4.56 before; from 20 s to 60 s it is 1.03 and 1.00, so it does not grow"
      " with the length. Section time: the last five sections' median is 0.97 and 1.08 of"
      " sections 2–6 (1.44 before); the single last-vs-second pair scatters from 0.9 to 1.3 with"
      " the load, so it meets the 10 % goal in some runs and not in others.\n")
    w("At the issue's **320 px** (original variant, `long-video-host-320.jsonl`, 5 s and 60 s only:"
      " the 60 s job alone took an hour here): peak RSS 966 MiB for 5 s and 1021 MiB for 60 s,"
      " **1.06×**, inside the 1.1 goal (the issue's before: 1.16 GB for 5 s, 6.94 GB for 40 s)."
      " Its section times say nothing about the trend: the two cores were shared with two builds"
      " and three test runs during that hour (the 5 s job's sections took 42 s, the 60 s job's"
      " 65–93 s).\n")
    w("Reading: before, peak RSS grows with the video (the float history, the soft-appended copy,"
      " the RGB8 copy for the callback and the whole MP4 rewritten per section) and so does the"
      " section time; after, the loop holds the latent context and one blended section, the CLI"
      " one chunk, and the MP4 is joined from per-section segments at the end. The F1 run's 5 s"
      " job peaks lower than its 20 s and 60 s jobs, which peak alike: glibc's heap reaching its"
      " steady state (a fixed `MALLOC_MMAP_THRESHOLD_=4194304` makes 5 s and 20 s peak at"
      " 323 / 322 MiB, but costs ~60 % more time, so it is not used); the same 5 s job peaked at"
      " 358, 417 and 424 MiB in three runs. The 640 px run on the full-size set is not here: the"
      " set exists now (section 9), but one 640 px step of the 13B transformer (~25 000 tokens,"
      " ~650 TFLOP per forward) takes hours on these two cores; it waits for a GPU machine.\n")


if __name__ == "__main__":
    main()
