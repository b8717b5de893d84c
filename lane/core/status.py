"""Status artifacts that other tools poll:

- `artifacts/train_status.<lane>.json`, rewritten atomically (temp file + rename) on every update;
- `artifacts/voice_train_prod.orchestrator.log`, every line the orchestrator and runner print.

Both the orchestrator (early failures: bad backend, missing audio) and the runner (stage by stage)
write through this module, so the file always has the same shape.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from . import protocol
from .fsutil import atomic_write_json, read_json
from .stage import now_iso

ARTIFACTS_DIR = "artifacts"
ORCHESTRATOR_LOG = "voice_train_prod.orchestrator.log"
STATUS_SCHEMA_ID = "lane.train_status/1"


def train_status_path(root: str | os.PathLike[str], lane: str) -> Path:
    return Path(root) / ARTIFACTS_DIR / f"train_status.{lane}.json"


def orchestrator_log_path(root: str | os.PathLike[str]) -> Path:
    return Path(root) / ARTIFACTS_DIR / ORCHESTRATOR_LOG


def read_train_status(root: str | os.PathLike[str], lane: str) -> dict[str, Any] | None:
    path = train_status_path(root, lane)
    return read_json(path) if path.exists() else None


def write_train_status(root: str | os.PathLike[str], lane: str, **fields: Any) -> dict[str, Any]:
    """Merge `fields` into the lane's train_status and rewrite it atomically. Returns the new content.

    Keys the file always has: schema, run_id, lane, status (running|completed|blocked|failed),
    reason, updated_at, stages, timings, bundle_path, last_progress, last_stats.
    """
    path = train_status_path(root, lane)
    current: dict[str, Any] = {}
    if path.exists():
        try:
            current = read_json(path)
        except ValueError:  # a corrupt file is replaced, never trusted
            current = {}
    if fields.get("run_id") and current.get("run_id") not in (None, fields["run_id"]):
        current = {}  # a new run starts a fresh status
    base: dict[str, Any] = {
        "schema": STATUS_SCHEMA_ID, "run_id": None, "lane": lane, "status": "running", "reason": None,
        "detail": "", "backend": None, "profile": None, "started_at": None, "updated_at": None,
        "stages": {}, "timings": {}, "bundle_path": None, "report_path": None,
        "last_progress": None, "last_stats": None, "exit_code": None,
    }
    base.update(current)
    base.update(fields)
    base["lane"] = lane
    base["updated_at"] = now_iso()
    atomic_write_json(path, base)
    return base


class OrchestratorLog:
    """Appends every line to artifacts/voice_train_prod.orchestrator.log (thread-safe, line-buffered).

    Used as a context manager it also receives every protocol line the process emits."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = orchestrator_log_path(root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def write(self, line: str) -> None:
        with self._lock:
            for part in line.rstrip("\n").split("\n"):
                self._fh.write(part + "\n")

    def say(self, line: str) -> None:
        """Print to stdout and log (a plain line, not a protocol line)."""
        print(line, flush=True)
        self.write(line)

    def close(self) -> None:
        protocol.remove_sink(self.write)
        with self._lock:
            self._fh.close()

    def __enter__(self) -> OrchestratorLog:
        protocol.add_sink(self.write)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
