#!/usr/bin/env python3
"""Data-preparation speed and memory: x real time per step (decode, resample, loudness, VAD,
pitch, ASR, plus checks/writing) on the demo long-form file and on a 30-minute generated recording.

    .venv/bin/python bench/bench_dataprep.py            # writes bench/results/dataprep.json
    .venv/bin/python bench/bench_dataprep.py --quick    # demo file only

The 30-minute file is made here by concatenating the demo recording (espeak-ng speech) with sox,
converted to 44.1 kHz stereo FLAC so decode, mix-down and resampling do real work; it is written
to a temp dir and never committed. Each input runs in a fresh subprocess so its peak RSS
(getrusage ru_maxrss) is its own; each input runs `--repeat` times (default 2) and the fastest run
is recorded, with every run's total listed. The steps are the same calls prepare_dataset makes
(lane.data.audio / segment / checks / pitch / asr). ASR (pocketsphinx) on the 30-minute file is
timed on its first `--asr-seconds` of segments (default 120 s) and reported as its own x real time.
Target: >= 100x real time for everything but ASR; peak RSS < 2 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))



def run_one(path: Path, transcript: Path | None, asr_seconds: float) -> dict[str, object]:

    from lane.data import audio as au
    from lane.data import checks as ck
    from lane.data import pitch as pt
    from lane.data import segment as sg
    from lane.data.asr import PocketsphinxEngine

    sr = 22050
    t: dict[str, float] = {}
    # one-off start-up (imports, ONNX session, pocketsphinx decoder) is reported apart from per-audio cost
    t0 = time.perf_counter()
    import pyloudnorm  # noqa: F401
    import pyworld  # noqa: F401
    import soxr  # noqa: F401

    vad = sg.SileroVad()
    engine = PocketsphinxEngine(lm_text=transcript.read_text() if transcript else None)
    startup = time.perf_counter() - t0
    t_all = time.perf_counter()
    dec = au.decode(path, sr)
    t["decode"] = dec.timings["decode_s"]
    t["resample"] = dec.timings["resample_s"]
    dur = dec.duration
    t0 = time.perf_counter()
    gain = au.loudness_gain(dec.audio, sr, -23.0)
    t["loudness"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    probs = vad.probabilities(sg.to_16k(dec.audio, sr))
    regions = sg.speech_regions(probs)
    segs = sg.segment(dec.audio, sr, regions, min_clip_s=1.0, max_clip_s=15.0)
    t["vad"] = time.perf_counter() - t0
    settings = pt.PitchSettings(sample_rate=sr)
    t["pitch"] = t["checks_write"] = 0.0
    with tempfile.TemporaryDirectory(prefix="lane-bench-") as tmp:
        out = Path(tmp)
        for s in segs:
            clip = dec.audio[int(s.start * sr): int(s.end * sr)] * gain
            t0 = time.perf_counter()
            ck.measure(clip / gain, clip, sr, "some text")
            path_c, _ = au.write_clip(clip, sr, out / "wavs")
            t1 = time.perf_counter()
            f0 = pt.estimate(clip, settings)
            pt.write_cache(out / "sup", path_c, f0)
            t2 = time.perf_counter()
            t["checks_write"] += t1 - t0
            t["pitch"] += t2 - t1
    wall_no_asr = time.perf_counter() - t_all
    # ASR: pocketsphinx (with a transcript LM when a transcript is given, as prepare_dataset does)
    asr_audio = 0.0
    t0 = time.perf_counter()
    for s in segs:
        if asr_audio >= asr_seconds:
            break
        clip = dec.audio[int(s.start * sr): int(s.end * sr)] * gain
        engine.transcribe(clip, sr)
        asr_audio += s.duration
    t["asr"] = time.perf_counter() - t0
    steps = {k: {"seconds": round(v, 3), "x_realtime": round(dur / v, 1) if v > 0 else None}
             for k, v in t.items() if k != "asr"}
    no_asr = sum(v for k, v in t.items() if k != "asr")
    return {
        "file": path.name, "audio_s": round(dur, 2), "source_rate": dec.source_rate, "channels": dec.channels,
        "segments": len(segs), "steps": steps,
        "asr": {"engine": engine.name, "audio_s": round(asr_audio, 2), "seconds": round(t["asr"], 3),
                "x_realtime": round(asr_audio / t["asr"], 2) if t["asr"] > 0 else None},
        "total_excl_asr": {"seconds": round(no_asr, 3), "x_realtime": round(dur / no_asr, 1),
                           "wall_seconds": round(wall_no_asr, 3)},
        "startup_s": round(startup, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "audio_array_mb": round(dec.audio.nbytes / 1e6, 1),
        "meets_100x_excl_asr": all((v["x_realtime"] or 0) >= 100 for v in steps.values()),
    }


def make_30min(tmp: Path) -> Path:
    from lane.data.espeak import sox

    demo = ROOT / "data" / "demo" / "longform.flac"
    reps = 10  # 10 x ~3.06 min
    out = tmp / "thirty_min.flac"
    sox([*(str(demo) for _ in range(reps)), "-r", "44100", "-c", "2", str(out)])
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--asr-seconds", type=float, default=120.0)
    ap.add_argument("--repeat", type=int, default=2, help="runs per input; the fastest is recorded")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--transcript", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dataprep.json"))
    a = ap.parse_args()
    if a.one:
        res = run_one(Path(a.one), Path(a.transcript) if a.transcript else None, a.asr_seconds)
        print(json.dumps(res))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="lane-bench30-") as tmp:
        inputs = [(ROOT / "data" / "demo" / "longform.flac", ROOT / "data" / "demo" / "longform.txt", 1e9)]
        if not a.quick:
            t0 = time.perf_counter()
            big = make_30min(Path(tmp))
            print(f"made {big.name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            inputs.append((big, None, a.asr_seconds))
        for path, tr, asr_s in inputs:
            cmd = [sys.executable, __file__, "--one", str(path), "--asr-seconds", str(asr_s)]
            if tr:
                cmd += ["--transcript", str(tr)]
            runs = []
            for _ in range(a.repeat):  # the box is shared: keep the fastest run, list every run's total
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(out.strip().splitlines()[-1]))
            best = min(runs, key=lambda r: r["total_excl_asr"]["seconds"])
            best["runs_total_excl_asr_x_rt"] = [r["total_excl_asr"]["x_realtime"] for r in runs]
            best["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
            results.append(best)
            print(json.dumps(best, indent=1), file=sys.stderr)
    doc = {"name": "dataprep", "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
           "note": "2-core box shared with other jobs while measured: numbers are noisy (see loadavg_at_start, "
                   "runs_total_excl_asr_x_rt); start-up (imports, ONNX session, decoder) is startup_s, not in totals",
           "target": {"x_realtime_excl_asr": 100, "peak_rss_mb": 2048}, "results": results,
           "ratios": {r["file"]: {"total_excl_asr_x_rt": r["total_excl_asr"]["x_realtime"],
                                  "asr_x_rt": r["asr"]["x_realtime"],
                                  "peak_rss_fraction_of_2gb": round(r["peak_rss_mb"] / 2048, 3)} for r in results}}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
