"""The stage notebooks as people open them: committed clean, with a `parameters` cell the runner can
inject into, and runnable by hand in Jupyter (nbval --nbval-lax executes verify.ipynb from notebooks/
with its own defaults, in a real kernel)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# what the runner injects into every stage (lane.runner): the parameters cell must name these
INJECTED = {"root", "run_id", "run_dir", "stage", "resume", "lane", "profile", "config_snapshot"}


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def test_the_four_stage_notebooks_exist() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["export", "train", "validate", "verify"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterized(path: Path) -> None:
    cells = _cells(path)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    names = {t.id for node in ast.parse("".join(params[0]["source"])).body if isinstance(node, ast.Assign)
             for t in node.targets if isinstance(t, ast.Name)}
    assert names >= INJECTED, f"parameters cell lacks {sorted(INJECTED - names)}"
    assert code.index(params[0]) == 0, "the parameters cell comes before any other code"
    source = "".join("".join(c["source"]) for c in code)
    for banned in ("from_pretrained(", "nltk.download", "torch.hub", "hf_hub_download"):
        assert banned not in source


def test_verify_notebook_runs_by_hand_with_its_defaults(tmp_path: Path) -> None:
    """As a researcher would: notebooks/verify.ipynb executed in place (root='..'), no parameters."""
    for name in ("configs", "notebooks", "data/demo"):
        shutil.copytree(REPO / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAIN_", "LANE_", "AUDIO_PATH"))}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-cell-timeout=600", "notebooks/verify.ipynb"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = list((tmp_path / "runs").glob("adhoc-*/verify/result.json"))
    assert len(results) == 1
    result = json.loads(results[0].read_text())
    assert result["status"] == "done" and result["reason"] == "ok"
