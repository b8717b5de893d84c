"""prepare_dataset: recordings in, a checked NeMo TTS dataset out (manifests, clips, pitch cache).

Steps: detect the input format -> decode (mono, lane rate) -> loudness gain -> for long recordings:
VAD + segmentation + ASR (+ transcript alignment) -> per-clip checks -> duplicates and speaking-rate
outliers -> dataset gates -> seeded train/validation split -> NeMo manifests -> pitch cache + stats ->
`artifacts/dataset_manifest.<lane>.json` (every clip, kept or not).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.fsutil import atomic_write_json, atomic_write_text, rel
from ..core.inputs import AudioInput
from ..core.paths import resolve_input
from ..core.reasons import LaneError
from ..core.stage import StageRun
from . import audio as au
from . import checks as ck
from . import pitch as pt
from .inputs import (
    FORMATS,
    ListedClip,
    detect_format,
    longform_files,
    read_ljspeech,
    read_nemo_manifest,
)
from .text import normalize_text

DATASET_MANIFEST_SCHEMA = "lane.dataset_manifest/1"


@dataclass
class DatasetResult:
    manifest_path: Path
    train_manifest: Path
    val_manifest: Path
    sup_data_dir: Path
    pitch_stats: dict[str, float]
    pitch_settings: dict[str, float | int]
    sample_rate: int
    n_kept: int
    n_rejected: int
    kept_s: float
    rejected_by_reason: dict[str, int]
    asr_engine: str | None
    input_format: str = ""
    rejected_s_by_reason: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def clips(self) -> list[dict[str, Any]]:
        """Every clip record of the dataset manifest (kept and rejected)."""
        return list(json.loads(self.manifest_path.read_text(encoding="utf-8"))["clips"])


@dataclass
class _Clip:
    source: str
    offset_s: float
    raw: np.ndarray | None  # decoded audio before gain (None when it could not be read)
    gain: float
    text: str = ""
    normalized_text: str = ""
    asr_text: str | None = None
    text_source: str = "given"  # given (metadata/manifest) | aligned (transcript aligned to the audio) | asr
    alignment_confidence: float | None = None
    reason: str | None = None
    detail: str = ""
    values: dict[str, float] = field(default_factory=dict)
    sha256: str = ""
    path: Path | None = None


def _data_cfg(profile: dict[str, Any]) -> dict[str, Any]:
    return dict(profile.get("data", profile) or {})


class _Timer:
    def __init__(self) -> None:
        self.t: dict[str, float] = {}

    def add(self, key: str, dt: float) -> None:
        self.t[key] = self.t.get(key, 0.0) + dt


def _read_clips(st: StageRun, cfg: dict[str, Any], lim: ck.Limits, fmt: str, audio: str, transcript: str | None,
                root: Path, weights_manifest: str | None, sr: int, timer: _Timer) -> tuple[list[_Clip], str | None]:
    """Every clip of the input (decoded, not yet checked) and the transcription engine used, if any."""
    if fmt in ("longform", "longform_transcript"):
        return _longform_clips(st, cfg, lim, audio, transcript if fmt == "longform_transcript" else None,
                               root, weights_manifest, sr, timer)
    if fmt == "ljspeech":
        return _listed_clips(read_ljspeech(AudioInput.parse(audio, root).first), cfg, sr, timer), None
    if fmt == "nemo_manifest":
        return _listed_clips(read_nemo_manifest(AudioInput.parse(audio, root).first), cfg, sr, timer), None
    raise LaneError("input_format_unknown", f"{fmt} not in {FORMATS}")  # pragma: no cover - detect_format


def _summary(clips: list[_Clip], kept: list[_Clip], fmt: str, engine: str | None, sr: int,
             min_total: float) -> dict[str, Any]:
    rejected = [c for c in clips if c.reason is not None]
    by_reason = dict(sorted(Counter(c.reason for c in rejected if c.reason).items()))
    rej_s: dict[str, float] = {}
    for c in rejected:
        if c.reason:
            rej_s[c.reason] = round(rej_s.get(c.reason, 0.0) + c.values.get("duration_s", 0.0), 3)
    kept_s = float(sum(c.values["duration_s"] for c in kept))
    sources = dict(sorted(Counter(c.text_source for c in kept).items()))
    return {"input_format": fmt, "asr_engine": engine, "sample_rate": sr, "n_clips": len(clips),
            "kept_text_sources": sources,
            "n_kept": len(kept), "n_rejected": len(rejected), "kept_s": round(kept_s, 3),
            "rejected_by_reason": by_reason, "rejected_s_by_reason": rej_s, "min_total_s": min_total}


def _dataset_gates(st: StageRun, summary: dict[str, Any]) -> None:
    """dataset_not_empty and dataset_min_duration: a run never trains on nothing."""
    n_clips, n_kept, kept_s = summary["n_clips"], summary["n_kept"], summary["kept_s"]
    by_reason, min_total = summary["rejected_by_reason"], summary["min_total_s"]
    if not st.check("dataset_not_empty", n_kept > 0, f"{n_kept} of {n_clips} clips kept"
                    + (f"; rejected: {by_reason}" if by_reason else ""), value=n_kept, threshold=1):
        raise LaneError("dataset_empty", f"all {n_clips} clips rejected ({_fmt_reasons(by_reason)})")
    if not st.check("dataset_min_duration", kept_s >= min_total, f"{kept_s:.1f} s kept, minimum {min_total:.0f} s",
                    value=round(kept_s, 2), threshold=min_total):
        raise LaneError("dataset_too_small", f"{kept_s:.1f} s of clean speech kept, the profile needs {min_total:.0f} s "
                        f"(rejected: {_fmt_reasons(by_reason)})")


def _write_nemo_manifests(st: StageRun, kept: list[_Clip], val_idx: set[int], out_dir: Path) -> tuple[Path, Path]:
    train = [c for i, c in enumerate(kept) if i not in val_idx] or kept
    val = [c for i, c in enumerate(kept) if i in val_idx] or kept[:1]
    train_path = out_dir / "train_manifest.json"
    val_path = out_dir / "val_manifest.json"
    atomic_write_text(train_path, "".join(_nemo_line(c) for c in train))
    atomic_write_text(val_path, "".join(_nemo_line(c) for c in val))
    st.artifact("train_manifest", train_path)
    st.artifact("val_manifest", val_path)
    return train_path, val_path


def _pitch_cache(st: StageRun, kept: list[_Clip], settings: pt.PitchSettings, sup_dir: Path, out_dir: Path,
                 root: Path, timer: _Timer) -> dict[str, float]:
    """pyworld pitch of every kept clip into TTSDataset's cache layout (octave errors fixed), and stats."""
    t0 = time.perf_counter()
    tracks: list[np.ndarray] = []
    fresh: list[bool] = []
    for c in kept:
        assert c.path is not None
        f0 = pt.read_cache(sup_dir, c.path)
        fresh.append(f0 is None)
        if f0 is None:
            f0 = pt.estimate(c.raw * c.gain if c.raw is not None else np.zeros(0), settings)
        tracks.append(f0)
        c.raw = None  # release the samples: the clip is on disk now
    tracks, n_fixed = pt.remove_octave_errors(tracks)
    for c, f0, new in zip(kept, tracks, fresh, strict=True):
        if new:
            assert c.path is not None
            pt.write_cache(sup_dir, c.path, f0)
    timer.add("pitch_s", time.perf_counter() - t0)
    st.stats(pitch_cached=sum(not f for f in fresh), pitch_computed=sum(fresh), pitch_octave_fixed=n_fixed)
    pstats = pt.stats(tracks)
    stats_path = out_dir / "pitch_stats.json"
    atomic_write_json(stats_path, {"default": {"pitch_mean": pstats["pitch_mean"], "pitch_std": pstats["pitch_std"]},
                                   **pstats, "settings": settings.as_dict(), "estimator": pt.ESTIMATOR,
                                   "sup_data_dir": rel(sup_dir, root)})
    st.artifact("pitch_stats", stats_path)
    st.stats(pitch_mean=round(pstats["pitch_mean"], 2), pitch_std=round(pstats["pitch_std"], 2),
             pitch_min=round(pstats["pitch_min"], 2), pitch_max=round(pstats["pitch_max"], 2))
    return pstats


