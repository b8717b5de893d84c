#!/usr/bin/env python3
"""Train the project's own base FastPitch on a multi-voice espeak-ng corpus, on the CPU.

The demo profile fine-tunes from this base (train.fastpitch.init: base) through the same code path
production uses with NGC checkpoints (lane.nemo.fastpitch.build_fastpitch): the .nemo holds a FastPitch of
configs/nemo/fastpitch.yaml (learn_alignment, the EnglishCharsTokenizer exactly as configured there,
22050 Hz, 80 mels up to 8 kHz) with the size knobs in SIZE, and nothing else.

Stages (each resumable; `all` runs them in order):

    corpus   sentences (scripts/base_text.py: a template grammar + words of pocketsphinx's en-us LM,
             seeded; every demo/eval/test sentence excluded) spoken by espeak-ng with the English
             voices in VOICES and the variants in VARIANTS, a random pitch and speed per clip (seeded);
             each clip band-limited like the demo data (22050 -> 16000 -> 22050 Hz), edge silence
             trimmed to PAD_S, loudness-normalised to -23 LUFS (as the data stage does), written as
             16-bit WAV; pitch with the data stage's estimator (lane.data.pitch, pyworld) into
             TTSDataset's cache layout under sup_<settings hash> (settings: configs/profiles/base.yaml
             data.pitch), octave errors removed per voice; NeMo train/val manifests.
             HELD OUT (the demo's and the tests' target speakers): the whole en-us voice and the f3
             variant of every voice; never in the corpus.
    train    FastPitch from scratch on the corpus with Lightning (fp32, grad clip 1.0), torch threads
             --threads; atomic checkpoints every --checkpoint-every steps (work/checkpoints/last.ckpt,
             plus step snapshots every --snapshot-every), a progress log (work/train.log) and a JSON-lines
             loss log (work/loss_log.jsonl); `--resume` continues from last.ckpt.
    export   the checkpoint -> a .nemo (fp16 state dict inside unless --fp32; restore_from loads it into the
             fp32 model), verified by restoring it and comparing a synthesized mel with the checkpoint's;
             writes <out>.json beside it (sha256, size, steps, wall time, machine, commit).
    eval     Griffin-Lim synthesis of held-out sentences with a checkpoint or .nemo, scored with pocketsphinx
             (jsgf, as the validate stage does) against espeak-ng en-us recordings of the same texts.

Examples:

    .venv/bin/python scripts/train_base.py all --work /work/base-train/run1          # hours on 2 cores
    nohup nice -n 10 .venv/bin/python scripts/train_base.py train --work W --resume > W/nohup.log 2>&1 &
    .venv/bin/python scripts/train_base.py export --work W --out lane/assets/base_fastpitch/lane-base-fastpitch.nemo
    .venv/bin/python scripts/train_base.py all --work /tmp/tiny --tiny              # ~1 minute, for tests
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

FASTPITCH_CONFIG = ROOT / "configs" / "nemo" / "fastpitch.yaml"
BASE_PROFILE = ROOT / "configs" / "profiles" / "base.yaml"

# ---------------------------------------------------------------------------------------- recipe
# English voices of espeak-ng 1.51 (`espeak-ng --voices=en`), minus the held-out en-us and the MBROLA
# voices (not installed). "en" is en-gb: espeak-ng applies +variant to "en" but silently ignores it on
# the alias "en-gb".
VOICES = ["en", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
HELD_OUT_VOICES = ["en-us"]          # the demo speaker and the tests' voice, with all its variants
HELD_OUT_VARIANTS = ["f3"]           # the demo's impostor (en-us+f3) and the tests' second voice
# `espeak-ng --voices=variant`, minus f3 (held out), whisper/whisperf/croak (no or rough voicing: pitch
# is meaningless), Demonic/UniRobot/anikaRobot/announcer/robosoft* (ring-modulated or filtered effects,
# far from any speaker), fast (a test variant) and "Mr serious" (a space in the name).
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f4", "f5", "klatt", "klatt2", "klatt3", "klatt4", "klatt5", "klatt6", "Alex", "Alicia", "Andrea", "Andy", "Annie", "AnxiousAndy", "Denis", "Diogo", "Gene", "Gene2", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael", "Mike", "Nguyen", "RicishayMax", "RicishayMax2", "RicishayMax3", "Storm", "Tweaky", "adam", "anika", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb", "david", "ed", "edward", "edward2", "grandma", "grandpa", "gustave", "iven", "iven2", "iven3", "iven4", "john", "kaukovalta", "linda", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert", "sandro", "shelby", "steph", "steph2", "steph3", "travis", "victor", "zac"]
DEFAULT_VARIANT_P = 0.3              # share of clips in a voice's default (no +variant) sound
# Natural-sounding voices (concatenative diphone / unit voices of real speakers, scripts/consent_voices.py's
# catalogue): a --natural-share of the clips. HELD OUT: flite's rms (the quality bench's unseen natural
# speaker) and slt in every form (kept for independent checks, never used by the project).
NATURAL_VOICES = ["flite:kal", "flite:kal16", "flite:awb", "festival:kal_diphone", "festival:ked_diphone"]
HELD_OUT_NATURAL = ["flite:rms", "flite:slt", "festival:cmu_us_slt_arctic_hts"]
NATURAL_PITCH_HZ = (-15, 15)         # flite: offset of int_f0_target_mean (Festival's diphone voices: ignored)
PITCH_RANGE = (25, 75)               # espeak-ng -p (0-99, default 50), uniform per clip
RATE_WPM = (125, 170, 215)           # espeak-ng -s, triangular(low, mode, high) per clip
PAD_S = 0.1                          # silence kept before and after the speech (data stage: pad_s)
TARGET_LUFS = -23.0                  # data stage: target_lufs
BAND_LIMIT_SR = 16000                # the demo data is 16 kHz: the corpus goes through the same band limit
SR = 22050

# FastPitch size (top-level knobs of configs/nemo/fastpitch.yaml). Chosen by bench/bench_base_size.py: the
# demo fine-tunes it a few hundred steps within ~3 minutes on 2 CPU cores.
# The text encoder runs on characters (short sequences) and is cheap, so it gets one layer more than the
# decoder, which runs on mel frames and dominates the step time.
SIZE = dict(d_model=128, n_layer_enc=4, n_layer_dec=3, n_head=1, d_head=64, d_inner=384, predictor_filter=128,
            dropout=0.1)
# Batch 8: on a shared 2-core CPU the cost per clip is fixed, and more, smaller updates learn the alignment
# sooner. NoamAnnealing (d_model 1): lr(step) = lr * min(step**-0.5, step * warmup**-1.5), peak lr/sqrt(warmup)
# = 8.9e-4 at step 500, 2.8e-4 at 5000. An epoch is ~1500 steps; the binarization loss is on from epoch 1.
TRAIN = dict(batch_size=8, lr=0.02, warmup_steps=500, bin_loss_warmup_epochs=1)
EXPORT_BIN_LOSS_WARMUP_EPOCHS = 1    # stored in the .nemo: a fine-tune starts with a trained aligner
TINY = dict(n_clips=24, max_steps=20, n_val=4, size=dict(d_model=32, n_layer_enc=1, n_layer_dec=1, d_head=16,
                                                          d_inner=64, predictor_filter=32), batch_size=4)


def log(work: Path, msg: str) -> None:
    line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(work / "train.log", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "scripts/train_base.py",
                                "scripts/base_text.py", "configs/nemo/fastpitch.yaml"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out.stdout.strip() + ("+uncommitted-script-changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> dict[str, Any]:
    cpu = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": cpu, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "platform": platform.platform(), "python": platform.python_version(),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}


def pitch_settings():
    import yaml

    from lane.data.pitch import PitchSettings

    data = yaml.safe_load(BASE_PROFILE.read_text(encoding="utf-8")).get("data") or {}
    return PitchSettings.from_profile(data, SR)


# ---------------------------------------------------------------------------------------- corpus
def clip_recipe(seed: int, i: int, natural_share: float = 0.0) -> dict[str, Any]:
    """Voice, variant, pitch and rate of clip i (independent of every other clip: resumable, parallel).
    `espeak_voice` names the speaker of the clip: an espeak-ng voice+variant, or engine:name of a natural voice."""
    rng = random.Random(seed * 1_000_003 + i)
    if natural_share and rng.random() < natural_share:
        voice = rng.choice(NATURAL_VOICES)
        assert voice not in HELD_OUT_NATURAL
        return {"voice": voice, "variant": None, "espeak_voice": voice, "pitch": rng.randint(*NATURAL_PITCH_HZ),
                "rate_wpm": round(rng.triangular(RATE_WPM[0], RATE_WPM[2], RATE_WPM[1]))}
    voice = rng.choice(VOICES)
    variant = None if rng.random() < DEFAULT_VARIANT_P else rng.choice(VARIANTS)
    assert voice not in HELD_OUT_VOICES and variant not in HELD_OUT_VARIANTS
    return {"voice": voice, "variant": variant, "espeak_voice": voice + (f"+{variant}" if variant else ""),
            "pitch": rng.randint(*PITCH_RANGE), "rate_wpm": round(rng.triangular(RATE_WPM[0], RATE_WPM[2], RATE_WPM[1]))}


def _render(job: tuple[int, str, dict[str, Any], str]) -> dict[str, Any] | None:
    """espeak-ng -> band limit -> trim/pad -> loudness -> wav; raw F0 to npy. Returns the clip's row."""
    import numpy as np
    import soundfile as sf
    import soxr

    from lane.data.audio import loudness_gain, pcm16
    from lane.data.pitch import estimate

    i, text, rec, work_s = job
    work = Path(work_s)
    wav = work / "corpus" / "wavs" / f"c{i:06d}.wav"
    f0_path = work / "corpus" / "f0" / f"c{i:06d}.npy"
    meta_path = work / "corpus" / "meta" / f"c{i:06d}.json"
    if meta_path.exists():  # done before (resumed corpus): reuse it only if it is this very clip
        row = json.loads(meta_path.read_text())
        if row.get("text") == text and row.get("espeak_voice") == rec["espeak_voice"] and \
                row.get("pitch") == rec["pitch"] and row.get("rate_wpm") == rec["rate_wpm"]:
            return row
    raw = work / "corpus" / "tmp" / f"c{i:06d}.espeak.wav"
    if ":" in rec["espeak_voice"]:  # a natural voice: rendered as scripts/consent_voices.py does (16 kHz after)
        import consent_voices as cv

        cv._raw(rec["espeak_voice"], text, raw, cv.Style(speed=rec["rate_wpm"] / RATE_WPM[1], pitch=rec["pitch"]))
    else:
        subprocess.run(["espeak-ng", "-v", rec["espeak_voice"], "-s", str(rec["rate_wpm"]), "-p", str(rec["pitch"]),
                        "-w", str(raw), text], check=True, capture_output=True)
    x, sr = sf.read(str(raw), dtype="float32")
    raw.unlink()
    if x.ndim > 1:
        x = x.mean(axis=1)
    if sr != SR:
        x = soxr.resample(x, sr, SR).astype(np.float32)
    x = soxr.resample(soxr.resample(x, SR, BAND_LIMIT_SR, quality="HQ"), BAND_LIMIT_SR, SR, quality="HQ")
    x = np.asarray(x, dtype=np.float32)
    # trim to the speech (frames within 40 dB of the peak) and keep PAD_S of silence each side
    hop = 256
    n = len(x) // hop
    if n < 4:
        return None
    e = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    on = np.nonzero(20 * np.log10(e / e.max()) > -40)[0]
    pad = int(PAD_S * SR)
    start, end = max(0, on[0] * hop - pad), min(len(x), (on[-1] + 1) * hop + pad)
    x = x[start:end]
    lead = pad - (on[0] * hop - start)
    tail = pad - (end - (on[-1] + 1) * hop)
    x = np.concatenate([np.zeros(max(lead, 0), np.float32), x, np.zeros(max(tail, 0), np.float32)])
    x = x * loudness_gain(x, SR, TARGET_LUFS)
    x = pcm16(x).astype(np.float32) / 32768.0  # what the wav holds
    dur = len(x) / SR
    row = {"i": i, "text": text, **rec, "duration": round(dur, 3), "audio_filepath": str(wav)}
    if not (0.8 <= dur <= 14.5):
        row["rejected"] = f"duration {dur:.2f} s"
    else:
        sf.write(str(wav), pcm16(x), SR, subtype="PCM_16")
        f0 = estimate(x, pitch_settings())
        np.save(f0_path, f0)
    meta_path.write_text(json.dumps(row))
    return row


