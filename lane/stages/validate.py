"""The validate stage: measure the bundle that will ship against the speaker's held-out recordings,
turn every metric into a gated check, and leave the evidence for the report.

    summary = run(st, p)      # notebooks/validate.ipynb; st.finish() then writes the result

Order of work:

1. the bundle check (`lane.bundle.validate_voice_bundle`) of this run's candidate
   (bundles/<id>/candidates/<run_id>/, never the live voice): a bad bundle stops the stage (bundle_invalid);
2. synthesis with onnxruntime (`lane.bundle.voice.OnnxVoice`, no NeMo) of the held-out texts
   (runs/<id>/train/data/val_manifest.json) and of configs/eval/sentences.txt; a few texts also through
   NeMo (`lane.nemo.synth.nemo_synthesize`) to check both paths agree;
3. metrics (`lane.metrics`) for the synthesis and, where it makes sense, for the reference
   recordings, so ratios cancel the evaluators' own weakness. Intelligibility is scored by an ASR that
   decodes freely (it is not told the sentence); pocketsphinx's grammar-constrained score (a grammar of
   the expected words) is recorded beside it as `*_jsgf`, advisory, never gated. The evaluators are the
   profile's `eval.evaluators` (weights-manifest ids) or the defaults, and every metric names its
   evaluator (`metric_evaluators`, `evaluators`: manifest id, class, sha256);
4. one check per metric from the profile's `eval.thresholds` (their order is the check order, so the
   first failing one is `first_fail`); a missing or licence-blocked evaluator leaves its checks
   "not evaluated" (blocking unless the threshold says `optional: true`; when the only gaps are
   licence-blocked evaluators the stage's reason is `evaluator_license_blocked`);
5. the results into the bundle (`lane.bundle.write_validation`), the stage stats (flat keys, which
   the runner copies into train_status, the ledger and the report), and report media (metrics table,
   mel spectrograms and pitch contours of synthesis vs reference, audio of three pairs).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import metrics as ev
from ..core.fsutil import atomic_write_text, rel
from ..core.media import MediaItem, media_dir, save_wav, write_index
from ..core.reasons import LaneError
from ..core.stage import StageRun, now_iso
from .params import StageParams

VALIDATION_SCHEMA = "lane.validation/1"

DEFAULTS: dict[str, Any] = {
    "evaluators": {},              # {asr, speaker, mos}: a weights-manifest entry id each (none: pocketsphinx, GE2E, DNSMOS)
    "asr_grammar_advisory": True,  # also score pocketsphinx with a grammar of the expected words: advisory rows only
    "max_heldout": 20,             # held-out clips evaluated (first N of the val manifest)
    "nemo_agree_n": 2,             # texts also synthesized through NeMo to compare with ONNX
    "sentences": "configs/eval/sentences.txt",
    "impostor": "data/eval/impostor.flac",
    "rtf_texts": 4,                # sentences timed for the real-time factor
    "threads": 0,                  # onnxruntime intra-op threads (0: its default)
    "media_pairs": 3,              # synthesized/reference pairs shown and played in the report
    "sanity": {},                  # keyword overrides for lane.metrics.sanity
    "thresholds": {},
}


def eval_config(profile: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(DEFAULTS)
    cfg.update(profile.get("eval") or {})
    return cfg


@dataclass
class Pair:
    """One text with its synthesized audio and, for held-out texts, its reference recording."""

    text: str
    spoken: str  # normalised text fed to the voice
    synth: Any = None
    ref: Any = None
    ref_sr: int = 0
    ref_path: str = ""
    kind: str = "heldout"  # heldout | sentence
    metrics: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ inputs
def read_heldout(path: str | os.PathLike[str], limit: int) -> list[dict[str, Any]]:
    """Rows of a NeMo JSON-lines manifest (audio_filepath, text), the first `limit`; the data
    stage's parser (lane.data.inputs.read_nemo_manifest) reads it."""
    from ..data.inputs import read_nemo_manifest

    try:
        if not Path(path).read_text(encoding="utf-8").strip():
            return []  # an empty held-out split: the caller reports the checks as not evaluated
        clips = read_nemo_manifest(Path(path))
    except OSError as exc:
        raise LaneError("not_evaluated", f"held-out manifest {path} unreadable: {exc}") from None
    return [{"audio_filepath": str(c.path), "text": c.text} for c in clips[:limit]]