def _paired(audio: str, transcript: str | None, input_format: str, root: Path) -> str | None:
    """The transcript to use: the given one, else X.txt beside a recording X.* (auto format only)."""
    if transcript or input_format != "auto" or not audio:
        return transcript
    paired = AudioInput.parse(audio, root).paired_transcript()
    if paired is None:
        return None
    print(f"using the transcript next to the recording: {rel(paired, root)}", flush=True)
    return str(paired)


def prepare_dataset(st: StageRun, profile: dict[str, Any], *, audio: str, transcript: str | None = None,
                    input_format: str = "auto", out_dir: Path, weights_manifest: str | None = None,
                    lane: str) -> DatasetResult:
    """Build the dataset for `lane` from `audio` into `out_dir` (runs/<id>/train/data/). See module doc."""
    root = Path(st.root)
    out_dir = Path(out_dir)
    cfg = _data_cfg(profile)
    sr = int(cfg.get("sample_rate", 22050))
    lim = ck.Limits.from_profile(cfg)
    timer = _Timer()
    transcript = _paired(audio, transcript, input_format, root)
    fmt = detect_format(audio, transcript, root, input_format)
    st.stats(input_format=fmt)
    st.progress(1, 6, f"reading {fmt} input")
    clips, engine_name = _read_clips(st, cfg, lim, fmt, audio, transcript, root, weights_manifest, sr, timer)

    st.progress(3, 6, f"checking {len(clips)} clips")
    t0 = time.perf_counter()
    _check_clips(clips, lim, sr)
    timer.add("checks_s", time.perf_counter() - t0)
    kept = [c for c in clips if c.reason is None]
    for c in kept:
        assert c.raw is not None
        c.path, c.sha256 = au.write_clip(c.raw * c.gain, sr, out_dir / "wavs")
    summary = _summary(clips, kept, fmt, engine_name, sr, float(cfg.get("min_total_s", 600)))
    # split before the gates so the manifest written on failure is complete too
    val_idx = _split(kept, float(cfg.get("validation_fraction", 0.1)), int(cfg.get("seed", 1234)))
    manifest_path = root / "artifacts" / f"dataset_manifest.{lane}.json"
    _write_dataset_manifest(manifest_path, root, lane, audio, transcript, summary, clips, val_idx, cfg)
    st.artifact("dataset_manifest", manifest_path)
    st.stats(n_clips=len(clips), n_kept=len(kept), n_rejected=summary["n_rejected"], kept_s=round(summary["kept_s"], 2),
             kept_min=round(summary["kept_s"] / 60, 2), asr_engine=engine_name or "none",
             **{f"text_source_{k}": v for k, v in summary["kept_text_sources"].items()},
             **{f"rejected_{k}": v for k, v in summary["rejected_by_reason"].items()},
             **{f"rejected_s_{k}": v for k, v in summary["rejected_s_by_reason"].items()})
    _dataset_gates(st, summary)

    st.progress(4, 6, "writing NeMo manifests")
    train_path, val_path = _write_nemo_manifests(st, kept, val_idx, out_dir)
    st.progress(5, 6, f"pitch for {len(kept)} clips (pyworld dio+stonemask)")
    settings = pt.PitchSettings.from_profile(cfg, sr)
    sup_dir = pt.cache_dir(out_dir, settings)
    pstats = _pitch_cache(st, kept, settings, sup_dir, out_dir, root, timer)
    st.progress(6, 6, "dataset ready")
    return DatasetResult(manifest_path=manifest_path, train_manifest=train_path, val_manifest=val_path,
                         sup_data_dir=sup_dir, pitch_stats=pstats, pitch_settings=settings.as_dict(), sample_rate=sr,
                         n_kept=len(kept), n_rejected=summary["n_rejected"], kept_s=float(summary["kept_s"]),
                         rejected_by_reason=summary["rejected_by_reason"], asr_engine=engine_name, input_format=fmt,
                         rejected_s_by_reason=summary["rejected_s_by_reason"],
                         timings={k: round(v, 3) for k, v in timer.t.items()})


