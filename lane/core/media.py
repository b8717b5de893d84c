"""Report media: plots and audio a stage wants a reviewer to see and hear in the readiness report.

A stage writes files under `runs/<run_id>/<stage>/media/` and lists them in a small index,
`media/<group>.json`, one per producer (data preparation, training, validation ...). The report
collects every `runs/<run_id>/*/media/*.json` and embeds the files inline (base64), so the HTML
report is a single self-contained file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .fsutil import atomic_write_json, read_json

MediaKind = Literal["image", "audio", "table"]


@dataclass(frozen=True)
class MediaItem:
    kind: MediaKind
    path: str  # relative to the stage directory (e.g. "media/loss.png")
    caption: str = ""
    section: str = ""  # heading the item is grouped under in the report


def media_dir(stage_dir: str | os.PathLike[str]) -> Path:
    d = Path(stage_dir) / "media"
    d.mkdir(parents=True, exist_ok=True)
    return d


def write_index(stage_dir: str | os.PathLike[str], group: str, items: list[MediaItem]) -> Path:
    """Write (replace) `media/<group>.json` listing `items`."""
    return atomic_write_json(media_dir(stage_dir) / f"{group}.json", [asdict(i) for i in items])


def collect(run_dir: str | os.PathLike[str], groups: list[str] | None = None) -> dict[str, list[MediaItem]]:
    """Every stage's media items (of the named index groups only, when given), keyed by stage name;
    files that vanished are skipped."""
    out: dict[str, list[MediaItem]] = {}
    for index in sorted(Path(run_dir).glob("*/media/*.json")):
        if groups is not None and index.stem not in groups:
            continue
        stage_dir = index.parent.parent
        try:
            rows = read_json(index)
        except ValueError:
            continue
        for row in rows if isinstance(rows, list) else []:
            item = MediaItem(**{k: row.get(k, "") for k in ("kind", "path", "caption", "section")})
            if (stage_dir / item.path).exists():
                out.setdefault(stage_dir.name, []).append(item)
    return out


def md_table(rows: Sequence[Mapping[str, object]], cols: list[str], empty: str = "(none)") -> str:
    """`rows` as a Markdown table with the columns `cols` (pipes escaped, newlines folded)."""
    if not rows:
        return empty + "\n"
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|").replace("\n", " ") for c in cols) + " |")
    return "\n".join(out) + "\n"


def save_wav(path: str | os.PathLike[str], audio: Any, sample_rate: int) -> Path:
    """Float audio (mono, or averaged to mono) as 16-bit PCM WAV; NaN becomes 0, peaks are clipped."""
    import numpy as np
    import soundfile as sf

    x = np.asarray(audio, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1) if x.shape[1] < x.shape[0] else x.mean(axis=0)
    x = np.clip(np.nan_to_num(x.reshape(-1)), -1.0, 1.0)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), x, int(sample_rate), subtype="PCM_16")
    return out
