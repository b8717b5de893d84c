"""GPU honesty: whether a run asked for a GPU, and whether the process really has one.

A run asks for a GPU when its profile says `train.accelerator: gpu`, or when the backend that
started the runner reserved one and says so in LANE_REQUIRE_GPU (local_docker with `--gpus`, a Slurm
job with gres/gpus). Some engines accept a GPU request and deliver none: podman 4.3 without the
NVIDIA hooks ignores `--gpus all` and exits 0. The runner checks before its first stage (`require`)
and ends the run `gpu_unavailable` instead of training for hours on the CPU.

Import-light: torch is imported only when a GPU was asked for.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from .reasons import LaneError

ENV = "LANE_REQUIRE_GPU"
_OFF = {"", "0", "no", "false", "off", "none"}


def requested(profile: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """Who asks for a GPU (for the message), or None when nobody does."""
    backend = env.get(ENV, "").strip()
    if backend.lower() not in _OFF:
        return backend if backend.lower() not in ("1", "yes", "true", "on") else ENV
    train = profile.get("train") or {}
    accel = str(train.get("accelerator", "auto") if isinstance(train, Mapping) else "auto").strip().lower()
    if accel in ("gpu", "cuda"):
        return f"profile {profile.get('name', '?')} (train.accelerator: {accel})"
    return None


def slurm_asks(gres: str | None, gpus: str | None) -> bool:
    """A Slurm request that reserves a GPU: --gpus, or a gres naming gpu (gpu:1, gpu:a100:2)."""
    return bool(gpus and gpus.strip() not in ("0", "")) or any(
        part.strip().split(":")[0] == "gpu" for part in (gres or "").split(","))


def nvidia_smi() -> tuple[int | None, str]:
    """(GPUs `nvidia-smi -L` lists, or None when it is missing or fails; what it said)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "nvidia-smi not found"
    try:
        p = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"nvidia-smi -L failed: {exc}"
    if p.returncode != 0:
        return None, f"nvidia-smi -L exited {p.returncode}: {(p.stderr or p.stdout).strip()[:160]}"
    gpus = [ln for ln in p.stdout.splitlines() if ln.startswith("GPU ")]
    return len(gpus), f"nvidia-smi lists {len(gpus)} GPU(s)"


def torch_cuda() -> tuple[bool | None, str]:
    """(torch.cuda.is_available(), or None when torch cannot be imported; a description)."""
    try:
        import torch
    except Exception as exc:
        return None, f"import torch failed: {type(exc).__name__}: {exc}"
    if torch.cuda.is_available():
        return True, f"torch {torch.__version__}: cuda:0 is {torch.cuda.get_device_name(0)}"
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    return False, f"torch {torch.__version__} ({build}): torch.cuda.is_available() is False"


def require(why: str) -> str:
    """The GPU's description; LaneError(gpu_unavailable) when torch (or, without torch, nvidia-smi)
    finds none."""
    cuda, cuda_says = torch_cuda()
    listed, smi_says = nvidia_smi()
    ok = cuda if cuda is not None else bool(listed)
    if not ok:
        raise LaneError("gpu_unavailable", f"{why} asks for a GPU, but {cuda_says}; {smi_says}")
    return f"{cuda_says}; {smi_says}"
