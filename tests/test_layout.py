"""The layout rules lane/ is kept to: notebooks enter the library only through lane.stages, imports
between lane modules form a DAG (function-level imports included), no private name crosses a module,
functions stay short, and run status has one writer (lane/core/status.py)."""

from __future__ import annotations

import ast
import json
import re
from collections import defaultdict
from pathlib import Path

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


STATUS_WRITER = "lane/core/status.py"
_WRITES = {"atomic_write_json", "atomic_write_text", "write_text", "write_bytes", "dump", "replace", "rename"}


def _names_status_file(fn: ast.AST) -> bool:
    """Whether a function names a run status file: STATUS_COPY, train_status_path, or a literal path."""
    docs = {id(n.body[0].value) for n in ast.walk(fn) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)}
    for n in ast.walk(fn):
        if isinstance(n, ast.Name | ast.Attribute) and (n.id if isinstance(n, ast.Name) else n.attr) in \
                ("STATUS_COPY", "train_status_path"):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs \
                and re.search(r"train_status[.\w{}<>]*\.json", n.value):
            return True
    return False


def _writes_files(fn: ast.AST) -> bool:
    for n in ast.walk(fn):
        if not isinstance(n, ast.Call):
            continue
        name = n.func.id if isinstance(n.func, ast.Name) else n.func.attr if isinstance(n.func, ast.Attribute) else ""
        if name in _WRITES:
            return True
        if name == "open" and any(isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax")
                                  for a in [*n.args[1:2], *(k.value for k in n.keywords if k.arg == "mode")]):
            return True
    return False


def test_run_status_has_one_writer() -> None:
    """Only lane/core/status.py writes train_status (the run's record and the lane-wide mirror):
    everywhere else a function that names the status file only reads it, and writers call
    lane.core.status.update."""
    writers = []
    for f in sorted(LANE.rglob("*.py")):
        where = f.relative_to(REPO).as_posix()
        if where == STATUS_WRITER:
            continue
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and _names_status_file(n) and _writes_files(n):
                writers.append(f"{where}:{n.name}")
    assert not writers, writers
