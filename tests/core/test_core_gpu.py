"""GPU honesty (lane.core.gpu): who asks for a GPU, and a run that asks for one on this GPU-less
machine ends gpu_unavailable before any stage (the real runner, the real CLI, real torch). The
local_docker run is in tests/backends/test_container_engine.py, the Slurm one in
tests/backends/test_backends_slurm.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lane_runs import install_notebooks

from lane.core import gpu
from lane.core.reasons import LaneError, exit_code

GPU_PROFILE = "extends: demo\ntrain:\n  accelerator: gpu\n"


def test_who_asks_for_a_gpu() -> None:
    assert gpu.requested({"name": "demo", "train": {"accelerator": "auto"}}, {}) is None
    assert gpu.requested({"name": "demo", "train": {"accelerator": "cpu"}}, {"LANE_REQUIRE_GPU": "0"}) is None
    assert gpu.requested({"name": "g", "train": {"accelerator": "gpu"}}, {}) == "profile g (train.accelerator: gpu)"
    assert gpu.requested({}, {"LANE_REQUIRE_GPU": "docker --gpus all"}) == "docker --gpus all"
    assert gpu.requested({}, {"LANE_REQUIRE_GPU": "1"}) == "LANE_REQUIRE_GPU"
    assert gpu.slurm_asks("gpu:1", None) and gpu.slurm_asks("tmpdisk:10,gpu:a100:2", None)
    assert gpu.slurm_asks(None, "1") and not gpu.slurm_asks(None, None) and not gpu.slurm_asks("tmpdisk:10", "0")
    assert exit_code("gpu_unavailable") == 2


def test_require_says_what_it_found() -> None:
    cuda, _ = gpu.torch_cuda()
    if cuda:
        pytest.skip("this machine has a GPU")
    with pytest.raises(LaneError) as info:
        gpu.require("profile x (train.accelerator: gpu)")
    assert info.value.code == "gpu_unavailable"
    assert info.value.detail.startswith("profile x (train.accelerator: gpu) asks for a GPU, but torch ")
    assert "torch.cuda.is_available() is False" in info.value.detail and "nvidia-smi" in info.value.detail


def test_a_local_run_asking_for_a_gpu_ends_gpu_unavailable(ws: Path, lane_cli: Callable[..., Any]) -> None:
    if gpu.torch_cuda()[0]:
        pytest.skip("this machine has a GPU")
    install_notebooks(ws, {"verify": "pass", "train": "pass"})
    (ws / "configs" / "profiles" / "gpu_demo.yaml").write_text(GPU_PROFILE)
    done = lane_cli(ws, "run", "--audio", "data/speech.wav", "--transcript", "", "--profile", "gpu_demo",
                    "--stages", "verify,train")
    assert done.rc == 2, done.out + done.err
    assert done.last_status.startswith("[tts-prod] status=blocked reason=gpu_unavailable run_id=")
    st = done.train_status()
    assert "profile gpu_demo (train.accelerator: gpu) asks for a GPU" in st["detail"]
    assert not st.get("stages") and not list((ws / "runs").glob("*/verify/result.json"))
    # the same run without the request passes: the check costs nothing when no GPU is asked for
    ok = lane_cli(ws, "run", "--audio", "data/speech.wav", "--transcript", "", "--stages", "verify,train")
    assert ok.rc == 0, ok.out + ok.err
