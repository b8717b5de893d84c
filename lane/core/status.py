"""Status artifacts that other tools poll:

- `artifacts/train_status.<lane>.json`, rewritten atomically (temp file + rename) on every update;
- `artifacts/voice_train_prod.orchestrator.log`, every line the orchestrator and runner print.

Both the orchestrator (early failures: bad backend, missing audio) and the runner (stage by stage)
write through this module, so the file always has the same shape.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from . import protocol
from .fsutil import atomic_write_json, read_json
from .reasons import LaneError
from .stage import now_iso

ARTIFACTS_DIR = "artifacts"
ORCHESTRATOR_LOG = "voice_train_prod.orchestrator.log"
STATUS_SCHEMA_ID = "lane.train_status/1"
STATUS_COPY = "train_status.json"  # the copy the runner keeps in runs/<run_id>/


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


# ------------------------------------------------------------------------------- lane status
def _latest_status(root: Path) -> Path | None:
    files = sorted((root / "artifacts").glob("train_status.*.json"), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


def load_status(root: Path, run_id: str | None = None, lane: str | None = None) -> dict[str, Any]:
    from .ids import check_id, id_path

    if lane:
        check_id("lane", lane)
    if run_id:
        copy = id_path(root, "runs", "run id", run_id) / STATUS_COPY
        if copy.is_file():
            data: dict[str, Any] = read_json(copy)
            return data
        if lane and train_status_path(root, lane).is_file():
            data = read_json(train_status_path(root, lane))
            if data.get("run_id") == run_id:
                return data
        raise LaneError("run_not_found", f"no status for run {run_id!r} (runs/{run_id}/{STATUS_COPY} missing)")
    path = train_status_path(root, lane) if lane else _latest_status(root)
    if path is None or not path.is_file():
        raise LaneError("run_not_found", f"no train_status under {root / 'artifacts'}" + (f" for lane {lane}" if lane else ""))
    data = read_json(path)
    return data


def show_status(root: Path, run_id: str | None = None, lane: str | None = None, as_json: bool = False) -> int:
    """`lane status`: print a run's train_status (JSON or a table). Returns 0."""
    data = load_status(Path(root), run_id, lane)
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(120, Console().width))
    console.print(f"run [bold]{data.get('run_id')}[/] lane {data.get('lane')}: status=[bold]{data.get('status')}[/] "
                  f"reason={data.get('reason')} exit={data.get('exit_code')}")
    if data.get("detail"):
        console.print(f"detail: {data['detail']}", markup=False)
    table = Table()
    for col in ("stage", "status", "reason", "verdict", "duration s", "integrity", "certificate"):
        table.add_column(col, overflow="fold")
    for name in data.get("stage_order") or list((data.get("stages") or {}).keys()):
        s = (data.get("stages") or {}).get(name)
        if s is None:
            table.add_row(name, "not run", "", "", "", "", "")
            continue
        table.add_row(name, str(s.get("status")) + (" (skipped)" if s.get("skipped") else ""), str(s.get("reason", "")),
                      str(s.get("verdict", "")), str(s.get("duration_s", "")), str(s.get("integrity_ok", "")).lower(),
                      str(s.get("certificate_hash") or "")[:16])
    console.print(table)
    if data.get("last_progress"):
        console.print(f"last progress: {data['last_progress']}", markup=False)
    if data.get("report_path"):
        console.print(f"report: {data['report_path']}", markup=False)
    return 0
