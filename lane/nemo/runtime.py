"""NeMo at run time: the lazy import that turns a missing NeMo into `nemo_runtime_unavailable`, and
quiet logging. Cheap to import: nothing heavy happens until a function is called."""

from __future__ import annotations

import os
from typing import Any

from ..core.reasons import LaneError


def import_nemo() -> Any:
    """Import NeMo's TTS models or fail with nemo_runtime_unavailable (the seed's behaviour)."""
    try:
        import nemo.collections.tts.models as tts_models
    except Exception as exc:  # ImportError, or a broken install raising anything else
        raise LaneError("nemo_runtime_unavailable",
                        f"cannot import nemo.collections.tts ({type(exc).__name__}: {exc})") from exc
    return tts_models


def quiet_nemo() -> None:
    try:
        from nemo.utils import logging as nemo_logging

        nemo_logging.setLevel(os.environ.get("LANE_NEMO_LOG_LEVEL", "ERROR"))
    except Exception:  # logging setup is cosmetic
        pass


def memory_stats() -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu_mem_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    except Exception:
        pass
    try:
        import resource

        out["rss_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except Exception:
        pass
    return out
