#!/usr/bin/env python3
"""ONNX synthesis speed of a voice bundle (lane.bundle.voice.OnnxVoice, onnxruntime on CPU, no NeMo):
real-time factor (synthesis wall / audio seconds) of FastPitch alone and with the vocoder.

    .venv/bin/python bench/bench_synth.py --bundle bundles/<id>/voice_bundle
    .venv/bin/python bench/bench_synth.py            # trains a tiny demo-sized FastPitch first (NeMo)

Writes bench/results/synth_cpu.json. The tiny model is the demo profile's FastPitch trained a few
steps: its speed is representative of the architecture size, not of voice quality.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A stitch in time saves nine.",
    "Pack my box with five dozen liquor jugs, then carry it carefully down the long stairs.",
]


def tiny_bundle(work: Path) -> Path:
    import copy

    from lane.bundle import build_bundle
    from lane.core.config import load_profile
    from lane.core.stage import StageRun
    from lane.nemo.tinydata import make_tiny_dataset
    from lane.nemo.train import train_voice

    ds = make_tiny_dataset(work / "data", n=8)
    prof = copy.deepcopy(load_profile("demo", ROOT))
    prof["train"]["fastpitch"]["max_steps"] = 5
    prof["train"]["fastpitch"]["config"] = str(ROOT / "configs" / "nemo" / "fastpitch.yaml")
    prof["train"]["min_epoch_steps"] = 4
    st = StageRun.open("train", root=work, run_id="bench-synth")
    train_voice(st, prof, ds, out_dir=st.stage_dir / "model", weights_manifest=None, allow_from_scratch=False,
                resume=False)
    est = StageRun.open("export", root=work, run_id="bench-synth")
    return build_bundle(est, prof, run_dir=est.run_dir, root=work, voice_profile_id="bench")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "synth_cpu.json"))
    args = ap.parse_args()
    from benchlib import machine

    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    bundle = Path(args.bundle) if args.bundle else tiny_bundle(Path(tempfile.mkdtemp(prefix="bench_synth_")))
    from lane.bundle.voice import OnnxVoice

    voice = OnnxVoice(bundle)
    voice.synthesize("warm up")
    mel_rtf, full_rtf = [], []
    audio_s = 0.0
    for _ in range(args.repeats):
        for text in SENTENCES:
            t0 = time.perf_counter()
            mel = voice.mel(text)
            t1 = time.perf_counter()
            audio = voice.vocode(mel)
            t2 = time.perf_counter()
            dur = len(audio) / voice.sample_rate
            audio_s += dur
            mel_rtf.append((t1 - t0) / dur)
            full_rtf.append((t2 - t0) / dur)
    manifest = json.loads((bundle / "manifest.json").read_text())
    result = {
        "bench": "synth", "date": started, "machine": machine(),
        "note": "CPU shared with other jobs while measured: noisy; onnxruntime CPUExecutionProvider",
        "bundle": {"vocoder": manifest["models"]["vocoder"]["type"], "tiny_demo_model": args.bundle is None},
        "numbers": {"fastpitch_rtf_median": round(statistics.median(mel_rtf), 5),
                    "end_to_end_rtf_median": round(statistics.median(full_rtf), 5),
                    "audio_s_synthesized": round(audio_s, 2)},
        "ratios": {"x_real_time_end_to_end": round(1 / statistics.median(full_rtf), 2)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["numbers"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
