"""Tiny NeMo models made by the tests: a tiny espeak-ng dataset, a tiny FastPitch trained through the
lane, and a bundle exported from it, each built once per session and shared by every area (a pytest
plugin, loaded by tests/conftest.py; child processes import the helpers by this name)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY_MODEL = {"d_model": 32, "n_layer_enc": 1, "n_layer_dec": 1, "d_head": 16, "d_inner": 64,
              "predictor_filter": 32, "batch_size": 4, "warmup_steps": 10, "lr": 1.0e-3}
TRAIN_STEPS = 4
# a tiny HiFi-GAN generator (NeMo's discriminators stay full size: every CPU step is expensive)
TINY_HIFIGAN = {"batch_size": 2, "n_segments": 4096, "upsample_initial_channel": 16,
                "resblock_kernel_sizes": [3], "resblock_dilation_sizes": [[1, 3, 5]]}


def tiny_profile(steps: int = TRAIN_STEPS, *, init: str = "scratch", promotable: bool = False,
                 **train: Any) -> dict[str, Any]:
    """The demo profile's shape with tiny sizes (the demo profile itself trains 300 steps)."""
    from lane.core.config import load_profile

    prof = copy.deepcopy(load_profile("demo", REPO))
    prof["promotable"] = promotable
    prof["train"].update({"checkpoint_every": 2, "stats_every": 1, "min_epoch_steps": 4, **train})
    prof["train"]["fastpitch"].update({"init": init, "base": None, "max_steps": steps, "model": dict(TINY_MODEL)})
    prof["train"]["vocoder"] = {"type": "griffin_lim", "griffin_lim": {"n_iter": 8, "power": 1.2}}
    return prof


def make_root(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "configs", path / "configs", dirs_exist_ok=True)
    return path


def weights_manifest(root: Path, role_paths: dict[str, Path], license: str = "Apache-2.0",
                     promotable: bool = True) -> Path:
    """A weights manifest of test-made bases; they stand in for a release base (`promotable: true`),
    as NGC's are in production."""
    from lane.core.fsutil import sha256_file

    entries = [{"id": f"test_{role}", "role": role, "path": str(p), "sha256": sha256_file(p),
                "source": "made by the test suite", "code_license": "Apache-2.0", "weights_license": license,
                "promotable": promotable, "notes": "tiny checkpoint trained by tests/nemo"}
               for role, p in role_paths.items()]
    path = root / "weights.json"
    path.write_text(json.dumps({"schema": "voice_weights/1", "entries": entries}), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_ds(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from lane.nemo.tinydata import make_tiny_dataset

    return make_tiny_dataset(tmp_path_factory.mktemp("nemo_data"), n=8, n_val=2)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_ds: Any) -> dict[str, Any]:
    """A tiny FastPitch trained TRAIN_STEPS steps through train_voice (demo path, from scratch)."""
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    root = make_root(tmp_path_factory.mktemp("nemo_ws"))
    st = StageRun.open("train", root=root, run_id="nemo-train")
    prof = tiny_profile()
    result = train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model", weights_manifest=None,
                         allow_from_scratch=False, resume=False)
    res = st.finish()
    return {"root": root, "st": st, "result": result, "stage_result": res, "profile": prof}


@pytest.fixture(scope="session")
def bundle(trained: dict[str, Any]) -> dict[str, Any]:
    from lane.bundle import build_bundle
    from lane.core.stage import StageRun

    st = StageRun.open("export", root=trained["root"], run_id="nemo-train")
    path = build_bundle(st, trained["profile"], run_dir=st.run_dir, root=trained["root"], voice_profile_id="tiny")
    return {"path": path, "st": st, "stage_result": st.finish(), "root": trained["root"]}
