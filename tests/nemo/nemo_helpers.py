"""Helpers shared by the NeMo-area tests and their child processes (a uniquely named module, so it
never collides with another area's conftest)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TINY_MODEL = {"d_model": 32, "n_layer_enc": 1, "n_layer_dec": 1, "d_head": 16, "d_inner": 64,
              "predictor_filter": 32, "batch_size": 4, "warmup_steps": 10, "lr": 1.0e-3}
TRAIN_STEPS = 4


def tiny_profile(steps: int = TRAIN_STEPS, *, init: str = "scratch", promotable: bool = False,
                 **train: Any) -> dict[str, Any]:
    """The demo profile's shape with tiny sizes (the demo profile itself trains 300 steps)."""
    from lane.core.config import load_profile

    prof = copy.deepcopy(load_profile("demo", REPO))
    prof["promotable"] = promotable
    prof["train"].update({"checkpoint_every": 2, "stats_every": 1, "min_epoch_steps": 4, **train})
    prof["train"]["fastpitch"].update({"init": init, "max_steps": steps, "model": dict(TINY_MODEL)})
    prof["train"]["vocoder"] = {"type": "griffin_lim", "griffin_lim": {"n_iter": 8, "power": 1.2}}
    return prof


def make_root(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "configs", path / "configs", dirs_exist_ok=True)
    return path


def weights_manifest(root: Path, role_paths: dict[str, Path], license: str = "Apache-2.0") -> Path:
    from lane.core.fsutil import sha256_file

    entries = [{"id": f"test_{role}", "role": role, "path": str(p), "sha256": sha256_file(p),
                "source": "made by the test suite", "code_license": "Apache-2.0", "weights_license": license,
                "notes": "tiny checkpoint trained by tests/nemo"} for role, p in role_paths.items()]
    path = root / "weights.json"
    path.write_text(json.dumps({"schema": "voice_weights/1", "entries": entries}), encoding="utf-8")
    return path
