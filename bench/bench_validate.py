"""Validate-stage benchmark: writes bench/results/validate_cpu.json.

Measures, on this machine's CPU:

1. the validate stage's wall time for a demo bundle (demo profile: tiny FastPitch from scratch +
   Griffin-Lim; trained here for --demo-steps steps unless --workspace points at one already built),
   split into its parts (synthesis, ASR, speaker, MCD/prosody, DNSMOS) from the stage's own stats;
2. ONNX synthesis RTF of that demo bundle with onnxruntime limited to --threads threads;
3. RTF of a production-size FastPitch (configs/nemo/fastpitch.yaml: d_model 384, 6+6 layers) +
   HiFi-GAN v1 generator (configs/nemo/hifigan.yaml), untrained, exported to ONNX with NeMo's
   `export()` and run with onnxruntime on --threads threads. Untrained FastPitch predicts arbitrary
   durations (about 0 frames a token), so the duration predictor's output layer is pinned to the
   frames a token lasts in natural speech (--chars-per-s, 14 by default): the RTF is then for
   realistic audio lengths, with the same compute as a trained model. Target <= 0.05.
4. the ASR measure with and without the expected-text grammar: on the demo references and synthesis,
   and on clean vs time-reversed vs noise espeak-ng speech (how well each mode separates them).

GPU batched RTFx is not measured here (no GPU on the development machine); pass --device cuda on a
GPU box to time the production-size models with onnxruntime-gpu/torch if available.

    .venv/bin/python bench/bench_validate.py [--workspace DIR] [--threads 2] [--skip-demo]

The CPU of the development machine is shared with other jobs while it runs: numbers are noisy.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import machine

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))



def build_demo(root: Path, steps: int, run_id: str) -> None:
    from lane.bundle import build_bundle
    from lane.core.config import deep_merge, load_profile
    from lane.core.stage import StageRun
    from lane.data.espeak import concat, speak
    from lane.nemo.tinydata import SENTENCES, make_tiny_dataset
    from lane.nemo.train import train_voice

    for name in ("configs",):
        if not (root / name).exists():
            shutil.copytree(REPO / name, root / name)
    prof = deep_merge(load_profile("demo", root), {"train": {"fastpitch": {"max_steps": steps}}})
    st = StageRun.open("train", root=root, run_id=run_id)
    ds = make_tiny_dataset(st.stage_dir / "data", n=24, n_val=4)
    train_voice(st, prof, ds, out_dir=st.stage_dir, weights_manifest=None, allow_from_scratch=True, resume=False)
    st.finish()
    ex = StageRun.open("export", root=root, run_id=run_id)
    build_bundle(ex, prof, run_dir=ex.run_dir, root=root, voice_profile_id="demo_voice")
    ex.finish()
    parts = [speak(t, root / "imp" / f"{i}.wav", voice="en-us+f3") for i, t in enumerate(SENTENCES[:4])]
    (root / "data" / "eval").mkdir(parents=True, exist_ok=True)
    concat(parts, root / "data" / "eval" / "impostor.flac")


def bench_demo_validate(root: Path, threads: int, run_id: str) -> dict[str, Any]:
    from lane import metrics as ev
    from lane.bundle.voice import OnnxVoice
    from lane.core.config import load_profile
    from lane.core.stage import StageRun
    from lane.stages.validate import read_sentences, validate_stage

    prof = load_profile("demo", root)
    st = StageRun.open("validate", root=root, run_id=run_id)
    t0 = time.perf_counter()
    summary = validate_stage(st, prof, root=root, run_dir=st.run_dir, voice_profile_id="demo_voice",
                             weights_manifest=str(REPO / "configs/voice/weights-manifest.example.json"))
    wall = time.perf_counter() - t0
    st.finish()
    voice = OnnxVoice(root / "bundles/demo_voice/voice_bundle", threads=threads)
    texts = [ev.normalize_words(s) for s in read_sentences(REPO / "configs/eval/sentences.txt")]
    rtf = ev.measure_rtf(voice.synthesize, texts, voice.sample_rate, warmup=1)
    # FastPitch alone (mel only) vs the Griffin-Lim vocoder: where the time goes
    t1 = time.perf_counter()
    mels = voice.mel_batch(texts)
    t_mel = time.perf_counter() - t1
    # ASR sharpness: grammar vs LM on the same references and synthesis
    asr = ev.Asr()
    rows = [r for r in summary["texts"] if r["kind"] == "heldout"]
    sharp: dict[str, Any] = {}
    for mode in ("lm", "jsgf"):
        import numpy as np

        ref_c, syn_c = [], []
        for i, r in enumerate(rows):
            a, sr = ev.load_audio(r["ref"])
            ref_c.append(asr.score(a, sr, r["text"], mode)["cer"])
            s, ssr = ev.load_audio(st.stage_dir / "audio" / f"heldout_{i:03d}.wav")
            syn_c.append(asr.score(s, ssr, r["text"], mode)["cer"])
        sharp[mode] = {"cer_ref": float(np.mean(ref_c)), "cer_synth": float(np.mean(syn_c)),
                       "cer_ratio": ev.safe_ratio(float(np.mean(syn_c)), float(np.mean(ref_c)))}
    audio_s = sum(m.shape[1] for m in mels) * int(voice.audio.get("hop_length", 256)) / voice.sample_rate
    return {"validate_wall_s": round(wall, 2), "n_heldout": summary["metrics"]["n_heldout"],
            "n_sentences": summary["metrics"]["n_sentences"], "metrics": summary["metrics"],
            "onnx_rtf_demo": round(rtf["rtf"], 4), "onnx_demo_audio_s": round(rtf["audio_s"], 2),
            "fastpitch_only_rtf_demo": round(t_mel / audio_s, 5) if audio_s else None,
            "vocoder": "griffin_lim", "threads": threads, "asr_modes": sharp}


def bench_asr_sharpness() -> dict[str, Any]:
    """CER of pocketsphinx on clean espeak-ng speech vs the same speech time-reversed and vs noise,
    with the general LM and with the expected-word grammar: how well each mode separates them."""
    import numpy as np

    from lane import metrics as ev
    from lane.data.espeak import speak
    from lane.nemo.tinydata import SENTENCES

    asr = ev.Asr()
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = [(ev.load_audio(speak(t, Path(tmp) / f"{i}.wav")), t) for i, t in enumerate(SENTENCES[:8])]
        for mode in ("lm", "jsgf"):
            sp, rv, nz = [], [], []
            t0 = time.perf_counter()
            for (a, sr), text in clips:
                sp.append(asr.score(a, sr, text, mode)["cer"])
                rv.append(asr.score(a[::-1].copy(), sr, text, mode)["cer"])
                nz.append(asr.score(rng.normal(0, 0.1, a.size).astype(np.float32), sr, text, mode)["cer"])
            s_, r_, n_ = float(np.mean(sp)), float(np.mean(rv)), float(np.mean(nz))
            out[mode] = {"cer_speech": round(s_, 4), "cer_reversed": round(r_, 4), "cer_noise": round(n_, 4),
                         "reversed_over_speech": round(r_ / max(s_, 1e-9), 3),
                         "seconds_per_clip": round((time.perf_counter() - t0) / (3 * len(clips)), 3)}
    out["sentences"] = len(SENTENCES[:8])
    return out


def _vocoder_rtf(model_cls: Any, hcfg: Any, channels: int, mels: list[Any], opts: Any, tmp: Path,
                 sr: int) -> dict[str, Any]:
    import onnxruntime as ort
    from omegaconf import OmegaConf, open_dict

    cfg = OmegaConf.create(OmegaConf.to_container(hcfg, resolve=False))
    with open_dict(cfg):
        cfg.upsample_initial_channel = channels
    voc = model_cls(cfg=OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))["model"]).eval()
    n_params = sum(p.numel() for p in voc.generator.parameters())
    path = tmp / f"vocoder_{channels}.onnx"
    voc.export(str(path))
    vs = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = vs.get_inputs()[0].name
    vs.run(None, {name: mels[0]})
    t = time.perf_counter()
    n = sum(vs.run(None, {name: m})[0].size for m in mels)
    wall = time.perf_counter() - t
    return {"upsample_initial_channel": channels, "generator_params": n_params, "vocoder_s": round(wall, 3),
            "rtf_vocoder": round(wall / (n / sr), 4)}


def bench_production_rtf(threads: int, chars_per_s: float) -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort
    from omegaconf import OmegaConf, open_dict

    from lane.nemo.runtime import import_nemo
    from lane.stages.validate import read_sentences

    import_nemo()
    from nemo.collections.tts.models import FastPitchModel, HifiGanModel

    tmp = Path(tempfile.mkdtemp(prefix="lane-bench-prod-"))
    try:
        fcfg = OmegaConf.load(REPO / "configs/nemo/fastpitch.yaml")
        fmodel = OmegaConf.create(OmegaConf.to_container(fcfg, resolve=False))
        with open_dict(fmodel):
            for k in ("train_ds", "validation_ds"):
                fmodel.model[k].defer_setup = True  # no data: the model is only exported
        fp_cfg = OmegaConf.create(OmegaConf.to_container(fmodel, resolve=True))["model"]
        fp = FastPitchModel(cfg=fp_cfg).eval()
        n_params_fp = sum(p.numel() for p in fp.parameters())
        # Untrained, the duration predictor gives ~0 frames a token. Pin its output layer so every
        # token lasts as long as in natural speech (chars_per_s): realistic mel lengths, same compute.
        import math

        import torch

        frames_per_token = float(fp_cfg.sample_rate) / float(fp_cfg.n_window_stride) / chars_per_s
        with torch.no_grad():
            fc = fp.fastpitch.duration_predictor.fc
            fc.weight.zero_()
            fc.bias.fill_(math.log(1.0 + frames_per_token))
        fp.export(str(tmp / "fastpitch.onnx"))
        hcfg = OmegaConf.load(REPO / "configs/nemo/hifigan.yaml")
        with open_dict(hcfg):
            for k in ("train_ds", "validation_ds"):
                hcfg.model[k].defer_setup = True
            hcfg.model.max_steps = 1
        h_cfg = OmegaConf.create(OmegaConf.to_container(hcfg, resolve=True))["model"]
        voc = HifiGanModel(cfg=h_cfg).eval()
        n_params_gen = sum(p.numel() for p in voc.generator.parameters())
        voc.export(str(tmp / "vocoder.onnx"))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        fps = ort.InferenceSession(str(tmp / "fastpitch.onnx"), opts, providers=["CPUExecutionProvider"])
        vs = ort.InferenceSession(str(tmp / "vocoder.onnx"), opts, providers=["CPUExecutionProvider"])
        sr = int(fp_cfg.sample_rate)
        texts = read_sentences(REPO / "configs/eval/sentences.txt")
        from lane.metrics import normalize_words

        def run_fp(ids: np.ndarray, pace: float) -> tuple[np.ndarray, int]:
            feeds = {"text": ids, "pitch": np.zeros(ids.shape, np.float32), "pace": np.full(ids.shape, pace, np.float32)}
            spect, nf = fps.run(["spect", "num_frames"], feeds)[:2]
            return spect, int(nf[0])

        t_fp = t_voc = 0.0
        mels: list[Any] = []
        audio_s = 0.0
        for i, text in enumerate(texts):
            words = normalize_words(text)
            ids = np.asarray([fp.vocab.encode(words)], dtype=np.int64)
            if i == 0:
                run_fp(ids, 1.0)  # warm-up
            t = time.perf_counter()
            spect, nf = run_fp(ids, 1.0)
            t_fp += time.perf_counter() - t
            mel = spect[:, :, :nf].astype(np.float32)
            mels.append(mel)
            if i == 0:
                vs.run(None, {vs.get_inputs()[0].name: mel})
            t = time.perf_counter()
            audio = vs.run(None, {vs.get_inputs()[0].name: mel})[0]
            t_voc += time.perf_counter() - t
            audio_s += audio.size / sr
        # the same mels through a smaller generator (HiFi-GAN v2 width: upsample_initial_channel 128)
        small = _vocoder_rtf(HifiGanModel, hcfg, 128, mels, opts, tmp, sr)
        return {"hifigan_v2_width": small,
                "rtf_with_v2_width_vocoder": round((t_fp + small["vocoder_s"]) / audio_s, 4),
                "fastpitch_params": n_params_fp, "hifigan_generator_params": n_params_gen,
                "threads": threads, "sentences": len(texts), "audio_s": round(audio_s, 2),
                "fastpitch_s": round(t_fp, 3), "vocoder_s": round(t_voc, 3),
                "rtf": round((t_fp + t_voc) / audio_s, 4), "rtf_fastpitch": round(t_fp / audio_s, 4),
                "rtf_vocoder": round(t_voc / audio_s, 4), "target_rtf": 0.05,
                "meets_target": (t_fp + t_voc) / audio_s <= 0.05,
                "frames_per_token": round(frames_per_token, 3),
                "note": f"untrained weights; duration output pinned to {chars_per_s} chars/s of speech"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, help="a workspace with bundles/demo_voice built (else one is built)")
    ap.add_argument("--demo-steps", type=int, default=300)
    ap.add_argument("--run-id", default="bench", help="run id of the workspace's train/export stages")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chars-per-s", type=float, default=14.0)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--skip-production", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/validate_cpu.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result: dict[str, Any] = {"bench": "validate", "machine": machine(),
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "note": "shared CPU while measured: noisy; GPU batched RTFx not measured (no GPU)"}
    if not args.skip_demo:
        root = args.workspace or Path(tempfile.mkdtemp(prefix="lane-bench-validate-"))
        if not (root / "bundles/demo_voice/voice_bundle/manifest.json").exists():
            t = time.perf_counter()
            build_demo(root, args.demo_steps, args.run_id)
            result["demo_build_s"] = round(time.perf_counter() - t, 1)
        result["demo"] = bench_demo_validate(root, args.threads, args.run_id)
        result["demo"]["training_steps"] = json.loads(
            (root / "bundles/demo_voice/voice_bundle/manifest.json").read_text())["training"]["steps"]
    result["asr_sharpness"] = bench_asr_sharpness()
    if not args.skip_production:
        result["production_size"] = bench_production_rtf(args.threads, args.chars_per_s)
    ratios: dict[str, Any] = {}
    if "production_size" in result:
        ratios["production_rtf_vs_target"] = round(result["production_size"]["rtf"] / 0.05, 3)
    sh = result["asr_sharpness"]
    ratios["asr_separation_grammar_vs_lm"] = round(sh["jsgf"]["reversed_over_speech"]
                                                   / max(sh["lm"]["reversed_over_speech"], 1e-9), 3)
    if "demo" in result:
        modes = result["demo"]["asr_modes"]
        ratios["asr_grammar_vs_lm_cer_ref"] = round(modes["jsgf"]["cer_ref"] / max(modes["lm"]["cer_ref"], 1e-9), 3)
    result["ratios"] = ratios
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "demo"} | {"demo_wall": result.get("demo", {}).get(
        "validate_wall_s")}, indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
