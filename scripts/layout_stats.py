#!/usr/bin/env python3
"""Layout numbers of a checkout's lane/ package, from its source alone (ast, nothing imported): modules per
package, the longest functions, import cycles (module-level imports, and all imports), private
names imported across modules, the layering rules (lane.core imports no other lane package, lane.nemo
imports nothing of lane.bundle), and three concepts: who writes run status (train_status), how many
places list the settings, and public signatures typed `dict[str, Any]`. The numbers of issue 9's
and issue 21's notes:

    python scripts/layout_stats.py                    # this checkout
    git archive 6c3e512 lane | tar -x -C /tmp/before && python scripts/layout_stats.py /tmp/before
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from collections import defaultdict
from pathlib import Path

Graph = dict[str, set[str]]


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under root/lane."""
    out: dict[str, Path] = {}
    for f in sorted((root / "lane").rglob("*.py")):
        parts = list(f.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def resolve(current: str, is_pkg: bool, level: int, module: str | None) -> str:
    """The absolute name of a relative `from ... import`."""
    base = current.split(".") if is_pkg else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


class Scan:
    def __init__(self, mods: dict[str, Path]) -> None:
        self.mods = mods
        self.funcs: list[tuple[int, str]] = []
        self.graph: Graph = defaultdict(set)  # every import, function-level ones included
        self.top: Graph = defaultdict(set)  # imports at module level only
        self.private: list[str] = []

    def edge(self, src: str, dst: str, top_level: bool) -> None:
        if dst in self.mods and dst != src:
            self.graph[src].add(dst)
            if top_level:
                self.top[src].add(dst)

    def module(self, name: str, path: Path, root: Path) -> None:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                self.funcs.append((length, f"{path.relative_to(root)}:{node.lineno} {node.name}"))
            elif isinstance(node, ast.ImportFrom):
                self.import_from(name, is_pkg, node)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.edge(name, alias.name, node.col_offset == 0)

    def import_from(self, name: str, is_pkg: bool, node: ast.ImportFrom) -> None:
        target = resolve(name, is_pkg, node.level, node.module) if node.level else (node.module or "")
        if not target.startswith("lane"):
            return
        for alias in node.names:
            full = f"{target}.{alias.name}"
            if alias.name.startswith("_") and full not in self.mods and target != name:
                self.private.append(f"{name} imports {full}")
            self.edge(name, full if full in self.mods else target, node.col_offset == 0)


def layer_breaks(graph: Graph, src: str, dst: str) -> list[str]:
    """Imports (function-level included) from package `src` into package `dst` (`lane`: any lane
    module outside `src`)."""
    def inside(mod: str, pkg: str) -> bool:
        return mod == pkg or mod.startswith(pkg + ".")

    return sorted(f"{a} -> {b}" for a, targets in graph.items() if inside(a, src) for b in targets
                  if inside(b, dst) and not inside(b, src))


def cycles(graph: Graph, nodes: list[str]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return found


# ------------------------------------------------------------------------------------- concepts
STATUS_MODULE = "lane/core/status.py"
_WRITES = {"atomic_write_json", "atomic_write_text", "write_text", "write_bytes", "dump", "replace", "rename"}


def _docstrings(tree: ast.AST) -> set[int]:
    return {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and n.body and isinstance(n.body[0], ast.Expr)}


def names_status_file(fn: ast.AST, docs: set[int]) -> bool:
    """Whether code names a run status file: STATUS_COPY, train_status_path, or a literal file name."""
    for n in ast.walk(fn):
        name = n.id if isinstance(n, ast.Name) else n.attr if isinstance(n, ast.Attribute) else None
        if name in ("STATUS_COPY", "train_status_path"):
            return True
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs \
                and re.search(r"train_status[.\w{}<>]*\.json", n.value):
            return True
    return False


def writes_files(fn: ast.AST) -> bool:
    for n in ast.walk(fn):
        if not isinstance(n, ast.Call):
            continue
        name = n.func.id if isinstance(n.func, ast.Name) else n.func.attr if isinstance(n.func, ast.Attribute) else ""
        if name in _WRITES:
            return True
        modes = [*n.args[1:2], *(k.value for k in n.keywords if k.arg == "mode")]
        if name == "open" and any(isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set("wax")
                                  for a in modes):
            return True
    return False


def status_writers(root: Path) -> list[str]:
    """Functions outside lane/core/status.py that name a run status file and write files: each one
    writes train_status itself instead of through lane.core.status."""
    out = []
    for f in sorted((root / "lane").rglob("*.py")):
        where = f.relative_to(root).as_posix()
        if where == STATUS_MODULE:
            continue
        tree = ast.parse(f.read_text(encoding="utf-8"))
        docs = _docstrings(tree)
        for n in ast.walk(tree):
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and names_status_file(n, docs) and writes_files(n):
                out.append(f"{where}:{n.name}")
    return out


def dict_typed_public(root: Path) -> list[str]:
    """Public functions and methods of lane/ with `dict[str, Any]` in their signature."""
    out = []
    for f in sorted((root / "lane").rglob("*.py")):
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if not isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) or n.name.startswith("_"):
                continue
            a = n.args
            notes = [x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                     if x is not None and x.annotation is not None] + ([n.returns] if n.returns else [])
            if any(re.search(r"\b[Dd]ict\[str, Any\]", ast.unparse(t)) for t in notes):
                out.append(f"{f.relative_to(root).as_posix()}:{n.lineno} {n.name}")
    return out


def setting_names(root: Path) -> set[str]:
    """The fields of lane.core.config.Settings."""
    tree = ast.parse((root / "lane" / "core" / "config.py").read_text(encoding="utf-8"))
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == "Settings")
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)} - {"sources"}