def make_corpus(work: Path, n_clips: int, seed: int, jobs: int, n_val: int, natural_share: float = 0.0) -> dict[str, Any]:
    import numpy as np
    from base_text import SentenceGenerator, forbidden_texts, lm_vocabulary

    from lane.data import pitch as pt

    corpus = work / "corpus"
    for d in ("wavs", "f0", "meta", "tmp"):
        (corpus / d).mkdir(parents=True, exist_ok=True)
    done = corpus / "corpus.json"
    if done.exists():
        info = json.loads(done.read_text())
        if info.get("n_clips") == n_clips and info.get("seed") == seed and \
                info.get("natural_share", 0.0) == natural_share:
            log(work, f"corpus: already built ({info['n_train']} train / {info['n_val']} val clips, "
                      f"{info['hours']:.2f} h)")
            return info
    t0 = time.time()
    forbidden = forbidden_texts(ROOT)
    texts_path = corpus / "sentences.txt"
    if texts_path.exists() and len(texts_path.read_text(encoding="utf-8").splitlines()) == n_clips:
        texts = texts_path.read_text(encoding="utf-8").splitlines()
    else:
        gen = SentenceGenerator(seed, forbidden, lm_words=lm_vocabulary())
        texts = gen.sentences(n_clips)
        texts_path.write_text("\n".join(texts) + "\n", encoding="utf-8")
        log(work, f"corpus: {len(texts)} sentences generated ({gen.rejected_forbidden} dropped for matching "
                  f"or sharing five words with one of {len(forbidden)} evaluation/demo/test sentences)")
    if natural_share:
        import consent_voices as cv

        missing = cv.ensure_engines(("festival", "flite"))
        if missing:
            raise SystemExit(f"--natural-share needs the Debian packages {' '.join(missing)}")
    jobs_list = [(i, t, clip_recipe(seed, i, natural_share), str(work)) for i, t in enumerate(texts)]
    rows: list[dict[str, Any]] = []
    if jobs > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(jobs) as pool:
            for k, row in enumerate(pool.imap(_render, jobs_list, chunksize=8)):
                rows.append(row)
                if (k + 1) % 500 == 0:
                    log(work, f"corpus: {k + 1}/{n_clips} clips ({time.time() - t0:.0f} s)")
    else:
        for k, job in enumerate(jobs_list):
            rows.append(_render(job))
            if (k + 1) % 500 == 0:
                log(work, f"corpus: {k + 1}/{n_clips} clips ({time.time() - t0:.0f} s)")
    kept = [r for r in rows if r and "rejected" not in r]
    # octave errors per voice (the data stage does it per speaker)
    settings = pitch_settings()
    sup = pt.cache_dir(corpus, settings)
    tracks_all = []
    by_voice: dict[str, list[int]] = {}
    for k, r in enumerate(kept):
        by_voice.setdefault(r["espeak_voice"], []).append(k)
    fixed = 0
    tracks: list[Any] = [None] * len(kept)
    for idx in by_voice.values():
        tr = [np.load(corpus / "f0" / f"c{kept[k]['i']:06d}.npy") for k in idx]
        tr, n_fixed = pt.remove_octave_errors(tr)
        fixed += n_fixed
        for k, t in zip(idx, tr, strict=True):
            tracks[k] = t
    for r, t in zip(kept, tracks, strict=True):
        pt.write_cache(sup, Path(r["audio_filepath"]), t)
        tracks_all.append(t)
    stats = pt.stats(tracks_all)
    rng = random.Random(seed + 17)
    order = list(range(len(kept)))
    rng.shuffle(order)
    val_idx = set(order[:n_val])
    lines_tr, lines_va = [], []
    for k, r in enumerate(kept):
        line = json.dumps({"audio_filepath": r["audio_filepath"], "text": r["text"], "normalized_text": r["text"],
                           "duration": r["duration"]}) + "\n"
        (lines_va if k in val_idx else lines_tr).append(line)
    (corpus / "train_manifest.json").write_text("".join(lines_tr), encoding="utf-8")
    (corpus / "val_manifest.json").write_text("".join(lines_va), encoding="utf-8")
    hours = sum(r["duration"] for r in kept) / 3600
    voices: dict[str, int] = {}
    for r in kept:
        voices[r["voice"]] = voices.get(r["voice"], 0) + 1
    info = {"n_clips": n_clips, "seed": seed, "n_kept": len(kept), "n_rejected": len(rows) - len(kept),
            "n_train": len(lines_tr), "n_val": len(lines_va), "hours": round(hours, 3),
            "sup_data_dir": str(sup), "pitch_settings": settings.as_dict(), "pitch_stats": stats,
            "octave_frames_fixed": fixed, "clips_per_voice": voices,
            "n_voice_variant_combinations": len(by_voice), "held_out_voices": HELD_OUT_VOICES,
            "held_out_variants": HELD_OUT_VARIANTS, "voices": VOICES, "variants": VARIANTS,
            "natural_share": natural_share, "natural_voices": NATURAL_VOICES if natural_share else [],
            "held_out_natural": HELD_OUT_NATURAL if natural_share else [],
            "default_variant_p": DEFAULT_VARIANT_P, "pitch_range": PITCH_RANGE, "rate_wpm": RATE_WPM,
            "espeak_ng": subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip(),
            "wall_s": round(time.time() - t0, 1)}
    atomic_json(done, info)
    shutil.rmtree(corpus / "tmp", ignore_errors=True)
    log(work, f"corpus: {len(kept)} clips kept ({hours:.2f} h), {len(rows) - len(kept)} rejected, "
              f"pitch mean {stats['pitch_mean']:.1f} Hz std {stats['pitch_std']:.1f}, {time.time() - t0:.0f} s")
    return info