def _fmt_reasons(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in by_reason.items()) or "none"


# ------------------------------------------------------------------------------ long recordings
def _read_transcript(transcript: str | None, root: Path) -> str | None:
    if not transcript:
        return None
    tp = resolve_input(transcript, root)
    try:
        text = tp.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LaneError("metadata_invalid", f"transcript {tp} does not exist") from None
    except UnicodeDecodeError:
        raise LaneError("metadata_invalid", f"transcript {tp.name} is not UTF-8") from None
    if not text.strip():
        raise LaneError("metadata_invalid", f"transcript {tp.name} is empty")
    return text


Segmented = tuple[Path, np.ndarray, float, list[Any]]  # file, audio at the lane rate, loudness gain, segments


def _segment_files(st: StageRun, cfg: dict[str, Any], lim: ck.Limits, files: list[Path], root: Path,
                   weights_manifest: str | None, sr: int, timer: _Timer) -> tuple[list[Segmented], list[_Clip]]:
    """Decode each recording, normalise loudness, find speech with the VAD and cut it into segments.
    Returns the segmented files and the clips rejected whole (undecodable, no speech)."""
    from . import segment as sg

    vad = sg.SileroVad(sg.vad_from_manifest(weights_manifest, root))
    target_lufs = float(cfg.get("target_lufs", -23.0))
    out: list[Segmented] = []
    rejected: list[_Clip] = []
    failures: list[str] = []
    for i, f in enumerate(files, 1):
        st.progress(1, 6, f"decoding {f.name} ({i}/{len(files)})")
        try:
            dec = au.decode(f, sr)
        except LaneError as err:
            failures.append(err.detail)
            rejected.append(_Clip(rel(f, root), 0.0, None, 1.0, reason="audio_decode_failed", detail=err.detail))
            continue
        for key in ("decode_s", "resample_s"):
            timer.add(key, dec.timings[key])
        timer.add("audio_s", dec.duration)
        t0 = time.perf_counter()
        gain = au.loudness_gain(dec.audio, sr, target_lufs)
        timer.add("loudness_s", time.perf_counter() - t0)
        t0 = time.perf_counter()
        probs = vad.probabilities(sg.to_16k(dec.audio, sr))
        regions = sg.speech_regions(probs, threshold=float(cfg.get("vad_threshold", 0.5)),
                                    min_pause_s=float(cfg.get("min_pause_s", 0.25)))
        segs = sg.segment(dec.audio, sr, regions, min_clip_s=lim.min_clip_s, max_clip_s=lim.max_clip_s,
                          pad_s=float(cfg.get("pad_s", 0.1)))
        timer.add("vad_s", time.perf_counter() - t0)
        st.stats(**{"source_s": round(dec.duration, 2), "source_rate": dec.source_rate, "source_channels": dec.channels})
        if segs:
            out.append((f, dec.audio, gain, segs))
            continue
        level = float(np.percentile(ck.frame_db(dec.audio, sr), 95))
        rejected.append(_Clip(rel(f, root), 0.0, None, gain, reason="silent" if level < lim.silent_dbfs else "low_snr",
                              detail=f"the VAD found no speech in the whole recording (loudest frames {level:.1f} dBFS)",
                              values={"duration_s": round(dec.duration, 3), "rms_dbfs": round(level, 2)}))
    if len(failures) == len(files):
        raise LaneError("missing_audio_path", "no decodable audio: " + "; ".join(failures[:3]))
    return out, rejected


