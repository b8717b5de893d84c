"""Plots and tables for the train notebook's data section, also saved as PNG for the readiness report
(lane.core.media.write_index(st.stage_dir, "data", items))."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.media import MediaItem, media_dir

SECTION = "Dataset"


def _plt() -> Any:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("module://matplotlib_inline.backend_inline", "nbagg", "widget"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def duration_histogram(result: Any) -> Any:
    plt = _plt()
    clips = result.clips
    kept = [c["duration_s"] for c in clips if c["kept"]]
    rej = [c["duration_s"] for c in clips if not c["kept"] and c["duration_s"] is not None]
    fig, ax = plt.subplots(figsize=(7, 3))
    bins = np.linspace(0, max(kept + rej + [1.0]) * 1.05, 30)
    ax.hist(kept, bins=bins, label=f"kept ({len(kept)})", color="tab:green", alpha=0.8)
    if rej:
        ax.hist(rej, bins=bins, label=f"rejected ({len(rej)})", color="tab:red", alpha=0.6)
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("clips")
    ax.legend()
    ax.set_title(f"Clip durations: {result.kept_s / 60:.1f} min kept")
    fig.tight_layout()
    return fig


def pitch_histogram(result: Any) -> Any:
    from .pitch import read_cache

    plt = _plt()
    voiced = []
    for c in result.clips:
        if c["kept"] and c["path"]:
            f0 = read_cache(result.sup_data_dir, Path(c["path"]))
            if f0 is not None:
                voiced.append(f0[f0 > 0])
    v = np.concatenate(voiced) if voiced else np.zeros(0)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.hist(v, bins=60, color="tab:blue")
    ps = result.pitch_stats
    ax.axvline(ps["pitch_mean"], color="k", linestyle="--", label=f"mean {ps['pitch_mean']:.0f} Hz")
    ax.set_xlabel("F0 (Hz), voiced frames")
    ax.set_ylabel("frames")
    ax.legend()
    ax.set_title(f"Pitch: std {ps['pitch_std']:.0f} Hz, range {ps['pitch_min']:.0f}-{ps['pitch_max']:.0f} Hz")
    fig.tight_layout()
    return fig


def rejected_table(result: Any) -> list[dict[str, Any]]:
    """Rows: reason, clips, seconds, example detail (kept first as a reference row)."""
    rows: dict[str, dict[str, Any]] = {}
    for c in result.clips:
        key = "kept" if c["kept"] else c["reason"]
        r = rows.setdefault(key, {"reason": key, "clips": 0, "seconds": 0.0, "example": ""})
        r["clips"] += 1
        r["seconds"] = round(r["seconds"] + (c["duration_s"] or 0.0), 2)
        if not r["example"] and not c["kept"]:
            r["example"] = f"{Path(c['source']).name}@{c['offset_s']}s: {c['detail']}"
    return [rows[k] for k in sorted(rows, key=lambda k: (k != "kept", k))]


def rejected_markdown(result: Any) -> str:
    lines = ["| reason | clips | seconds | example |", "|---|---|---|---|"]
    for r in rejected_table(result):
        lines.append(f"| {r['reason']} | {r['clips']} | {r['seconds']:.1f} | {r['example'].replace('|', '/')} |")
    return "\n".join(lines) + "\n"


def text_sources_markdown(result: Any) -> str:
    """Kept clips by the source of their text: given (metadata), aligned (transcript), asr (transcribed)."""
    meaning = {"given": "given with the clip (LJSpeech metadata or NeMo manifest)",
               "aligned": "the transcript, aligned to the audio", "asr": f"transcribed by {result.asr_engine or 'ASR'}"}
    counts: dict[str, int] = {}
    for c in result.clips:
        if c["kept"]:
            counts[c.get("text_source", "given")] = counts.get(c.get("text_source", "given"), 0) + 1
    lines = ["| text source | kept clips | meaning |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {meaning.get(k, k)} |" for k, v in sorted(counts.items())]
    return "\n".join(lines) + "\n"


def clip_figure(path: str | Path, title: str = "") -> Any:
    """Waveform and log spectrogram of one clip."""
    import soundfile as sf

    plt = _plt()
    y, sr = sf.read(str(path), dtype="float32")
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(7, 3.6), sharex=True)
    t = np.arange(len(y)) / sr
    a1.plot(t, y, linewidth=0.5)
    a1.set_ylabel("amplitude")
    a1.set_title(title[:90])
    a2.specgram(y, NFFT=1024, Fs=sr, noverlap=768, cmap="magma")
    a2.set_xlabel("time (s)")
    a2.set_ylabel("Hz")
    fig.tight_layout()
    return fig


def example_clips(result: Any, n: int = 3) -> list[dict[str, Any]]:
    kept = [c for c in result.clips if c["kept"]]
    if len(kept) <= n:
        return kept
    idx = np.linspace(0, len(kept) - 1, n).round().astype(int)
    return [kept[i] for i in idx]


def save_media(stage_dir: str | Path, result: Any, root: str | Path, n_examples: int = 3) -> list[MediaItem]:
    """Render every plot to PNG (+ example clips as audio) under media/ and write media/data.json."""
    import shutil

    from ..core.media import write_index

    plt = _plt()
    md = media_dir(stage_dir)
    items: list[MediaItem] = []
    for name, fig, cap in (("data_durations.png", duration_histogram(result), "Clip durations, kept and rejected"),
                           ("data_pitch.png", pitch_histogram(result), "Pitch of the kept clips (pyworld)")):
        fig.savefig(md / name, dpi=80)
        plt.close(fig)
        items.append(MediaItem("image", f"media/{name}", cap, SECTION))
    (md / "data_rejected.md").write_text(rejected_markdown(result), encoding="utf-8")
    items.append(MediaItem("table", "media/data_rejected.md", "Clips by reason", SECTION))
    (md / "data_text_sources.md").write_text(text_sources_markdown(result), encoding="utf-8")
    items.append(MediaItem("table", "media/data_text_sources.md", "Where each kept clip's text came from", SECTION))
    for i, c in enumerate(example_clips(result, n_examples)):
        src = Path(root) / c["path"]
        fig = clip_figure(src, c["text"])
        fig.savefig(md / f"data_clip{i}.png", dpi=80)
        plt.close(fig)
        shutil.copyfile(src, md / f"data_clip{i}.wav")
        items.append(MediaItem("image", f"media/data_clip{i}.png", c["text"][:120], SECTION))
        items.append(MediaItem("audio", f"media/data_clip{i}.wav", c["text"][:120], SECTION))
    write_index(stage_dir, "data", items)
    return items


def show(fig: Any) -> None:
    """Display a figure once in a notebook and free it (the inline backend would show it again)."""
    from IPython.display import display

    display(fig)
    _plt().close(fig)
