"""Fixtures for the data-preparation tests: real speech made with espeak-ng + sox, a workspace root
with the repo's configs, and a `run_prepare` helper that calls prepare_dataset through a real StageRun."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dataprep_texts import LANE, SENTENCES

from lane.core.config import load_profile
from lane.core.stage import StageRun
from lane.data.espeak import concat, sox, speak

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace root with configs/ and notebooks/ copied, plus a `tiny` profile (min_total_s 8)."""
    root = tmp_path_factory.mktemp("dataroot")
    for name in ("configs", "notebooks"):
        shutil.copytree(REPO / name, root / name)
    (root / "configs" / "profiles" / "tiny.yaml").write_text(
        "extends: demo\ndata:\n  min_total_s: 8\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


def _longform(out: Path, sentences: list[str], *, voice: str = "en-us", rate: int = 22050, seed: int = 7) -> Path:
    rng = random.Random(seed)
    parts = [speak(s, out.parent / f"{out.stem}_{i:02d}.wav", voice=voice, rate_wpm=165, sample_rate=rate,
                   gap_ms=int(rng.uniform(350, 900))) for i, s in enumerate(sentences)]
    lead = out.parent / f"{out.stem}_lead.wav"
    sox(["-n", "-r", str(rate), "-c", "1", "-b", "16", str(lead), "trim", "0", "0.4"])
    concat([lead, *parts], out)
    for p in [lead, *parts]:
        p.unlink()
    return out


@pytest.fixture(scope="session")
def longform(audio_dir: Path) -> tuple[Path, Path]:
    """~30 s of en-us speech (8 sentences, pauses 0.35-0.9 s) as 22.05 kHz FLAC, and its transcript."""
    flac = _longform(audio_dir / "long.flac", SENTENCES)
    txt = audio_dir / "long.txt"
    txt.write_text("\n".join(SENTENCES) + "\n", encoding="utf-8")
    return flac, txt


@pytest.fixture(scope="session")
def make_ljspeech(audio_dir: Path) -> Callable[..., Path]:
    """Factory: an LJSpeech folder from (id, text) rows; `wav_rate` and extra sox effects per clip."""
    counter = [0]

    def make(rows: list[tuple[str, str]], *, name: str | None = None, wav_rate: int = 22050) -> Path:
        counter[0] += 1
        folder = audio_dir / (name or f"lj{counter[0]}")
        (folder / "wavs").mkdir(parents=True, exist_ok=True)
        lines = []
        for cid, text in rows:
            speak(text, folder / "wavs" / f"{cid}.wav", sample_rate=wav_rate, gap_ms=120)
            lines.append(f"{cid}|{text}")
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder

    return make


@pytest.fixture(scope="session")
def ljspeech(make_ljspeech: Callable[..., Path]) -> Path:
    return make_ljspeech([(f"c{i:02d}", s) for i, s in enumerate(SENTENCES[:6])], name="lj_clean")


@pytest.fixture
def run_prepare(data_root: Path, tmp_path: Path) -> Callable[..., Any]:
    """Call prepare_dataset as the notebook does (real StageRun in a fresh run dir under data_root)."""

    def run(audio: str | Path, *, transcript: str | Path | None = None, profile: str = "tiny",
            input_format: str = "auto", data: dict[str, Any] | None = None, weights_manifest: str | None = None,
            st: StageRun | None = None) -> tuple[Any, StageRun]:
        from lane.data import prepare_dataset

        st = st or StageRun.open("train", root=data_root, run_dir=tmp_path / "run", lane=LANE)
        prof = load_profile(profile, data_root)
        prof["data"].update(data or {})
        res = prepare_dataset(st, prof, audio=str(audio), transcript=str(transcript) if transcript else None,
                              input_format=input_format, out_dir=st.stage_dir / "data",
                              weights_manifest=weights_manifest, lane=LANE)
        return res, st

    return run