def read_sentences(path: str | os.PathLike[str]) -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LaneError("config_invalid", f"evaluation sentences {path}: {exc}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def _normalize(text: str) -> str:
    try:
        from ..data import normalize_text

        return str(normalize_text(text))
    except ImportError:
        return text


def _abs(root: Path, p: str | os.PathLike[str]) -> Path:
    q = Path(p)
    return q if q.is_absolute() else root / q


# ------------------------------------------------------------------------------------ synthesis
def _synthesize(voice: Any, pairs: list[Pair]) -> None:
    for p in pairs:
        try:
            p.synth = voice.synthesize(p.spoken)
        except LaneError:
            raise
        except Exception as exc:
            raise LaneError("synthesis_failed", f"ONNX synthesis of {p.text!r}: {type(exc).__name__}: {exc}") from exc


def _nemo_agreement(bundle_dir: Path, pairs: list[Pair], sr: int) -> tuple[float | None, str]:
    """Mean MCD (dB) between NeMo and ONNX synthesis of the same texts; None when NeMo cannot run."""
    if not pairs:
        return None, "no texts"
    try:
        from ..nemo.synth import nemo_synthesize  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        return None, f"nemo_runtime_unavailable: {exc}"
    from ..bundle.manifest import BundleManifest

    try:
        out = nemo_synthesize(BundleManifest.load(bundle_dir).nemo_source(), [p.spoken for p in pairs])
    except LaneError as err:
        return None, f"{err.code}: {err.detail}"
    if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], int):
        audios, nsr = out
    else:
        audios, nsr = out, sr
    vals = [ev.mcd_dtw(a, int(nsr), p.synth, sr) for a, p in zip(audios, pairs, strict=False)]
    m = ev.nanmean(vals)
    return m, f"NeMo vs ONNX on {len(vals)} texts: MCD {m:.3f} dB"