def _listed(node: ast.AST, names: set[str]) -> set[str]:
    """The setting names a class body, dict literal, signature or function lists (fields, keys or
    values, parameters, `--flag` strings)."""
    if isinstance(node, ast.ClassDef):
        return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)} & names
    if isinstance(node, ast.Dict):
        words = {x.value for x in (*node.keys, *node.values) if isinstance(x, ast.Constant) and isinstance(x.value, str)}
        return {w.lstrip("-").replace("-", "_") for w in words} & names
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        params = {x.arg for x in (*node.args.args, *node.args.kwonlyargs)} & names
        flags = {c.value[2:].replace("-", "_") for c in ast.walk(node) if isinstance(c, ast.Constant)
                 and isinstance(c.value, str) and c.value.startswith("--")} & names
        return params | flags
    return set()


def settings_declared(root: Path, at_least: int = 5) -> tuple[list[str], list[str]]:
    """(places in lane/ that list at least `at_least` settings by name: each a declaration to keep in
    step; copies outside Python that do: notebook parameters cells, JSON schemas)."""
    names = setting_names(root)
    code = []
    for f in sorted((root / "lane").rglob("*.py")):
        for n in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if len(_listed(n, names)) >= at_least:
                code.append(f"{f.relative_to(root).as_posix()}:{getattr(n, 'lineno', 0)} {getattr(n, 'name', type(n).__name__)}")
    copies = []
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
        src = "".join(next((c["source"] for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), []))
        assigned = {t.id for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Assign) for t in n.targets
                    if isinstance(t, ast.Name)}
        if len(assigned & names) >= at_least:
            copies.append(f"{nb.relative_to(root).as_posix()} parameters cell")
    for schema in sorted((root / "configs" / "schemas").glob("*.json")):
        props = (json.loads(schema.read_text(encoding="utf-8")).get("properties") or {}).get("settings") or {}
        if len(set(props.get("properties") or {}) & names) >= at_least:
            copies.append(f"{schema.relative_to(root).as_posix()} settings")
    return code, copies


def concepts(root: Path) -> None:
    writers = status_writers(root)
    print(f"run status writers: {1 + len({w.split(':')[0] for w in writers})} module(s) "
          f"({STATUS_MODULE}{''.join(', ' + w for w in writers)})")
    code, copies = settings_declared(root)
    print(f"settings declared: {len(code)} place(s) in lane/, {len(copies)} copies outside Python")
    for line in code + copies:
        print("  ", line)
    typed = dict_typed_public(root)
    print(f"public signatures with dict[str, Any]: {len(typed)}")
    for line in typed:
        print("  ", line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1],
                    help="a checkout (the folder holding lane/)")
    root = ap.parse_args().root.resolve()
    mods = modules(root)
    scan = Scan(mods)
    for name, path in mods.items():
        scan.module(name, path, root)
    per: dict[str, int] = defaultdict(int)
    for name, path in mods.items():
        parts = name.split(".")
        nested = len(parts) > 2 or (len(parts) == 2 and path.name == "__init__.py")
        per[".".join(parts[:2]) if nested else "lane (top)"] += 1
    print("modules:", len(mods))
    for pkg in sorted(per):
        print(f"  {pkg}: {per[pkg]}")
    print("longest functions:")
    for size, where in sorted(scan.funcs, reverse=True)[:10]:
        print(f"  {size:4d} {where}")
    print("functions over 60 lines:", sum(1 for size, _ in scan.funcs if size > 60))
    print("import cycles (module level):", cycles(scan.top, list(mods)))
    print("import cycles (any, incl. function-level):", cycles(scan.graph, list(mods)))
    print("private names imported across modules:", len(scan.private))
    for line in scan.private:
        print("  ", line)
    for src, dst in (("lane.core", "lane"), ("lane.nemo", "lane.bundle")):
        out = layer_breaks(scan.graph, src, dst)
        print(f"imports from {src} into {'other lane packages' if dst == 'lane' else dst}: {len(out)}")
        for line in out:
            print("  ", line)
    concepts(root)


if __name__ == "__main__":
    main()
