"""Make speech with espeak-ng and shape it with sox (Debian packages). Used by the demo-data script
and by tests that need real, reproducible speech: never at run time on a user's data."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ..core.reasons import LaneError


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise LaneError("config_invalid", f"{tool} is not installed (apt-get install espeak-ng sox)")
    return path


def speak(text: str, out: str | Path, *, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50,
          sample_rate: int | None = None, gap_ms: int = 0) -> Path:
    """Render `text` to a WAV file with espeak-ng (22050 Hz mono 16-bit natively).

    `sample_rate` resamples with sox; `gap_ms` appends that much silence.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".espeak.wav")
    subprocess.run([_need("espeak-ng"), "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "-w", str(raw), text],
                   check=True, capture_output=True)
    effects: list[str] = []
    if sample_rate:
        effects += ["rate", "-v", str(sample_rate)]
    if gap_ms:
        effects += ["pad", "0", f"{gap_ms / 1000:.3f}"]
    if effects:
        sox([str(raw), str(out), *effects])
        raw.unlink()
    else:
        raw.replace(out)
    return out


def sox(args: Sequence[str]) -> None:
    """Run sox with `args` (input, output, effects ...); raises CalledProcessError with stderr on failure.

    `-R` makes sox's dither noise repeatable, so the same inputs give byte-identical files."""
    subprocess.run([_need("sox"), "-R", *args], check=True, capture_output=True)


def concat(parts: Sequence[str | Path], out: str | Path) -> Path:
    """Concatenate audio files (same rate and channels) into `out` (format from its suffix)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sox([*map(str, parts), str(out)])
    return out
