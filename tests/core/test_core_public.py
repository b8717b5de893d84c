"""The package's public surface is declared, pinned and light (httpx-style: a small `__all__`, the
rest behind it)."""

from __future__ import annotations

import subprocess
import sys

import lane

PUBLIC = ["REASONS", "LaneError", "Reason", "RunOutcome", "Settings", "StageRun", "__version__", "execute_run",
          "load_profile", "protocol", "resolve_settings"]


def test_all_is_pinned() -> None:
    assert sorted(lane.__all__) == sorted(PUBLIC)
    for name in lane.__all__:
        assert hasattr(lane, name), name


def test_public_names_are_documented_in_the_package_docstring() -> None:
    doc = lane.__doc__ or ""
    for name in PUBLIC:
        if name != "__version__":
            assert f"`{name}`" in doc, name


def test_importing_lane_loads_no_heavy_library() -> None:
    code = ("import sys, lane; heavy = [m for m in ('torch', 'nemo', 'papermill', 'numpy', 'lightning') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
