"""espeak-ng speech in three voices and a workspace with a demo-profile voice bundle, built once per
session for the validate stage and the metrics (a pytest plugin, loaded by tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore on a sunny afternoon.",
    "Is it going to rain tomorrow morning?",
]


@pytest.fixture(scope="session")
def espeak_clips(tmp_path_factory) -> dict[str, list[Path]]:
    """The same sentences in three espeak-ng voices: 'us' (the speaker), 'us_slow' (same voice, other
    rate), 'other' (espeak's female variant en-us+f3: a different voice, the impostor). Male espeak
    voices (en-gb-scotland, en-029) sound too alike to resemblyzer to serve as an impostor (cosine ~0.9)."""
    from lane.data.espeak import speak

    d = tmp_path_factory.mktemp("espeak")
    out: dict[str, list[Path]] = {"us": [], "us_slow": [], "other": []}
    for i, text in enumerate(SENTENCES):
        out["us"].append(speak(text, d / f"us{i}.wav", voice="en-us"))
        out["us_slow"].append(speak(text, d / f"us_slow{i}.wav", voice="en-us", rate_wpm=130))
        out["other"].append(speak(text, d / f"other{i}.wav", voice="en-us+f3"))
    return out


@pytest.fixture(scope="session")
def demo_workspace(tmp_path_factory) -> Path:
    """A workspace with a demo-profile voice bundle in it, made the way the lane makes one: a tiny
    espeak-ng dataset in the data stage's layout (lane.nemo.tinydata), `train_voice` with the demo
    profile (FastPitch fine-tuned from the shipped base listed in the example weights manifest, then
    Griffin-Lim; only max_steps is lowered, to 60, to fit the test budget), then `build_bundle`. Also an
    impostor clip (espeak en-us+f3) at data/eval/impostor.flac. Built once per session (about 2 minutes
    on 2 cores)."""
    import shutil

    from lane.bundle import build_bundle
    from lane.core.config import deep_merge, load_profile
    from lane.core.stage import StageRun
    from lane.data.espeak import concat, speak
    from lane.nemo.tinydata import make_tiny_dataset
    from lane.nemo.train import train_voice

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("validate_ws")
    for name in ("configs", "notebooks"):
        shutil.copytree(repo / name, root / name)
    prof = deep_merge(load_profile("demo", root), {"train": {"fastpitch": {"max_steps": 60}}})
    st = StageRun.open("train", root=root, run_id="demo-run")
    ds = make_tiny_dataset(st.stage_dir / "data", n=12, n_val=3)
    train_voice(st, prof, ds, out_dir=st.stage_dir, weights_manifest=str(root / "configs/voice/weights-manifest.example.json"),
                allow_from_scratch=False, resume=False)
    st.finish()
    ex = StageRun.open("export", root=root, run_id="demo-run")
    build_bundle(ex, prof, run_dir=ex.run_dir, root=root, voice_profile_id="demo_voice")
    ex.finish()
    parts = [speak(t, root / "tmp_imp" / f"i{i}.wav", voice="en-us+f3") for i, t in enumerate(SENTENCES)]
    (root / "data" / "eval").mkdir(parents=True, exist_ok=True)
    concat(parts, root / "data" / "eval" / "impostor.flac")
    shutil.rmtree(root / "tmp_imp")
    return root
