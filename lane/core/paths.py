"""Where things are: the one config-file lookup, the one git reader, and user paths.

- `config_file(root, "schemas", "x.json")`: a file under `configs/`, taken from the workspace root
  when it has one, else from the installed repository (so a workspace without a configs/ copy still
  runs). Every module asks here, so the precedence is the same everywhere: workspace, then package.
- `git_head(root)`: HEAD sha and dirtiness of the checkout at `root` (falling back to the installed
  repository's checkout for the commit a run records).
- `resolve_input(path, root)`: a user-supplied input path (absolute, or relative to the workspace
  root, else to the current directory).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# lane/core/paths.py -> the repository (or site-packages) directory holding lane/, configs/, notebooks/
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_CONFIGS = PACKAGE_ROOT / "configs"


def config_file(root: str | os.PathLike[str], *parts: str) -> Path:
    """configs/<parts> in the workspace `root` when it exists there, else the packaged copy."""
    local = Path(root, "configs", *parts)
    return local if local.exists() else PACKAGE_CONFIGS.joinpath(*parts)


def notebook_file(root: str | os.PathLike[str], stage: str) -> Path | None:
    """notebooks/<stage>.ipynb in the workspace, else the packaged one; None when neither exists."""
    for base in (Path(root) / "notebooks", PACKAGE_ROOT / "notebooks"):
        path = base / f"{stage}.ipynb"
        if path.is_file():
            return path
    return None


@dataclass(frozen=True)
class GitHead:
    sha: str | None  # None: no git, or not a checkout
    dirty: bool | None  # None: unknown
    problem: str = ""  # why sha is None


def git_head(root: str | os.PathLike[str]) -> GitHead:
    """HEAD sha and whether tracked files have uncommitted changes, for the checkout at `root`."""
    git = shutil.which("git")
    if not git:
        return GitHead(None, None, "git is not installed")
    try:
        head = subprocess.run([git, "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return GitHead(None, None, f"git rev-parse failed ({exc})")
    if head.returncode != 0 or not head.stdout.strip():
        last = (head.stderr.strip().splitlines() or ["no HEAD"])[-1]
        return GitHead(None, None, f"{root} is not a git checkout ({last})")
    try:
        st = subprocess.run([git, "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=60, check=False)
        dirty: bool | None = bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return GitHead(head.stdout.strip(), dirty)


def commit_of(root: str | os.PathLike[str]) -> GitHead:
    """The commit a run records: the workspace's checkout, else the installed repository's."""
    head = git_head(root)
    if head.sha is None and Path(root).resolve() != PACKAGE_ROOT:
        other = git_head(PACKAGE_ROOT)
        if other.sha is not None:
            return other
    return head


def resolve_input(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> Path:
    """A user path: absolute as is; relative to the workspace root, else to the current directory."""
    p = Path(os.path.expanduser(str(path)))
    if p.is_absolute():
        return p
    under_root = Path(root) / p
    if under_root.exists() or not p.exists():
        return under_root
    return p.resolve()