# ---------------------------------------------------------------------------------------- model config
def model_config(info: dict[str, Any], work: Path, size: dict[str, Any], train: dict[str, Any],
                 pitch_stats: dict[str, float] | None = None) -> Any:
    """FastPitch config for the corpus; `pitch_stats` (mean, std) replaces the corpus' own (a continued base keeps
    the normalisation its weights learned)."""
    from omegaconf import OmegaConf

    base = OmegaConf.load(FASTPITCH_CONFIG)
    ps = info["pitch_settings"]
    stats = pitch_stats or info["pitch_stats"]
    knobs = {**size, **train, "sample_rate": SR, "pitch_fmin": ps["fmin"], "pitch_fmax": ps["fmax"],
             "hop_length": ps["hop_length"], "win_length": ps["win_length"], "n_fft": ps["n_fft"],
             "pitch_mean": float(stats["pitch_mean"]), "pitch_std": float(stats["pitch_std"]),
             "num_workers": 0}
    unknown = [k for k in knobs if k not in base]
    if unknown:
        raise SystemExit(f"unknown FastPitch knobs {unknown}")
    full = OmegaConf.create(OmegaConf.to_container(OmegaConf.merge(base, knobs), resolve=True))
    cfg = full["model"]
    corpus = work / "corpus"
    for part, man in (("train_ds", "train_manifest.json"), ("validation_ds", "val_manifest.json")):
        cfg[part]["dataset"]["manifest_filepath"] = str(corpus / man)
        cfg[part]["dataset"]["sup_data_path"] = info["sup_data_dir"]
    cfg.validation_ds.dataloader_params.batch_size = int(train["batch_size"])
    return cfg


