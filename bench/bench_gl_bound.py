#!/usr/bin/env python3
"""Griffin-Lim upper bound: how good can a FastPitch + Griffin-Lim voice get at all?

Takes demo-like clips (espeak-ng en-us, 165 wpm, 16 kHz, resampled to 22050 Hz as the lane does), computes
the exact log-mel a FastPitch of configs/nemo/fastpitch.yaml predicts (NeMo's AudioToMelSpectrogramPreprocessor),
inverts it with lane.core.griffin_lim.griffin_lim for several n_iter / power settings, and scores the result as the
validate stage does: pocketsphinx jsgf CER (vs the recordings' own CER), MCD (lane.metrics.mcd_dtw) against
the recording, resemblyzer similarity to the speaker (mean embedding of the recordings) vs the en-us+f3
impostor (data/eval/impostor.flac). A perfect spectrogram model can do no better than these numbers.

    .venv/bin/python bench/bench_gl_bound.py [--n 6] [--out bench/results/gl_bound.json]
    # any speaker (an LJSpeech folder, e.g. bench_quality.py --make-espeak-data DIR --voice flite:rms):
    .venv/bin/python bench/bench_gl_bound.py --heldout DIR/heldout --impostor DIR/impostor.flac --n 20

The CER is free decoding (pocketsphinx with its full en-us LM, as the validate stage gates it); `--asr-mode jsgf`
gives the grammar-constrained advisory score instead.

`--bundle DIR` inverts the mels a trained voice predicts for the same texts (its ONNX FastPitch, lane.bundle.voice)
instead of the recordings' own: the vocoder settings on a real voice, not on a perfect spectrogram.

    .venv/bin/python bench/bench_gl_bound.py --heldout DIR/heldout --impostor DIR/impostor.flac --n 20 \
        --bundle WS/bundles/VOICE/candidates/RUN --settings 32:0.9,32:1.0,32:1.2,32:1.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def gl_nnls(mel, audio: dict, n_iter: int, power: float):
    """Griffin-Lim after librosa's non-negative least-squares mel inversion (instead of a clipped pseudo-inverse)."""
    import librosa
    import numpy as np

    mag = np.clip(np.exp(mel.astype(np.float64)) - audio["log_zero_guard_value"], 0.0, None)
    lin = librosa.feature.inverse.mel_to_stft(mag, sr=audio["sample_rate"], n_fft=audio["n_fft"], power=1.0,
                                              fmin=audio["lowfreq"], fmax=audio["highfreq"], norm="slaney")
    lin = np.clip(lin, 1e-8, None) ** power
    y = librosa.griffinlim(lin, n_iter=n_iter, hop_length=audio["hop_length"], win_length=audio["win_length"],
                           n_fft=audio["n_fft"], window="hann", random_state=0)
    return (0.9 * y / max(float(np.max(np.abs(y))), 1e-9)).astype(np.float32)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=6, help="clips (first N demo sentences)")
    ap.add_argument("--settings", default="32:1.0,32:1.2,64:1.2,100:1.2,64:1.5,100:1.5",
                    help="comma list of n_iter:power[:nnls] (nnls: librosa's NNLS mel inversion instead of the "
                    "lane's pseudo-inverse)")
    ap.add_argument("--heldout", type=Path, default=None,
                    help="an LJSpeech folder (metadata.csv + wavs/) of the speaker instead of the demo's espeak en-us")
    ap.add_argument("--impostor", type=Path, default=None, help="another voice (default data/eval/impostor.flac)")
    ap.add_argument("--asr-mode", default="lm", choices=["lm", "jsgf"])
    ap.add_argument("--bundle", type=Path, default=None,
                    help="a voice bundle: invert the mels it predicts for the texts instead of the recordings' own")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import numpy as np
    import torch
    from nemo.core.classes.common import safe_instantiate
    from omegaconf import OmegaConf

    from lane import metrics as ev
    from lane.core.griffin_lim import griffin_lim
    from lane.data.espeak import speak
    from scripts.make_demo_data import SENTENCES

    torch.set_num_threads(2)
    cfg = OmegaConf.load(ROOT / "configs/nemo/fastpitch.yaml")
    pre = safe_instantiate(OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))["model"]["preprocessor"])
    audio_cfg = {"sample_rate": 22050, "n_mels": 80, "n_fft": 1024, "win_length": 1024, "hop_length": 256,
                 "lowfreq": 0.0, "highfreq": 8000.0, "log_zero_guard_value": 1e-5, "mag_power": 1.0}
    asr, enc = ev.Asr(), ev.SpeakerEncoder()
    refs = []
    if args.heldout:
        from bench_quality import read_ljspeech_rows

        rows_in = read_ljspeech_rows(args.heldout)[: args.n]
        texts = [r["text"] for r in rows_in]
        for r in rows_in:
            a, sr = ev.load_audio(r["audio_filepath"])
            a16 = ev.resample(a, sr, 16000) if sr != 16000 else a
            refs.append((a16, ev.resample(a16, 16000, 22050)))
    else:
        texts = SENTENCES[-args.n:]
        with tempfile.TemporaryDirectory() as tmp:
            for i, t in enumerate(texts):
                p = speak(t, Path(tmp) / f"c{i}.wav", voice="en-us", rate_wpm=165, sample_rate=16000)
                a16, _ = ev.load_audio(p)
                refs.append((a16, ev.resample(a16, 16000, 22050)))
    imp = ev.load_audio(args.impostor or ROOT / "data/eval/impostor.flac")
    speaker = np.mean([enc.embed(a, 16000) for a, _ in refs], axis=0)
    res: dict = {"texts": texts, "heldout": str(args.heldout) if args.heldout else "demo espeak-ng en-us",
                 "asr_mode": args.asr_mode, "impostor_sim": ev.cosine(enc.embed(*imp), speaker)}
    res["ref"] = {"cer": float(np.mean([asr.score(a, 16000, t, args.asr_mode)["cer"] for (a, _), t in zip(refs, texts, strict=True)])),
                  "spk_sim_loo": float(np.mean([ev.cosine(enc.embed(a, 16000), speaker) for a, _ in refs]))}
    mels = []
    if args.bundle:
        from lane.bundle.voice import OnnxVoice

        voice = OnnxVoice(args.bundle)
        if voice.sample_rate != 22050:
            raise SystemExit(f"--bundle: {args.bundle} speaks at {voice.sample_rate} Hz, this bench at 22050 Hz")
        mels = voice.mel_batch(texts)
        audio_cfg = voice.audio  # invert with the mel settings the voice was trained on, as its own vocode() does
        res["mels"] = f"predicted by the bundle {args.bundle}"
    else:
        for _, a22 in refs:
            x = torch.from_numpy(a22)[None]
            m, _ = pre(input_signal=x, length=torch.tensor([x.shape[1]]))
            mels.append(m[0].numpy())
        res["mels"] = "the recordings' own (NeMo's preprocessor): a perfect spectrogram model"
    rows = []
    for spec in args.settings.split(","):
        parts = spec.split(":")
        n_iter, power = int(parts[0]), float(parts[1])
        method = parts[2] if len(parts) > 2 else "pinv"
        t0 = time.perf_counter()
        if method == "nnls":
            syn = [gl_nnls(m, audio_cfg, n_iter, power) for m in mels]
        else:
            syn = [griffin_lim(m, audio_cfg, n_iter=n_iter, power=power) for m in mels]
        dt = time.perf_counter() - t0
        cers = [asr.score(s, 22050, t, args.asr_mode)["cer"] for s, t in zip(syn, texts, strict=True)]
        sims = [ev.cosine(enc.embed(s, 22050), speaker) for s in syn]
        mcds = [ev.mcd_dtw(s, 22050, a, 16000) for s, (a, _) in zip(syn, refs, strict=True)]
        dur = sum(len(s) for s in syn) / 22050
        row = {"n_iter": n_iter, "power": power, "method": method, "cer": float(np.mean(cers)), "spk_sim": float(np.mean(sims)),
               "spk_margin": float(np.mean(sims)) - res["impostor_sim"], "mcd_db": float(np.mean(mcds)),
               "gl_rtf": dt / dur}
        rows.append(row)
        print(json.dumps(row), flush=True)
    res["griffin_lim"] = rows
    print(json.dumps({k: v for k, v in res.items() if k != "griffin_lim"}, indent=1))
    if args.out:
        from benchlib import machine

        res["machine"] = machine()
        Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
