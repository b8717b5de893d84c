"""The synthetic voices the spoken-consent cohort and bench are made of, and how each one speaks.

A voice is named `engine:name`:

- `espeak:<voice>[+<variant>]`: espeak-ng (Debian `espeak-ng`), English accents x variants;
- `festival:<voice>`: Festival's diphone voices `kal_diphone`, `ked_diphone` (Debian `festival`,
  `festvox-kallpc16k`, `festvox-kdlpc16k`);
- `flite:<voice>`: flite's built-in voices `awb`, `kal`, `rms` (Debian `flite`).

Never used here: Festival's HTS voice `cmu_us_slt_arctic_hts` and flite's `slt`, kept out of every
set the consent thresholds are tuned on so independent checks can use them.

Every clip goes through the same processing as the demo data (scripts/make_demo_data.py): rendered
by the engine, then `sox -R ... rate -v 16000`, 16 kHz mono 16-bit. `ensure_engines()` installs the
Debian packages when they are missing (root or sudo), or says which are missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

RATE = 16000
DEBIAN = {"espeak": ["espeak-ng", "sox"], "festival": ["festival", "festvox-kallpc16k", "festvox-kdlpc16k", "sox"],
          "flite": ["flite", "sox"]}
NEVER = ("festival:cmu_us_slt_arctic_hts", "flite:slt")  # kept for independent checks

ESPEAK_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd", "en-029",
                  "en-us-nyc")
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
FESTIVAL = ("kal_diphone", "ked_diphone")
FLITE = ("awb", "kal", "rms")

DEMO_SPEAKER = "espeak:en-us"      # data/demo/longform.flac (scripts/make_demo_data.py)
TEST_IMPOSTOR = "espeak:en-us+f3"  # data/eval/impostor.flac, and the consent tests' different voice


@dataclass(frozen=True)
class Style:
    """How a clip is spoken: speed (1.0 = the engine's default, >1 faster) and a pitch offset in the
    engine's own units (espeak-ng: -p, default 50; flite: Hz on its f0 mean; festival: ignored)."""

    speed: float = 1.0
    pitch: int = 0


def all_voices() -> list[str]:
    """Every voice of the catalogue (the demo speaker and the test impostor included)."""
    esp = [f"espeak:{a}" + (f"+{v}" if v else "") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
    return esp + [f"festival:{v}" for v in FESTIVAL] + [f"flite:{v}" for v in FLITE]


def engine_of(voice: str) -> str:
    return voice.split(":", 1)[0]


def ensure_engines(engines: tuple[str, ...] = ("espeak", "festival", "flite"), install: bool = True) -> list[str]:
    """The Debian packages still missing for `engines` after trying to install them (root or sudo)."""
    def missing() -> list[str]:
        pkgs = sorted({p for e in engines for p in DEBIAN[e]})
        return [p for p in pkgs if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]

    todo = missing()
    if todo and install and shutil.which("apt-get"):
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([*sudo, "apt-get", "update", "-qq"], capture_output=True, env=env)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *todo],
                       capture_output=True, env=env)
        todo = missing()
    return todo


def _raw(voice: str, text: str, out: Path, style: Style) -> None:
    engine, name = voice.split(":", 1)
    if voice in NEVER:
        raise ValueError(f"{voice} is kept for independent checks and never used here")
    if engine == "espeak":
        cmd = ["espeak-ng", "-v", name, "-s", str(round(165 * style.speed)), "-p", str(50 + style.pitch),
               "-w", str(out), text]
    elif engine == "flite":
        cmd = ["flite", "-voice", name, "--setf", f"duration_stretch={1 / style.speed:.3f}"]
        if style.pitch:
            cmd += ["--setf", f"int_f0_target_mean={100 + style.pitch}"]
        cmd += ["-t", text, "-o", str(out)]
    elif engine == "festival":
        txt = out.with_suffix(".txt")
        txt.write_text(text, encoding="utf-8")
        cmd = ["text2wave", "-eval", f"(voice_{name})", "-eval",
               f"(Parameter.set 'Duration_Stretch {1 / style.speed:.3f})", str(txt), "-o", str(out)]
    else:
        raise ValueError(f"unknown engine in {voice!r}")
    subprocess.run(cmd, check=True, capture_output=True)


def speak(voice: str, text: str, out: str | os.PathLike[str], style: Style = Style(), gap_ms: int = 0) -> Path:
    """`text` spoken by `voice` into `out` (16 kHz mono 16-bit, the demo data's processing)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lane-voice-") as tmp:
        raw = Path(tmp) / "raw.wav"
        _raw(voice, text, raw, style)
        effects = ["rate", "-v", str(RATE)] + (["pad", "0", f"{gap_ms / 1000:.3f}"] if gap_ms else [])
        subprocess.run(["sox", "-R", str(raw), "-c", "1", "-b", "16", str(out), *effects], check=True,
                       capture_output=True)
    return out