# ---------------------------------------------------------------------------------------- training
def _callback(work: Path, total: int, every: int, snapshot_every: int, log_every: int, t_start: float):
    import lightning.pytorch as pl

    class Progress(pl.Callback):
        def __init__(self) -> None:
            self.t_last = time.time()
            self.step_last = None
            self.fh = None

        def on_train_start(self, trainer, pl_module):
            self.fh = open(work / "loss_log.jsonl", "a", encoding="utf-8")  # noqa: SIM115
            self.step_last = int(trainer.global_step)
            log(work, f"train: start at step {trainer.global_step} of {total}")

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            step = int(trainer.global_step)
            m = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
            loss = m.get("t_loss")
            if loss is not None and not math.isfinite(loss):
                raise RuntimeError(f"loss became {loss} at step {step}")
            if step % 10 == 0 and self.fh is not None:
                self.fh.write(json.dumps({"step": step, "epoch": int(trainer.current_epoch), "time": round(time.time(), 1),
                                          **{k: round(v, 5) for k, v in m.items()}}) + "\n")
                self.fh.flush()
            if step % log_every == 0 or step >= total:
                now = time.time()
                sps = (step - self.step_last) / max(now - self.t_last, 1e-9)
                self.t_last, self.step_last = now, step
                lr = trainer.optimizers[0].param_groups[0]["lr"]
                eta = (total - step) / max(sps, 1e-9)
                terms = " ".join(f"{k}={v:.4f}" for k, v in sorted(m.items()) if k.startswith(("t_", "val")))
                log(work, f"step {step}/{total} epoch {trainer.current_epoch} {terms} lr={lr:.2e} "
                          f"steps_per_s={sps:.3f} eta_h={eta / 3600:.2f} load={os.getloadavg()[0]:.1f}")
            if (every and step % every == 0) or step >= total:
                self.save(trainer, step, snapshot=bool(snapshot_every and step % snapshot_every == 0))

        def save(self, trainer, step: int, snapshot: bool) -> None:
            ck = work / "checkpoints"
            ck.mkdir(parents=True, exist_ok=True)
            tmp = ck / f".last.{step}.ckpt.tmp"
            trainer.save_checkpoint(str(tmp))
            os.replace(tmp, ck / "last.ckpt")
            state = _state(work)
            state.update(step=step, epoch=int(trainer.current_epoch), checkpoint_time=time.time())
            state["train_wall_s"] = state.get("train_wall_s_before", 0.0) + (time.time() - t_start)
            atomic_json(work / "state.json", state)
            if snapshot:
                shutil.copyfile(ck / "last.ckpt", ck / f"step{step:06d}.ckpt")
            log(work, f"checkpoint: step {step}{' (snapshot)' if snapshot else ''}")

        def on_train_end(self, trainer, pl_module):
            if self.fh:
                self.fh.close()

    return Progress()


