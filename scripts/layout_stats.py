#!/usr/bin/env python3
"""Layout numbers of a checkout's lane/ package, from its source alone (ast, nothing imported): modules per
package, the longest functions, import cycles (module-level imports, and all imports), and private
names imported across modules. The numbers of issue 9's note:

    python scripts/layout_stats.py                    # this checkout
    git archive 6c3e512 lane | tar -x -C /tmp/before && python scripts/layout_stats.py /tmp/before
"""

from __future__ import annotations

import argparse
import ast
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


if __name__ == "__main__":
    main()