def _transcribe(st: StageRun, engine: Any, segmented: list[Segmented], lim: ck.Limits, sr: int, root: Path,
                with_transcript: bool, timer: _Timer) -> tuple[list[_Clip], list[list[str]]]:
    """One clip per segment with the engine's words. Without a transcript, a clip the audio checks
    reject anyway is not transcribed (with one, every segment's words are needed as alignment anchors)."""
    n_segs = sum(len(s[3]) for s in segmented)
    hyps: list[list[str]] = []
    clips: list[_Clip] = []
    t0 = time.perf_counter()
    for f, y, gain, segs in segmented:
        for s in segs:
            a, b = int(s.start * sr), int(s.end * sr)
            c = _Clip(rel(f, root), round(s.start, 3), y[a:b], gain)
            assert c.raw is not None
            if not with_transcript and ck.first_failure(ck.measure(c.raw, c.raw * gain, sr, ""), "", lim)[0] \
                    in ck.AUDIO_REASONS:
                c.asr_text = ""
                hyps.append([])
            else:
                res = engine.transcribe(c.raw * gain, sr)
                c.asr_text = res.text
                hyps.append(res.words)
            clips.append(c)
            if len(clips) % 20 == 0 or len(clips) == n_segs:
                st.progress(2, 6, f"transcribed {len(clips)}/{n_segs} segments ({engine.name})")
    timer.add("asr_s", time.perf_counter() - t0)
    return clips, hyps


