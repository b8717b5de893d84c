"""The layout rules lane/ is kept to: notebooks enter the library only through lane.stages, imports
between lane modules form a DAG (function-level imports included), no private name crosses a module,
functions stay short, and run status has one writer (lane/core/status.py)."""

from __future__ import annotations

import ast
import importlib.util
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LANE = REPO / "lane"
MAX_FUNCTION_LINES = 60
LONG_FUNCTIONS_ALLOWED: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    out = {}
    for f in LANE.rglob("*.py"):
        parts = list(f.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def _imports(mod: str, path: Path, mods: dict[str, Path]) -> list[tuple[str, str]]:
    """(imported lane module, name) for every import in the module, at any depth."""
    base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = []
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.ImportFrom):
            target = ".".join(base[: len(base) - n.level + 1] + ([n.module] if n.module else [])) if n.level \
                else (n.module or "")
            for a in n.names:
                full = f"{target}.{a.name}"
                out.append((full, "") if full in mods else (target, a.name))
        elif isinstance(n, ast.Import):
            out += [(a.name, "") for a in n.names]
    return [(m, name) for m, name in out if m in mods and m != mod]


def test_notebooks_import_only_lane_stages() -> None:
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        for cell in cells:
            if cell["cell_type"] != "code":
                continue
            for n in ast.walk(ast.parse("".join(cell["source"]))):
                mods = [a.name for a in n.names] if isinstance(n, ast.Import) else \
                    [n.module or ""] if isinstance(n, ast.ImportFrom) else []
                for m in mods:
                    if m == "lane" or m.startswith("lane."):
                        assert m == "lane.stages" or m.startswith("lane.stages."), f"{nb.name} imports {m}"


def test_lane_imports_form_a_dag_and_keep_private_names_private() -> None:
    mods = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    private = []
    for mod, path in mods.items():
        for target, name in _imports(mod, path, mods):
            graph[mod].add(target)
            if name.startswith("_") and not name.startswith("__"):
                private.append(f"{mod} imports {target}.{name}")
    assert not private, private
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            assert state.get(t) != 1, "import cycle: " + " -> ".join([*trail, m, t])
            if t not in state:
                visit(t, [*trail, m])
        state[m] = 2

    for m in sorted(mods):
        if m not in state:
            visit(m, [])


def test_functions_are_short() -> None:
    long = []
    for f in sorted(LANE.rglob("*.py")):
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef):
                size = (n.end_lineno or n.lineno) - n.lineno + 1
                where = f"{f.relative_to(REPO).as_posix()}:{n.name}"
                if size > MAX_FUNCTION_LINES and where not in LONG_FUNCTIONS_ALLOWED:
                    long.append(f"{where} ({size} lines)")
    assert not long, long


def _layout_stats() -> Any:
    """scripts/layout_stats.py, whose status-writer rule this test pins."""
    spec = importlib.util.spec_from_file_location("layout_stats", REPO / "scripts" / "layout_stats.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_status_has_one_writer(tmp_path: Path) -> None:
    """Only lane/core/status.py writes train_status (the run's record and the lane-wide mirror):
    everywhere else a function that names the status file only reads it; writers call
    lane.core.status.update."""
    stats = _layout_stats()
    assert stats.status_writers(REPO) == []
    # the rule catches a direct writer (as runner/loop.py, jobs.py and backends/slurm_job.py were)
    (tmp_path / "lane").mkdir()
    (tmp_path / "lane" / "x.py").write_text(
        "def reads(run_dir):\n    return read_json(run_dir / STATUS_COPY)\n\n"
        "def writes(run_dir, st):\n    atomic_write_json(run_dir / 'train_status.json', st)\n")
    assert stats.status_writers(tmp_path) == ["lane/x.py:writes"]


def _package_imports(src: str, dst: str) -> list[str]:
    """Every import (function-level included) from a module of package `src` into package `dst`."""
    mods = _modules()
    return sorted(f"{mod} imports {target}" for mod, path in mods.items() if mod == src or mod.startswith(src + ".")
                  for target, _ in _imports(mod, path, mods) if target == dst or target.startswith(dst + "."))


def test_core_imports_no_data_and_nemo_imports_no_bundle() -> None:
    """lane.core sits under the data stage (the audio input is read in lane.core.inputs), and NeMo
    synthesis takes a NemoSource instead of reading a bundle: Griffin-Lim lives in lane.core.griffin_lim,
    a bundle's manifest in lane.bundle.manifest."""
    assert _package_imports("lane.core", "lane.data") == []
    assert _package_imports("lane.nemo", "lane.bundle") == []
    mods = _modules()
    outside = sorted({t for mod, path in mods.items() if mod.startswith("lane.core.")
                      for t, _ in _imports(mod, path, mods) if not t.startswith("lane.core")})
    assert outside == [], f"lane.core imports {outside}: the core is the bottom layer"
    nemo_reads = [f"{f.relative_to(REPO).as_posix()}" for f in sorted((LANE / "nemo").rglob("*.py"))
                  if '"manifest.json"' in f.read_text(encoding="utf-8")]
    assert nemo_reads == []
