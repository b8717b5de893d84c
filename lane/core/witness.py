"""The rollback witness: the newest ledger head this machine has seen for a workspace, kept outside the
workspace (lane.core.anchors.witness_dir), the way TUF defends against rollback and freeze attacks.

The ledger's signed head carries a version (its entry count: the ledger only grows) and a timestamp.
Every `lane` command that appends records the new head here, keyed by the workspace's real path:

    <witness dir>/<sha256(workspace path)[:32]>.json   {"workspace", "version", "last_hash", "timestamp"}

`check` then refuses a ledger whose head is older than the witness, or whose entry at the witnessed
version is not the one witnessed (an earlier ledger restored, possibly with new entries on top):
`ledger_rolled_back`. A signed head cannot be forged, but an earlier signed head can be restored
together with the matching prefix of the ledger; only something the workspace cannot write remembers
that a newer one existed. A workspace never seen on this machine has no witness yet: the first look
is trusted (and recorded by `lane ledger verify`), as in TUF.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fsutil import atomic_write_json, read_json, sha256_bytes
from .reasons import LaneError


@dataclass(frozen=True)
class Seen:
    version: int
    last_hash: str
    timestamp: str
    path: Path


def witness_path(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Path:
    from .anchors import witness_dir

    real = str(Path(root).resolve())
    return witness_dir(root, env) / f"{hashlib.sha256(real.encode('utf-8')).hexdigest()[:32]}.json"


def read(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Seen | None:
    """What this machine last witnessed for the workspace, or None."""
    path = witness_path(root, env)
    try:
        data = read_json(path)
        return Seen(int(data["version"]), str(data["last_hash"]), str(data.get("timestamp", "")), path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LaneError("witness_unavailable", f"{path}: {type(exc).__name__}: {exc}") from None


def record(root: str | os.PathLike[str], head: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Path:
    """Remember `head` (version, last_hash, timestamp) unless a newer one is already witnessed."""
    from filelock import FileLock

    path = witness_path(root, env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with FileLock(str(path) + ".lock", timeout=60):
            seen = read(root, env)
            if seen is None or int(head["version"]) > seen.version:
                atomic_write_json(path, {"workspace": str(Path(root).resolve()), "version": int(head["version"]),
                                         "last_hash": str(head["last_hash"]), "timestamp": str(head.get("timestamp"))})
    except OSError as exc:
        raise LaneError("witness_unavailable", f"{path}: {type(exc).__name__}: {exc}") from None
    return path


@dataclass(frozen=True)
class Verdict:
    rolled_back: list[str]  # the head is older than the one witnessed
    rewritten: list[str]  # the witnessed entry is not in the ledger any more (a rewrite, or a restore appended to)
    summary: str  # what was compared, for the report


def check(root: str | os.PathLike[str], lines: list[bytes], head: Mapping[str, Any] | None,
          env: Mapping[str, str] | None = None) -> Verdict:
    """The ledger (its lines and stored head) against what this machine witnessed for the workspace."""
    try:
        seen = read(root, env)
    except LaneError as err:
        return Verdict([], [f"rollback witness unreadable: {err.detail}"], "witness unreadable")
    if seen is None:
        return Verdict([], [], "no witness for this workspace on this machine yet (first look: trusted, then remembered)")
    version = int((head or {}).get("version") or 0)
    if version < seen.version or len(lines) < seen.version:
        return Verdict([f"the head is version {version} ({len(lines)} entries), but this machine witnessed version "
                        f"{seen.version} at {seen.timestamp} ({seen.path})"], [],
                       f"head version {version} is older than the witnessed version {seen.version}")
    if seen.version and sha256_bytes(lines[seen.version - 1]) != seen.last_hash:
        return Verdict([], [f"entry {seen.version - 1} is not the one this machine witnessed at {seen.timestamp}: the "
                            "ledger was rewritten"], f"entry {seen.version - 1} differs from the witnessed one")
    return Verdict([], [], f"head version {version}; witnessed version {seen.version} ({seen.timestamp}): "
                           "not rolled back")