def _texts_from(clips: list[_Clip], hyps: list[list[str]], transcript_text: str | None, lim: ck.Limits) -> None:
    """Each clip's text: the transcript's words aligned to it (rejected below the confidence), or its ASR text."""
    from .align import align_transcript

    if transcript_text is None or not clips:
        for c in clips:
            c.text, c.text_source = c.asr_text or "", "asr"
        return
    min_conf = lim.min_alignment_confidence
    for c, al in zip(clips, align_transcript(transcript_text, hyps), strict=True):
        c.text, c.text_source = al.text, "aligned"
        c.alignment_confidence = round(al.confidence, 3)
        if al.confidence < min_conf:
            c.reason = "alignment_low_confidence"
            c.detail = f"confidence {al.confidence:.2f} < {min_conf} ({al.n_match} of {max(al.n_hyp, al.n_ref)} words)"


def _longform_clips(st: StageRun, cfg: dict[str, Any], lim: ck.Limits, audio: str, transcript: str | None,
                    root: Path, weights_manifest: str | None, sr: int, timer: _Timer) -> tuple[list[_Clip], str | None]:
    from .asr import get_engine

    transcript_text = _read_transcript(transcript, root)
    segmented, clips = _segment_files(st, cfg, lim, longform_files(audio, root), root, weights_manifest, sr, timer)
    if not any(s[3] for s in segmented):
        return clips, None
    engine = get_engine(str(cfg.get("asr_engine", "auto")), weights_manifest=weights_manifest, root=root,
                        transcript_text=transcript_text)
    seg_clips, hyps = _transcribe(st, engine, segmented, lim, sr, root, transcript_text is not None, timer)
    _texts_from(seg_clips, hyps, transcript_text, lim)
    return clips + seg_clips, engine.name


