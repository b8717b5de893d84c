"""Session fixtures for the NeMo area: one tiny espeak-ng dataset, one tiny FastPitch trained a few
steps through the lane (train_voice), and one bundle exported from it. Everything is real NeMo,
Lightning, onnxruntime; only the sizes are tiny so the area fits its CPU budget."""

from __future__ import annotations

from typing import Any

import pytest
from nemo_helpers import make_root, tiny_profile


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