def _state(work: Path) -> dict[str, Any]:
    p = work / "state.json"
    return json.loads(p.read_text()) if p.exists() else {}


def train(work: Path, args: argparse.Namespace, size: dict[str, Any], train_knobs: dict[str, Any]) -> None:
    import lightning.pytorch as pl
    import nemo.collections.tts.models as tts
    import torch

    torch.set_num_threads(args.threads)
    try:
        from nemo.utils import logging as nemo_logging

        nemo_logging.setLevel("ERROR")
    except Exception:
        pass
    info = json.loads((work / "corpus" / "corpus.json").read_text())
    init = None
    if args.init_from:  # continue a base: its size and pitch normalisation, its weights below
        init = tts.FastPitchModel.restore_from(str(args.init_from), map_location="cpu").float()
    cfg = model_config(info, work, size, train_knobs,
                       {"pitch_mean": float(init.cfg.pitch_mean), "pitch_std": float(init.cfg.pitch_std)} if init else None)
    ck = work / "checkpoints" / "last.ckpt"
    resume = bool(args.resume and ck.exists())
    state = _state(work)
    if not resume:
        if ck.exists():
            raise SystemExit(f"{ck} exists: pass --resume to continue it, or use a fresh --work")
        state = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": git_commit(),
                 "size": size, "train": train_knobs, "max_steps": args.max_steps, "seed": args.seed,
                 "machine": machine(), "sessions": []}
        if init is not None:
            state["init_from"] = {"path": str(args.init_from), "sha256": _sha256(args.init_from)}
        (work / "loss_log.jsonl").unlink(missing_ok=True)
    else:
        # loss rows after the checkpoint are redone
        step0 = int(state.get("step", 0))
        p = work / "loss_log.jsonl"
        if p.exists():
            keep = [ln for ln in p.read_text().splitlines() if ln.strip() and _row_step(ln) <= step0]
            p.write_text("".join(x + "\n" for x in keep))
    state["train_wall_s_before"] = float(state.get("train_wall_s", 0.0))
    state["max_steps"] = args.max_steps
    state.setdefault("sessions", []).append({"start": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                             "from_step": int(state.get("step", 0)), "machine": machine(),
                                             "nice": os.nice(0)})
    atomic_json(work / "state.json", state)
    pl.seed_everything(args.seed + len(state["sessions"]) - 1, workers=True, verbose=False)
    cb = _callback(work, args.max_steps, args.checkpoint_every, args.snapshot_every, args.log_every, time.time())
    trainer = pl.Trainer(max_steps=args.max_steps, max_epochs=-1, accelerator="cpu", devices=1, precision="32-true",
                         gradient_clip_val=1.0, callbacks=[cb], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0, logger=False, default_root_dir=str(work))
    model = tts.FastPitchModel(cfg=cfg, trainer=trainer)
    if init is not None and not resume:  # strict: a base of another SIZE is refused here
        model.load_state_dict(init.state_dict(), strict=True)
        log(work, f"train: weights from {args.init_from} (pitch mean {cfg.pitch_mean:.1f} Hz std {cfg.pitch_std:.1f} kept)")
    del init
    n_par = sum(p.numel() for p in model.parameters())
    log(work, f"train: FastPitch {size} = {n_par / 1e6:.2f} M parameters; {info['n_train']} clips, batch "
              f"{train_knobs['batch_size']}; {'resuming from ' + str(ck) if resume else ('from ' + str(args.init_from)) if args.init_from else 'from scratch'}")
    trainer.fit(model, ckpt_path=str(ck) if resume else None)
    state = _state(work)
    state["finished"] = int(state.get("step", 0)) >= args.max_steps
    atomic_json(work / "state.json", state)
    log(work, f"train: stopped at step {trainer.global_step}; wall {state.get('train_wall_s', 0) / 3600:.2f} h")


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _row_step(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except ValueError:
        return 1 << 60


# ---------------------------------------------------------------------------------------- export / load
def load_checkpoint_model(ckpt: Path) -> Any:
    """A FastPitchModel (eval mode, CPU) from a Lightning checkpoint written by `train`."""
    import nemo.collections.tts.models as tts
    import torch
    from omegaconf import OmegaConf

    data = torch.load(str(ckpt), map_location="cpu", weights_only=False)
    cfg = OmegaConf.create(data["hyper_parameters"]["cfg"])
    # FastPitchModel wants train_ds in its config and reads the manifest: point both at the small val manifest
    cfg.train_ds.dataset.manifest_filepath = cfg.validation_ds.dataset.manifest_filepath
    model = tts.FastPitchModel(cfg=cfg)
    model.load_state_dict(data["state_dict"], strict=True)
    return model.eval()


def export(work: Path, ckpt: Path, out: Path, fp16: bool) -> dict[str, Any]:
    import hashlib

    import nemo.collections.tts.models as tts
    import torch
    from omegaconf import open_dict

    model = load_checkpoint_model(ckpt)
    data = torch.load(str(ckpt), map_location="cpu", weights_only=False)
    step = int(data.get("global_step", 0))
    with open_dict(model.cfg):
        model.cfg.bin_loss_warmup_epochs = EXPORT_BIN_LOSS_WARMUP_EPOCHS
        for part in ("train_ds", "validation_ds"):  # keep the structure, forget this machine's paths
            if part in model.cfg:
                model.cfg[part].dataset.manifest_filepath = "???"
                model.cfg[part].dataset.sup_data_path = "???"
    if fp16:
        model = model.half()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.nemo")
    model.save_to(str(tmp))
    # verify: restore into fp32 and compare a synthesized mel with the checkpoint's own (fp32) model
    ref = load_checkpoint_model(ckpt)
    back = tts.FastPitchModel.restore_from(str(tmp), map_location="cpu").eval()  # no .float(): must come back fp32
    assert all(p.dtype == torch.float32 for p in back.parameters())
    text = "she measured the narrow bridge before dawn, didn't she?"
    with torch.no_grad():
        mels = []
        for m in (ref, back):
            ids = torch.tensor([m.vocab.encode(text)])
            z = torch.zeros(ids.shape)
            spect, nf, *_ = m.forward_for_export(text=ids, pitch=z, pace=torch.ones(ids.shape))
            mels.append(spect[0, :, : int(nf[0])])
    if mels[0].shape != mels[1].shape:
        frames_note = f"frame count differs ({mels[0].shape[1]} vs {mels[1].shape[1]}: fp16 rounding of a duration)"
        diff = float("nan")
    else:
        frames_note = "same frame count"
        diff = float((mels[0] - mels[1]).abs().max())
    os.replace(tmp, out)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    state = _state(work)
    corpus = json.loads((work / "corpus" / "corpus.json").read_text())
    meta = {"path": str(out), "sha256": digest, "bytes": out.stat().st_size, "dtype": "float16" if fp16 else "float32",
            "step": step, "params": sum(p.numel() for p in back.parameters()), "size": state.get("size"),
            "train": state.get("train"), "train_wall_s": state.get("train_wall_s"), "started": state.get("started"),
            "commit": state.get("commit"), "machine": state.get("machine"), "sessions": state.get("sessions"),
            "corpus": {k: corpus[k] for k in ("n_kept", "n_train", "n_val", "hours", "seed", "pitch_stats",
                                              "n_voice_variant_combinations", "held_out_voices", "held_out_variants",
                                              "voices", "espeak_ng", "clips_per_voice")},
            "corpus_natural": {k: corpus.get(k) for k in ("natural_share", "natural_voices", "held_out_natural")},
            "init_from": state.get("init_from"),
            "export_check": {"max_abs_logmel_diff_vs_fp32_checkpoint": diff, "note": frames_note},
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "export_commit": git_commit()}
    atomic_json(out.with_suffix(".json"), meta)
    log(work, f"export: {out} ({meta['bytes'] / 1e6:.2f} MB, {meta['dtype']}, step {step}, sha256 {digest[:16]}, "
              f"max |log-mel diff| vs checkpoint {diff:.4g}, {frames_note})")
    return meta


MANIFEST_ID = "lane_base_fastpitch_espeak"


def update_manifest(manifest: Path, meta: dict[str, Any], out: Path) -> None:
    """Insert (or refresh) this base's entry, just before the first other base_spectrogram entry."""
    text = manifest.read_text(encoding="utf-8")
    data = json.loads(text)
    try:  # inside the lane package: a pkg:// path, found from any workspace and in the wheel
        rel = "pkg://lane/" + out.resolve().relative_to(ROOT / "lane").as_posix()
    except ValueError:
        rel = str(out)
    commit = meta.get("commit") or "unknown"
    entry = {
        "id": MANIFEST_ID,
        "role": "base_spectrogram",
        "path": rel,
        "sha256": meta["sha256"],
        "source": f"scripts/train_base.py at {commit} (voice-lane; trained on this project's own espeak-ng corpus, "
                  f"{meta['step']} steps; record: {out.with_suffix('.json').name} beside it)",
        "code_license": "Apache-2.0",
        "weights_license": "Apache-2.0",
        "notes": "voice-lane's own small FastPitch (learn_alignment, EnglishCharsTokenizer as configs/nemo/fastpitch.yaml, "
                 f"{meta['params'] / 1e6:.2f} M parameters, {meta['dtype']}), trained on CPU on espeak-ng speech of 7 English "
                 "voices x 84 variants with en-us and every +f3 variant held out (the demo's and the tests' target "
                 "speakers). A base for espeak-like voices in the demo and the tests, not for human voices: production "
                 "fine-tunes tts_en_fastpitch. The demo profile names this entry (train.fastpitch.base), production names NGC's. "
                 "Model card: lane/assets/base_fastpitch/MODEL_CARD.md. Weights licence: the project's own (the corpus is espeak-ng "
                 "output; the GPL of espeak-ng does not cover the speech it produces).",
    }
    entries = [e for e in data["entries"] if e.get("id") != MANIFEST_ID]
    at = next((k for k, e in enumerate(entries) if e.get("role") == "base_spectrogram"), len(entries))
    entries.insert(at, entry)
    data["entries"] = entries
    tmp = manifest.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, manifest)
    print(f"{manifest}: entry {MANIFEST_ID} -> {rel} sha256 {meta['sha256']}", flush=True)