# ------------------------------------------------------------------------------------ metrics
def _f(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else round(v, 4)


class _Ticker:
    """PROGRESS lines while the metrics run."""

    def __init__(self, st: StageRun | None, total: int) -> None:
        self.st, self.total, self.step = st, total, 0

    def __call__(self, msg: str) -> None:
        self.step += 1
        if self.st is not None:
            self.st.progress(min(self.step, self.total), self.total, msg)


def _sanity_metrics(pairs: list[Pair], sr: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Sanity on every synthesized clip: NaN, silence, clipping, long pauses, length for the text."""
    problems: dict[str, int] = {}
    for p in pairs:
        s = ev.sanity(p.synth, sr, p.spoken, **(cfg.get("sanity") or {}))
        p.metrics["sanity"] = s.problems
        for prob in s.problems:
            problems[prob] = problems.get(prob, 0) + 1
    return {"sanity_failures": sum(1 for p in pairs if p.metrics["sanity"]),
            "sanity_problems": ",".join(f"{k}:{v}" for k, v in sorted(problems.items()))}


def _asr_metrics(asr: Any, pairs: list[Pair], held: list[Pair], sents: list[Pair], sr: int, tick: _Ticker,
                 mode: str = "lm", suffix: str = "") -> dict[str, Any]:
    """Intelligibility: CER/WER of the synthesis and of the real recordings of the same texts. `mode` lm
    is free decoding (the gated numbers); jsgf (suffix `_jsgf`) gives pocketsphinx a grammar of the
    expected words: advisory, it says more about "which sentence was it" than "can one understand it"."""
    for p in pairs:
        sc = asr.score(p.synth, sr, p.spoken, mode)
        p.metrics.update({f"cer{suffix}": sc["cer"], f"wer{suffix}": sc["wer"], f"hyp{suffix}": sc["hyp"]})
        tick(f"asr {p.kind}")
    for p in held:
        sc = asr.score(p.ref, p.ref_sr, p.spoken, mode)
        p.metrics.update({f"cer_ref{suffix}": sc["cer"], f"wer_ref{suffix}": sc["wer"], f"hyp_ref{suffix}": sc["hyp"]})
        tick("asr reference")
    m: dict[str, Any] = {k + suffix: ev.nanmean(p.metrics[src + suffix] for p in held) for k, src in
                         (("cer_synth", "cer"), ("cer_ref", "cer_ref"), ("wer_synth", "wer"), ("wer_ref", "wer_ref"))}
    m[f"cer_ratio{suffix}"] = ev.safe_ratio(m[f"cer_synth{suffix}"], m[f"cer_ref{suffix}"])
    if suffix:
        return m
    m["wer_ratio"] = ev.safe_ratio(m["wer_synth"], m["wer_ref"])
    m["cer_sentences"] = ev.nanmean(p.metrics["cer"] for p in sents)
    return m


def _speaker_metrics(enc: Any, pairs: list[Pair], held: list[Pair], sr: int,
                     impostor: tuple[Any, int] | None) -> dict[str, Any]:
    """Speaker similarity to the mean embedding of the held-out recordings, and the impostor's."""
    import numpy as np

    ref_embs = [enc.embed(p.ref, p.ref_sr) for p in held]
    speaker = np.mean(ref_embs, axis=0)
    for p in pairs:
        p.metrics["spk_sim"] = ev.cosine(enc.embed(p.synth, sr), speaker)
    m: dict[str, Any] = {"spk_sim": ev.nanmean(p.metrics["spk_sim"] for p in pairs)}
    if len(ref_embs) >= 2:  # leave-one-out: each reference against the others
        m["spk_sim_ref"] = ev.nanmean(ev.cosine(e, np.sum(ref_embs, axis=0) - e) for e in ref_embs)
    if impostor is not None:
        m["spk_sim_impostor"] = ev.cosine(enc.embed(*impostor), speaker)
        m["spk_margin"] = m["spk_sim"] - m["spk_sim_impostor"]
    return m


def _spectral_metrics(held: list[Pair], sr: int, tick: _Ticker) -> dict[str, Any]:
    """Spectral distance and prosody, synthesis against the recording of the same text."""
    for p in held:
        p.metrics["mcd_db"] = ev.mcd_dtw(p.synth, sr, p.ref, p.ref_sr)
        p.metrics.update(ev.prosody_metrics(p.synth, sr, p.ref, p.ref_sr))
        p.metrics["duration_ratio"] = ev.duration_ratio(p.synth, sr, p.ref, p.ref_sr)
        tick("spectral and prosody")
    if not held:
        return {}
    return {k: ev.nanmean(p.metrics[k] for p in held)
            for k in ("mcd_db", "f0_rmse_hz", "f0_corr", "vuv_error", "duration_ratio")}


def _mos_metrics(mos: Any, pairs: list[Pair], held: list[Pair], sr: int) -> dict[str, Any]:
    """Naturalness estimate (DNSMOS overall, or UTMOS), and its ratio to the recordings; the keys carry
    the estimator's prefix (dnsmos_*, utmos_*), so one scale is never read as the other."""
    k = mos.prefix
    for p in pairs:
        p.metrics[k] = mos.overall(p.synth, sr)
    for p in held:
        p.metrics[f"{k}_ref"] = mos.overall(p.ref, p.ref_sr)
    m: dict[str, Any] = {f"{k}_ovrl": ev.nanmean(p.metrics[k] for p in pairs)}
    if held:
        m[f"{k}_synth_heldout"] = ev.nanmean(p.metrics[k] for p in held)
        m[f"{k}_ref"] = ev.nanmean(p.metrics[f"{k}_ref"] for p in held)
        m[f"{k}_ratio"] = m[f"{k}_synth_heldout"] / m[f"{k}_ref"] if m[f"{k}_ref"] else None
    return m


def compute_metrics(pairs: list[Pair], sr: int, evaluators: ev.Evaluators, cfg: dict[str, Any],
                    impostor: tuple[Any, int] | None, st: StageRun | None = None) -> dict[str, Any]:
    """Every metric over the pairs. Keys are flat; values None where not computable."""
    held = [p for p in pairs if p.kind == "heldout" and p.ref is not None]
    sents = [p for p in pairs if p.kind == "sentence"]
    grammar = bool(cfg.get("asr_grammar_advisory", True)) and evaluators.asr is not None \
        and evaluators.asr.supports_grammar
    tick = _Ticker(st, (2 if grammar else 1) * (len(pairs) + len(held)) + len(held))
    m: dict[str, Any] = {"n_heldout": len(held), "n_sentences": len(sents)}
    m.update(_sanity_metrics(pairs, sr, cfg))
    m["asr_mode"] = "free decoding"  # the gated CER: the ASR is not told the sentence
    if evaluators.asr is not None:
        m.update(_asr_metrics(evaluators.asr, pairs, held, sents, sr, tick))
        if grammar:  # advisory: pocketsphinx given the expected words as a grammar
            m.update(_asr_metrics(evaluators.asr, pairs, held, sents, sr, tick, "jsgf", "_jsgf"))
    if evaluators.speaker is not None and held:
        m.update(_speaker_metrics(evaluators.speaker, pairs, held, sr, impostor))
    m.update(_spectral_metrics(held, sr, tick))
    if evaluators.mos is not None:
        m.update(_mos_metrics(evaluators.mos, pairs, held, sr))
    return {k: (_f(v) if not isinstance(v, str) and not isinstance(v, int) else v) for k, v in m.items()}


# ------------------------------------------------------------------------------------ checks
def record_checks(st: StageRun, thresholds: list[ev.Threshold], metrics: dict[str, Any],
                  evaluators: ev.Evaluators, why_missing: dict[str, str]) -> list[dict[str, Any]]:
    """One StageRun check per threshold, in order, with value and threshold. A check whose evaluator
    is missing or licence-blocked is not evaluated and carries that evaluator's reason code."""
    rows = []
    for th in thresholds:
        if th.min is None and th.max is None:
            continue  # recorded, not gated: advisory in the metrics table and the report, never a check
        value = metrics.get(th.metric)
        ok = th.judge(value)
        reason = None
        if ok is None:
            status = evaluators.status.get(th.evaluator) if th.evaluator else None
            if status is not None and not status.ok:
                detail = f"not evaluated: {status.state}: {status.detail}"
                # a licence block is a policy answer, not missing evidence: the stage says so
                reason = status.state if status.state == "evaluator_license_blocked" else None
            else:
                detail = f"not evaluated: {why_missing.get(th.metric, 'no value')}"
        else:
            detail = f"{th.metric}={value:g} (threshold {th.describe()})"
        st.check(th.metric, ok, detail, optional=th.optional, value=value, threshold=th.describe(), reason=reason)
        rows.append({"id": th.metric, "ok": ok, "value": value, "threshold": th.describe(),
                     "optional": th.optional, "detail": detail})
    return rows


# ------------------------------------------------------------------------------------ media
def metrics_table(rows: list[dict[str, Any]], metrics: dict[str, Any],
                  evaluators: dict[str, dict[str, Any]] | None = None) -> str:
    """A Markdown table of the gated metrics (pass / FAIL / not evaluated), then the metrics with a
    production floor that this profile does not gate (advisory, against that floor; the floors of the
    evaluators that ran), then the rest. Each row names the metric's evaluator."""
    from ..promotion import describe, floors_for

    floors = floors_for({r: e.get("class") for r, e in (evaluators or {}).items()})
    who = ev.metric_evaluators(list(metrics) + [r["id"] for r in rows], evaluators or {})
    lines = ["| check | value | threshold | result | evaluator |", "|---|---|---|---|---|"]
    for r in rows:
        mark = "pass" if r["ok"] else ("not evaluated" + (" (optional)" if r["optional"] else "") if r["ok"] is None else "FAIL")
        val = "-" if r["value"] is None else f"{r['value']:.4g}"
        lines.append(f"| {r['id']} | {val} | {r['threshold']} | {mark} | {ev.evaluator_label(who.get(r['id']))} |")
    gated = {r["id"] for r in rows}
    for m, bound in floors.items():
        if m not in gated:
            v = metrics.get(m)
            meets = v is not None and not ((bound[0] is not None and v < bound[0]) or (bound[1] is not None and v > bound[1]))
            result = "not evaluated" if v is None else f"advisory ({'meets' if meets else 'below'} the production bar)"
            lines.append(f"| {m} | {'-' if v is None else f'{v:.4g}'} | production bar {describe(bound)} | {result} "
                         f"| {ev.evaluator_label(who.get(m))} |")
    extra = [(k, v) for k, v in metrics.items() if k not in gated and k not in floors]
    if extra:
        lines += ["", "| metric | value | evaluator |", "|---|---|---|"]
        lines += [f"| {k}{' (advisory: grammar of the expected words)' if k.endswith('_jsgf') else ''} | "
                  f"{v if not isinstance(v, float) else f'{v:.4g}'} | {ev.evaluator_label(who.get(k))} |"
                  for k, v in extra]
    return "\n".join(lines) + "\n"


def _log_mel(audio: Any, sr: int) -> Any:
    import librosa
    import numpy as np

    x = np.nan_to_num(ev.to_mono_float(audio))
    mel = librosa.feature.melspectrogram(y=x, sr=sr, n_fft=1024, hop_length=256, n_mels=80)
    return librosa.power_to_db(mel + 1e-10, ref=np.max)


def plot_pair(pair: Pair, sr: int, out_png: Path, kind: str) -> Path:
    """`kind` mel: spectrograms of synthesis over reference; pitch: both F0 contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    ref = pair.ref if pair.ref is not None else None
    title = pair.text if len(pair.text) < 70 else pair.text[:67] + "..."
    if kind == "mel":
        n = 2 if ref is not None else 1
        fig, axes = plt.subplots(n, 1, figsize=(8, 2.2 * n), squeeze=False)
        items = [("synthesized", pair.synth, sr)] + ([("reference", ref, pair.ref_sr)] if ref is not None else [])
        for ax, (label, audio, a_sr) in zip(axes[:, 0], items, strict=True):
            m = _log_mel(audio, a_sr)
            ax.imshow(m, origin="lower", aspect="auto", cmap="magma",
                      extent=(0.0, m.shape[1] * 256 / a_sr, 0.0, float(m.shape[0])))
            ax.set_ylabel(f"{label}\nmel bin")
        axes[-1, 0].set_xlabel("time (s)")
        axes[0, 0].set_title(title, fontsize=9)
    else:
        fig, ax = plt.subplots(figsize=(8, 2.6))
        for label, audio, a_sr in [("synthesized", pair.synth, sr)] + (
                [("reference", ref, pair.ref_sr)] if ref is not None else []):
            y = ev.trim(ev.resample(audio, a_sr, ev.EVAL_SR), ev.EVAL_SR)
            f0 = ev.f0_contour(y, ev.EVAL_SR)
            t = np.arange(f0.size) * 0.01
            ax.plot(t, np.where(f0 > 0, f0, np.nan), label=label, lw=1.2)
        ax.set_xlabel("time (s, trimmed)")
        ax.set_ylabel("F0 (Hz)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=80)
    plt.close(fig)
    return out_png


def write_media(st: StageRun, pairs: list[Pair], sr: int, rows: list[dict[str, Any]],
                metrics: dict[str, Any], n_pairs: int,
                evaluators: dict[str, dict[str, Any]] | None = None) -> list[MediaItem]:
    mdir = media_dir(st.stage_dir)
    items: list[MediaItem] = []
    atomic_write_text(mdir / "metrics.md", metrics_table(rows, metrics, evaluators))
    items.append(MediaItem("table", "media/metrics.md", "Validation metrics and thresholds", "Validation metrics"))
    shown = [p for p in pairs if p.kind == "heldout" and p.ref is not None][:n_pairs]
    if len(shown) < n_pairs:
        shown += [p for p in pairs if p.kind == "sentence"][: n_pairs - len(shown)]
    for i, p in enumerate(shown):
        plot_pair(p, sr, mdir / f"mel_{i}.png", "mel")
        items.append(MediaItem("image", f"media/mel_{i}.png", f"Mel spectrogram, synthesized vs reference: {p.text}",
                               "Spectrograms"))
        plot_pair(p, sr, mdir / f"pitch_{i}.png", "pitch")
        items.append(MediaItem("image", f"media/pitch_{i}.png", f"Pitch contour: {p.text}", "Pitch contours"))
        save_wav(mdir / f"synth_{i}.wav", p.synth, sr)
        items.append(MediaItem("audio", f"media/synth_{i}.wav", f"Synthesized: {p.text}", "Listen"))
        if p.ref is not None:
            save_wav(mdir / f"ref_{i}.wav", p.ref, p.ref_sr)
            items.append(MediaItem("audio", f"media/ref_{i}.wav", f"Reference recording: {p.text}", "Listen"))
    write_index(st.stage_dir, "validate", items)
    return items


# ------------------------------------------------------------------------------------ the stage
@dataclass
class _Work:
    """What validate_stage learns step by step."""

    root: Path
    bundle_dir: Path
    cfg: dict[str, Any]
    t_start: float
    pairs: list[Pair] = field(default_factory=list)
    why_missing: dict[str, str] = field(default_factory=dict)
    sr: int = 0


def _check_bundle(st: StageRun, w: _Work) -> None:
    """The bundle, before anything else: a bad one stops the stage (bundle_invalid)."""
    from ..bundle import validate_voice_bundle

    check = validate_voice_bundle(w.bundle_dir, w.root)
    where = rel(w.bundle_dir, w.root)
    st.check("bundle_valid", check.ok, f"{where}: " + ("ok" if check.ok else "; ".join(check.problems[:3])))
    if not check.ok:
        raise LaneError("bundle_invalid", f"{where}: {check.problems[0]}"
                        + (f" (+{len(check.problems) - 1} more)" if len(check.problems) > 1 else ""))


def _texts(w: _Work, vman: Path) -> None:
    """Held-out recordings (text + reference audio) and the fixed sentence set."""
    if vman.exists():
        for row in read_heldout(vman, int(w.cfg["max_heldout"])):
            ref, ref_sr = ev.load_audio(row["audio_filepath"])
            w.pairs.append(Pair(row["text"], _normalize(row["text"]), ref=ref, ref_sr=ref_sr,
                                ref_path=row["audio_filepath"]))
    if not w.pairs:
        msg = f"no held-out recordings ({rel(vman, w.root)} missing or empty)"
        for k in ("cer_synth", "cer_ratio", "wer_ratio", "spk_sim", "spk_margin", "mcd_db", "f0_rmse_hz", "f0_corr",
                  "vuv_error", "duration_ratio", "dnsmos_ratio", "utmos_ratio"):
            w.why_missing[k] = msg
    w.pairs += [Pair(s, _normalize(s), kind="sentence") for s in read_sentences(_abs(w.root, w.cfg["sentences"]))]


def _synthesis(st: StageRun, w: _Work) -> dict[str, Any]:
    """Every text through the bundle's ONNX files (onnxruntime only), then the speed numbers and the
    NeMo-vs-ONNX agreement on a few texts."""
    from ..bundle.voice import OnnxVoice

    voice = OnnxVoice(w.bundle_dir, threads=int(w.cfg.get("threads") or 0) or None)
    w.sr = int(voice.sample_rate)
    st.progress(0, len(w.pairs), "synthesizing")
    t0 = time.perf_counter()
    _synthesize(voice, w.pairs)
    synth_s = time.perf_counter() - t0
    # speed: time a few sentences again, warm, one by one
    timed = [p.spoken for p in w.pairs if p.kind == "sentence"][: int(w.cfg["rtf_texts"])] or [w.pairs[0].spoken]
    rtf = ev.measure_rtf(voice.synthesize, timed, w.sr, warmup=0)
    agree, agree_detail = _nemo_agreement(w.bundle_dir, w.pairs[: int(w.cfg["nemo_agree_n"])], w.sr)
    if agree is None:
        w.why_missing["nemo_onnx_mcd"] = agree_detail
    return {"rtf_cpu": _f(rtf["rtf"]), "synth_audio_s": _f(sum(p.synth.size for p in w.pairs) / w.sr),
            "synth_wall_s": _f(synth_s), "nemo_onnx_mcd": _f(agree)}


def _impostor(w: _Work) -> tuple[Any, int] | None:
    ipath = _abs(w.root, w.cfg["impostor"])
    if ipath.exists():
        return ev.load_audio(ipath)
    w.why_missing["spk_margin"] = f"no impostor recording at {rel(ipath, w.root)}"
    return None


def _evidence(st: StageRun, w: _Work, summary: dict[str, Any], rows: list[dict[str, Any]]) -> int:
    """Audio per text, metrics.json, report media, and the bundle's validation record; returns the
    number of media items."""
    from ..bundle import write_validation

    audio_dir = st.stage_dir / "audio"
    for i, p in enumerate(w.pairs):
        save_wav(audio_dir / f"{p.kind}_{i:03d}.wav", p.synth, w.sr)
        summary["texts"].append({"text": p.text, "kind": p.kind, "ref": p.ref_path or None,
                                 **{k: (_f(v) if not isinstance(v, (str, list)) else v) for k, v in p.metrics.items()}})
    items = write_media(st, w.pairs, w.sr, rows, summary["metrics"], int(w.cfg["media_pairs"]), summary["evaluators"])
    metrics_path = st.stage_dir / "metrics.json"
    atomic_write_text(metrics_path, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    st.artifact("validation_metrics", metrics_path)
    st.artifact("bundle_validation", write_validation(w.bundle_dir, summary))
    # manifest.json now carries the validation record: hash it again here, so the ledger's latest
    # entry for that path matches the file on disk
    st.artifact("bundle_manifest", w.bundle_dir / "manifest.json")
    return len(items)


def validate_stage(st: StageRun, profile: dict[str, Any], *, root: str | os.PathLike[str],
                   run_dir: str | os.PathLike[str], voice_profile_id: str,
                   weights_manifest: str | os.PathLike[str] | None,
                   bundle_dir: str | os.PathLike[str] | None = None,
                   val_manifest: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run the validate stage into `st` (checks, stats, artifacts, media); returns the summary that
    also goes into the bundle's validation.json. Raises LaneError for a bad bundle (bundle_invalid)
    or a bundle that cannot synthesize (synthesis_failed)."""
    rootp = Path(root).resolve()
    cfg = eval_config(profile)
    from ..bundle.store import candidate_dir

    bdir = Path(bundle_dir) if bundle_dir else candidate_dir(rootp, voice_profile_id, st.run_id)
    w = _Work(rootp, bdir, cfg, time.monotonic())
    _check_bundle(st, w)
    # missing ones are recorded, not raised
    evaluators = ev.load_evaluators(weights_manifest, rootp, selection=ev.selection_of(cfg.get("evaluators")))
    st.stats(**{f"evaluator_{role}": s.state for role, s in evaluators.status.items()},
             **{f"evaluator_{role}_class": s.eval_class for role, s in evaluators.status.items() if s.eval_class},
             **{f"evaluator_{role}_id": ",".join(s.ids) for role, s in evaluators.status.items() if s.ids})
    _texts(w, Path(val_manifest) if val_manifest else Path(run_dir) / "train" / "data" / "val_manifest.json")
    speed = _synthesis(st, w)
    metrics = compute_metrics(w.pairs, w.sr, evaluators, cfg, _impostor(w), st)
    metrics.update(speed)
    rows = record_checks(st, ev.load_thresholds(cfg), metrics, evaluators, w.why_missing)
    failed = [r["id"] for r in rows if r["ok"] is False]
    missing = [r["id"] for r in rows if r["ok"] is None and not r["optional"]]
    ok = not failed and not missing
    summary: dict[str, Any] = {
        "schema": VALIDATION_SCHEMA, "run_id": st.run_id, "profile": profile.get("name"),
        "voice_profile_id": voice_profile_id, "created_at": now_iso(), "ok": ok,
        "first_fail": (failed + missing)[0] if (failed or missing) else None,
        "metrics": metrics, "checks": rows, "evaluators": evaluators.identities(),
        "metric_evaluators": ev.metric_evaluators(list(metrics), evaluators.identities()),
        "texts": [], "duration_s": round(time.monotonic() - w.t_start, 2),
    }
    n_media = _evidence(st, w, summary, rows)
    st.stats(**{k: v for k, v in metrics.items() if v is not None},
             validation_ok=ok, validate_wall_s=round(time.monotonic() - w.t_start, 2), media_items=n_media)
    return summary


def run(st: StageRun, p: StageParams) -> dict[str, Any]:
    """The validate stage's entry point (notebooks/validate.ipynb)."""
    with st.guard():
        return validate_stage(st, p.profile_config(), root=p.root_path, run_dir=st.run_dir,
                              voice_profile_id=p.voice_profile_id,
                              weights_manifest=str(p.path(p.weights_manifest)) if p.weights_manifest else None)
