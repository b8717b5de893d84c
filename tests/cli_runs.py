"""Runs of the real `lane` CLI (or a seed script) in a subprocess, espeak-ng speech and a workspace with
configs, notebooks and that speech (a pytest plugin, loaded by tests/conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SEED_ENV = ("TRAIN_BACKEND", "TRAIN_LANE", "AUDIO_PATH", "EXPECTED_HEAD", "VOICE_PROFILE_ID", "LANE_PROFILE",
            "LANE_CONFIG", "LANE_RUN_ID", "LANE_TRANSCRIPT", "LANE_INPUT_FORMAT", "LANE_WEIGHTS_MANIFEST",
            "LANE_CELL_TIMEOUT_S", "LANE_REQUIRE_CLEAN_TREE", "LANE_ALLOW_FROM_SCRATCH", "LANE_KERNEL")


@dataclass
class Done:
    rc: int
    out: str
    err: str
    root: Path

    @property
    def last_status(self) -> str:
        lines = [x for x in self.out.splitlines() if x.startswith("[tts-prod]")]
        assert lines, f"no [tts-prod] line in:\n{self.out}\n{self.err}"
        return lines[-1]

    def train_status(self, lane: str = "tts_prod_train_nemo") -> dict[str, Any]:
        path = self.root / "artifacts" / f"train_status.{lane}.json"
        assert path.is_file(), f"{path} not written; stdout:\n{self.out}"
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    @property
    def log(self) -> str:
        return (self.root / "artifacts" / "voice_train_prod.orchestrator.log").read_text()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SEED_ENV}
    env.update(PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.update(extra)
    return env


def run_lane(root: Path, *args: str, env: Mapping[str, str] | None = None, timeout: int = 300) -> Done:
    """The real CLI (`python -m lane`) in a subprocess, with the workspace as root and cwd."""
    cmd = [sys.executable, "-m", "lane", *args]
    if args and args[0] == "run" and "--root" not in args:
        cmd += ["--root", str(root)]
    p = subprocess.run(cmd, cwd=root, env=clean_env(**(env or {})), capture_output=True, text=True, timeout=timeout)
    return Done(p.returncode, p.stdout, p.stderr, root)


def run_script(root: Path, script: str, *args: str, env: Mapping[str, str] | None = None, timeout: int = 300) -> Done:
    """A seed script from scripts/voice/ exactly as the runbook types it (LANE_ROOT = the workspace)."""
    path = REPO / "scripts" / "voice" / script
    cmd = ["bash", str(path), *args] if script.endswith(".sh") else [sys.executable, str(path), *args]
    p = subprocess.run(cmd, cwd=root, env=clean_env(LANE_ROOT=str(root), **(env or {})), capture_output=True,
                       text=True, timeout=timeout)
    return Done(p.returncode, p.stdout, p.stderr, root)


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of espeak-ng speech (22050 Hz mono WAV)."""
    from lane.data.espeak import speak

    out = tmp_path_factory.mktemp("speech") / "speech.wav"
    return speak("The quick brown fox jumps over the lazy dog, and then it rests.", out)


@pytest.fixture(scope="session")
def speech_flac(speech: Path) -> Path:
    from lane.data.espeak import sox

    out = speech.with_name("speech.flac")
    sox([str(speech), str(out)])
    return out


@pytest.fixture
def ws(workspace: Path, speech: Path) -> Path:
    """A workspace (configs/ and notebooks/ copied) with data/speech.wav in it."""
    (workspace / "data").mkdir(exist_ok=True)
    shutil.copy(speech, workspace / "data" / "speech.wav")
    return workspace


@pytest.fixture
def lane_cli() -> Callable[..., Done]:
    return run_lane


@pytest.fixture
def seed_script() -> Callable[..., Done]:
    return run_script