# ---------------------------------------------------------------------------------------- eval
EVAL_TEXTS = [  # held-out texts for the quick check (never in the corpus: forbidden_texts covers them)
    "A cold wind blew across the harbour as the boats came in.",
    "The museum opened a new room full of maps and old compasses.",
    "They found a quiet table in the corner of the crowded cafe.",
    "The pilot announced that we would land twenty minutes early.",
    "Where are you going tonight?",
    "Although the weather was cold and the wind was strong, the children played outside in the park until "
    "the sun went down behind the hills.",
]


def evaluate(work: Path, source: Path, n_iter: int | None = None, power: float | None = None) -> dict[str, Any]:
    import tempfile

    import numpy as np
    import torch

    from lane import metrics as ev
    from lane.core.griffin_lim import DEFAULTS, griffin_lim
    from lane.data.espeak import speak

    n_iter = DEFAULTS.n_iter if n_iter is None else n_iter
    power = DEFAULTS.power if power is None else power
    torch.set_num_threads(2)
    if source.suffix == ".nemo":
        import nemo.collections.tts.models as tts

        model = tts.FastPitchModel.restore_from(str(source), map_location="cpu").float().eval()
    else:
        model = load_checkpoint_model(source)
    pre = model.cfg.preprocessor
    audio = {"sample_rate": int(model.cfg.sample_rate), "n_mels": int(model.cfg.n_mel_channels), "n_fft": int(pre.n_fft),
             "win_length": int(pre.n_window_size), "hop_length": int(pre.n_window_stride),
             "lowfreq": float(pre.lowfreq or 0), "highfreq": float(pre.highfreq), "log_zero_guard_value": 1e-5,
             "mag_power": 1.0}
    from lane.data.text import normalize_text

    asr = ev.Asr()
    rows = []
    out_dir = work / "eval" / source.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for k, raw in enumerate(EVAL_TEXTS):
            text = normalize_text(raw)
            ids = torch.tensor([model.vocab.encode(text)])
            z = torch.zeros(ids.shape)
            spect, nf, *_ = model.forward_for_export(text=ids, pitch=z, pace=torch.ones(ids.shape))
            y = griffin_lim(spect[0, :, : int(nf[0])].numpy(), audio, n_iter=n_iter, power=power)
            sf.write(str(out_dir / f"t{k}.wav"), y, audio["sample_rate"])
            ref_p = speak(raw, Path(tmp) / f"r{k}.wav", voice="en-us", rate_wpm=165, sample_rate=16000)
            ref, rsr = ev.load_audio(ref_p)
            s = asr.score(y, audio["sample_rate"], text, "jsgf")
            r = asr.score(ref, rsr, text, "jsgf")
            rows.append({"text": text, "cer": s["cer"], "hyp": s["hyp"], "cer_ref": r["cer"],
                         "dur_s": round(len(y) / audio["sample_rate"], 2), "dur_ref_s": round(len(ref) / rsr, 2)})
    res = {"source": str(source), "cer": float(np.mean([r["cer"] for r in rows])),
           "cer_ref": float(np.mean([r["cer_ref"] for r in rows])), "rows": rows, "time": time.time()}
    with open(work / "eval.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(res) + "\n")
    log(work, f"eval {source.name}: GL CER {res['cer']:.3f} (en-us recordings {res['cer_ref']:.3f}) on "
              f"{len(rows)} held-out texts; wavs in {out_dir}")
    return res


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["corpus", "train", "export", "eval", "all"])
    ap.add_argument("--work", type=Path, default=Path("/work/base-train/run"),
                    help="work folder: corpus, checkpoints, logs (outside the repo)")
    ap.add_argument("--n-clips", type=int, default=12000, help="corpus sentences/clips")
    ap.add_argument("--n-val", type=int, default=64, help="corpus clips held out for validation loss")
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--jobs", type=int, default=2, help="corpus processes")
    ap.add_argument("--max-steps", type=int, default=30000)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument("--snapshot-every", type=int, default=2500, help="keep checkpoints/stepNNNNNN.ckpt")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--resume", action="store_true", help="continue from work/checkpoints/last.ckpt")
    ap.add_argument("--ckpt", type=Path, default=None, help="export/eval: checkpoint (default work/checkpoints/last.ckpt)")
    ap.add_argument("--out", type=Path, default=None,
                    help="export: the .nemo (default lane/assets/base_fastpitch/lane-base-fastpitch.nemo; with --tiny WORK/tiny-base.nemo)")
    ap.add_argument("--fp32", action="store_true", help="export fp32 weights (default fp16)")
    ap.add_argument("--manifest", type=Path, default=None,
                    help="export: add or update the base_spectrogram entry MANIFEST_ID in this weights manifest "
                    "(e.g. configs/voice/weights-manifest.example.json), ahead of the other base_spectrogram "
                    "entries so the lane picks it first")
    ap.add_argument("--natural-share", type=float, default=0.0,
                    help="corpus: share of clips spoken by the natural voices NATURAL_VOICES (flite, Festival diphone)")
    ap.add_argument("--init-from", type=Path, default=None,
                    help="train: start from this base .nemo (its size and pitch normalisation) instead of random weights")
    ap.add_argument("--tiny", action="store_true", help=f"smoke-test setting: {TINY}")
    args = ap.parse_args(argv)

    size, train_knobs = dict(SIZE), dict(TRAIN)
    if args.tiny:
        args.n_clips, args.max_steps, args.n_val = TINY["n_clips"], TINY["max_steps"], TINY["n_val"]
        size.update(TINY["size"])
        train_knobs.update(batch_size=TINY["batch_size"], warmup_steps=5)
        args.checkpoint_every, args.log_every, args.snapshot_every = 10, 5, 0
    if args.batch_size:
        train_knobs["batch_size"] = args.batch_size
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    if args.out is None:  # a smoke test never overwrites the shipped weights
        args.out = work / "tiny-base.nemo" if args.tiny else ROOT / "lane" / "assets" / "base_fastpitch" / "lane-base-fastpitch.nemo"
    if args.stage in ("corpus", "all"):
        make_corpus(work, args.n_clips, args.seed, args.jobs, args.n_val, args.natural_share)
    if args.stage in ("train", "all"):
        train(work, args, size, train_knobs)
    ckpt = args.ckpt or work / "checkpoints" / "last.ckpt"
    if args.stage in ("export", "all"):
        meta = export(work, ckpt, args.out, fp16=not args.fp32)
        if args.manifest:
            update_manifest(args.manifest, meta, args.out)
    if args.stage == "eval":
        evaluate(work, ckpt)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
