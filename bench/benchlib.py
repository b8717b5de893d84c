"""What every bench result records about the machine it ran on (imported by the bench scripts)."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path
from typing import Any


def machine(**extra: Any) -> dict[str, Any]:
    """Platform, Python, CPU model, core count, load average at start (and torch, GPU when importable)."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    out: dict[str, Any] = {
        "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
        "cpu_count": os.cpu_count(), "loadavg_at_start": [round(x, 2) for x in load],
        "note": ("quiet machine at start (1-min load below 1)" if load[0] < 1.0
                 else "shared CPU at start (1-min load >= 1): absolute numbers are noisy"),
    }
    with contextlib.suppress(ImportError):
        import torch

        out["torch"] = torch.__version__
        out["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
    out.update(extra)
    return out