# ------------------------------------------------------------------------------ listed clips
def _listed_clips(listed: list[ListedClip], cfg: dict[str, Any], sr: int, timer: _Timer) -> list[_Clip]:
    target_lufs = float(cfg.get("target_lufs", -23.0))
    out: list[_Clip] = []
    cache: dict[Path, np.ndarray] = {}
    for item in listed:
        c = _Clip(str(item.path), item.offset, None, 1.0, text=item.text)
        if item.normalized_text:
            c.normalized_text = item.normalized_text
        if not item.path.is_file():
            c.reason, c.detail = "missing_file", f"{item.path.name} does not exist"
            out.append(c)
            continue
        try:
            if item.path not in cache:
                dec = au.decode(item.path, sr)
                timer.add("decode_s", dec.timings["decode_s"])
                timer.add("resample_s", dec.timings["resample_s"])
                timer.add("audio_s", dec.duration)
                cache = {item.path: dec.audio}  # keep only the latest file (manifests slicing one file)
            y = cache[item.path]
        except LaneError as err:
            c.reason, c.detail = "audio_decode_failed", err.detail
            out.append(c)
            continue
        a = int(item.offset * sr)
        b = len(y) if item.duration is None else a + int(item.duration * sr)
        c.raw = y[a:b]
        t0 = time.perf_counter()
        c.gain = au.loudness_gain(c.raw, sr, target_lufs)
        timer.add("loudness_s", time.perf_counter() - t0)
        out.append(c)
    return out


# ------------------------------------------------------------------------------ checks
def _check_clips(clips: list[_Clip], lim: ck.Limits, sr: int) -> None:
    seen: dict[str, int] = {}
    for i, c in enumerate(clips):
        if c.raw is None:
            continue
        if not c.normalized_text:
            c.normalized_text = normalize_text(c.text)
        else:
            c.normalized_text = normalize_text(c.normalized_text)
        c.values = ck.measure(c.raw, c.raw * c.gain, sr, c.normalized_text)
        c.sha256 = au.samples_sha256(c.raw * c.gain)
        if c.reason is None:
            c.reason, c.detail = ck.first_failure(c.values, c.normalized_text, lim)
        if c.reason is None:
            if c.sha256 in seen:
                c.reason, c.detail = "duplicate_audio", f"same samples as clip {seen[c.sha256]}"
            else:
                seen[c.sha256] = i
    kept = [c for c in clips if c.reason is None]
    flags = ck.rate_outliers([c.values["chars_per_s"] for c in kept], lim.cps_mad_k)
    for c, bad in zip(kept, flags, strict=True):
        if bad:
            c.reason, c.detail = "speaking_rate_outlier", f"{c.values['chars_per_s']:.1f} chars/s far from the median"


def _split(kept: list[_Clip], fraction: float, seed: int) -> set[int]:
    """Deterministic seeded validation split: depends only on the clips' content hashes and the seed."""
    n = len(kept)
    if n < 2:
        return set()
    n_val = min(max(1, round(fraction * n)), n - 1)
    order = sorted(range(n), key=lambda i: kept[i].sha256)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    return {order[int(j)] for j in perm[:n_val]}


def _nemo_line(c: _Clip) -> str:
    assert c.path is not None
    return json.dumps({"audio_filepath": str(c.path.resolve()), "text": c.text,
                       "normalized_text": c.normalized_text, "duration": c.values["duration_s"]},
                      ensure_ascii=False) + "\n"


def _write_dataset_manifest(path: Path, root: Path, lane: str, audio: str, transcript: str | None,
                            summary: dict[str, Any], clips: list[_Clip], val_idx: set[int], cfg: dict[str, Any]) -> None:
    kept_i = 0
    rows = []
    for c in clips:
        split = None
        if c.reason is None:
            split = "val" if kept_i in val_idx else "train"
            kept_i += 1
        rows.append({
            "source": c.source, "offset_s": c.offset_s, "duration_s": c.values.get("duration_s"),
            "path": rel(c.path, root) if c.path else None, "sha256": c.sha256 or None,
            "text": c.text, "text_source": c.text_source, "normalized_text": c.normalized_text, "asr_text": c.asr_text,
            "alignment_confidence": c.alignment_confidence, "checks": c.values,
            "kept": c.reason is None, "reason": c.reason, "detail": c.detail, "split": split,
        })
    atomic_write_json(path, {"schema": DATASET_MANIFEST_SCHEMA, "lane": lane, "audio": audio, "transcript": transcript,
                             "config": {k: v for k, v in cfg.items()}, **summary, "clips": rows})
