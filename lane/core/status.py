"""Run status: the one record other tools poll, and the only module that writes it.

- `runs/<run_id>/train_status.json`: the run's own record (once its run directory exists);
- `artifacts/train_status.<lane>.json`: the lane-wide file the seed's pollers read, a mirror of the
  record of the lane's current run (`mirrors` says which run that is);
- `artifacts/voice_train_prod.orchestrator.log`: every line the orchestrator and runner print.

Every writer (the orchestrator's early failures, the runner stage by stage, the job queue, the Slurm
submitter and settle step) calls `update`, which merges the fields into the run's record under a
lock and rewrites both files atomically (temp file + rename), so they always have the same shape.

A running record names its owner (`this_owner()`: host, boot time, pid and process start time, or
the Slurm job) and carries a heartbeat. `observed` is the record as a poller should see it: a
record that says running while its owner is gone (`kill -9`, the OOM killer, a reboot) reads as
`failed` with reason `lost`, and `lane run --resume RUN_ID` continues it. On the owner's own machine
the process is looked up directly (at once); elsewhere (a container, another node) the heartbeat
must be older than LOST_AFTER_BEATS intervals; a Slurm job's scheduler answers for it instead.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, TypedDict, Unpack

from . import protocol
from .fsutil import atomic_write_json, read_json
from .reasons import LaneError, exit_code
from .stage import now_iso

ARTIFACTS_DIR = "artifacts"
ORCHESTRATOR_LOG = "voice_train_prod.orchestrator.log"
STATUS_SCHEMA_ID = "lane.train_status/1"
STATUS_COPY = "train_status.json"  # the run's own record, in runs/<run_id>/

RunState = Literal["queued", "running", "completed", "blocked", "failed"]
TERMINAL: frozenset[str] = frozenset(protocol.STATUSES)  # completed, blocked, failed: the [tts-prod] statuses
StageState = Literal["done", "partial-blocked", "blocked", "failed", "running"]
OwnerState = Literal["alive", "gone", "unknown"]

HEARTBEAT_S = 10.0  # how often a running runner rewrites heartbeat_at
LOST_AFTER_BEATS = 6  # an owner on another machine is gone when its heartbeat is this many intervals old
_START_SLACK_S = 1.0  # process start times compare within this (the kernel's boot time is rounded)


class StageRecord(TypedDict, total=False):
    """One stage as train_status, the ledger summary and the report see it."""

    name: str
    status: StageState
    reason: str
    detail: str
    verdict: str  # PASS | FAIL
    first_fail: str | None
    certificate_hash: str
    integrity_ok: bool
    duration_s: float
    started_at: str
    finished_at: str
    skipped: bool
    skip_note: str
    original_duration_s: float | None
    notebook: str
    html: str | None
    source_notebook: str
    commit_sha: str
    cpu_s: float
    gpu_s: float


class Owner(TypedDict, total=False):
    """Who keeps a running record up to date: a process on a machine, or a Slurm job."""

    host: str
    boot: float  # the machine's boot time (seconds since the epoch): tells machines (and reboots) apart
    pid: int
    started: float  # the process's start time: tells a reused pid apart
    slurm_job_id: str | None


class RunStatus(TypedDict, total=False):
    """artifacts/train_status.<lane>.json and runs/<run_id>/train_status.json (DESIGN.md, "Status")."""

    schema: str
    run_id: str | None
    lane: str
    status: RunState
    reason: str | None
    detail: str
    backend: str | None
    profile: str | None
    started_at: str | None
    resumed_at: str | None  # the latest resume (settings.json keeps the first start)
    updated_at: str | None
    finished_at: str | None
    exit_code: int | None
    interrupted: bool
    stages: dict[str, StageRecord]
    stage_order: list[str]
    timings: dict[str, float]
    run_dir: str
    bundle_path: str | None
    report_path: str | None
    last_progress: dict[str, Any] | None
    last_stats: dict[str, Any] | None
    line_counts: dict[str, int]
    verdict: str
    verdict_reasons: list[str]
    provenance: str | None
    promoted: str | None
    owner: Owner | None
    heartbeat_at: str | None
    heartbeat_s: float
    lost: bool  # set by `observed` only, never written
    queued_at: str
    engine: str
    job_id: str | None
    job_state: str
    job_script: str
    job_script_sha256: str
    job_output: str
    job_exit_code: str
    job_restarts: int
    submitted_at: str


def train_status_path(root: str | os.PathLike[str], lane: str) -> Path:
    return Path(root) / ARTIFACTS_DIR / f"train_status.{lane}.json"


def orchestrator_log_path(root: str | os.PathLike[str]) -> Path:
    return Path(root) / ARTIFACTS_DIR / ORCHESTRATOR_LOG


def _run_copy(root: Path, run_id: str | None) -> Path | None:
    """runs/<run_id>/train_status.json, None when the run id is unsafe or names no run directory."""
    from .ids import id_path

    try:
        run_dir = id_path(root, "runs", "run id", run_id)
    except LaneError:
        return None
    return run_dir / STATUS_COPY if run_dir.is_dir() else None


def _load(path: Path | None) -> RunStatus | None:
    """A status file, None when missing or corrupt (a corrupt file is replaced, never trusted)."""
    if path is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        data = read_json(path)
        if isinstance(data, dict):
            out: RunStatus = data  # type: ignore[assignment]
            return out
    return None


# ------------------------------------------------------------------------------------------ read
def read_lane(root: str | os.PathLike[str], lane: str) -> RunStatus | None:
    """The lane-wide file as written (None when absent)."""
    return _load(train_status_path(root, lane))


def read(root: str | os.PathLike[str], run_id: str, lane: str | None = None) -> RunStatus | None:
    """A run's record as written: its own copy, else the lane's file when that is this run's (a run
    that failed before its run directory existed). None when there is neither."""
    rootp = Path(root)
    own = _load(_run_copy(rootp, run_id))
    if own is not None:
        return own
    lane_st = read_lane(rootp, lane) if lane else None
    return lane_st if lane_st is not None and lane_st.get("run_id") == run_id else None


def final(st: RunStatus | None, run_id: str) -> RunStatus | None:
    """The record when it is this run's and final (exit code written), else None."""
    if not st or st.get("run_id") != run_id or st.get("exit_code") is None:
        return None
    return st if st.get("status") in TERMINAL else None


# ------------------------------------------------------------------------------------------ liveness
def this_owner() -> Owner:
    """The calling process as the owner of a running record."""
    import psutil

    owner: Owner = {"host": socket.gethostname(), "boot": psutil.boot_time(), "pid": os.getpid(),
                    "started": psutil.Process().create_time()}
    if os.environ.get("SLURM_JOB_ID"):
        owner["slurm_job_id"] = os.environ["SLURM_JOB_ID"]
    return owner


def _process_matches(pid: int, started: float) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - started) <= _START_SLACK_S
    except (psutil.Error, OSError):
        return False


def _age_s(stamp: str | None, now: _dt.datetime) -> float | None:
    try:
        then = _dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (now - then).total_seconds()


def owner_state(st: RunStatus, now: _dt.datetime | None = None) -> OwnerState:
    """Whether the owner of a running record is still there: its process on this machine, looked up
    now; elsewhere, its heartbeat. `unknown` when it cannot be told (no owner yet, a Slurm job:
    the scheduler answers for it)."""
    owner = st.get("owner") or {}
    if not owner or owner.get("slurm_job_id") or "pid" not in owner:
        return "unknown"
    import psutil

    if owner.get("host") == socket.gethostname() and abs(float(owner.get("boot") or 0) - psutil.boot_time()) <= 2:
        return "alive" if _process_matches(int(owner["pid"]), float(owner.get("started") or 0)) else "gone"
    age = _age_s(st.get("heartbeat_at"), now or _dt.datetime.now(_dt.UTC))
    if age is None:
        return "unknown"
    return "gone" if age > LOST_AFTER_BEATS * float(st.get("heartbeat_s") or HEARTBEAT_S) else "alive"


def observed(st: RunStatus, now: _dt.datetime | None = None) -> RunStatus:
    """The record as a poller should see it: running with its owner gone reads failed / lost."""
    if st.get("status") != "running" or owner_state(st, now) != "gone":
        return st
    owner = st.get("owner") or {}
    detail = (f"the run's process (pid {owner.get('pid')} on {owner.get('host')}) is gone without a final status "
              f"(last heartbeat {st.get('heartbeat_at')}); `lane run --resume {st.get('run_id')}` continues it")
    return {**st, "status": "failed", "reason": "lost", "detail": detail, "exit_code": exit_code("lost"), "lost": True}


def _holds(st: RunStatus) -> bool:
    """Whether a run holds the lane-wide file: it is running and its owner is not known to be gone."""
    return st.get("status") == "running" and owner_state(st) != "gone"


def mirrors(record: RunStatus, lane_st: RunStatus | None, has_copy: bool) -> bool:
    """The mirroring rule: a run's record goes into the lane-wide file unless it is only queued, or
    another run holds that file now (it keeps it until it ends or is lost). A run without a run
    directory has no other record, so it is always written there."""
    if not has_copy:
        return True
    if record.get("status") == "queued":
        return False
    return lane_st is None or lane_st.get("run_id") in (None, record.get("run_id")) or not _holds(lane_st)


# ------------------------------------------------------------------------------------------ write
_THREAD_LOCK = threading.Lock()  # the runner writes from its main, stream and heartbeat threads


@contextlib.contextmanager
def _locked(root: Path, lane: str) -> Iterator[None]:
    from filelock import FileLock

    path = train_status_path(root, lane)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK, FileLock(str(path.with_name(f".{path.name}.lock")), timeout=120):
        yield


def _fresh(run_id: str, lane: str) -> RunStatus:
    return {"schema": STATUS_SCHEMA_ID, "run_id": run_id, "lane": lane, "status": "running", "reason": None,
            "detail": "", "backend": None, "profile": None, "started_at": None, "updated_at": None,
            "stages": {}, "timings": {}, "bundle_path": None, "report_path": None,
            "last_progress": None, "last_stats": None, "exit_code": None}


def update(root: str | os.PathLike[str], lane: str, run_id: str, /, **fields: Unpack[RunStatus]) -> RunStatus:
    """Merge `fields` into the run's record (a new run starts a fresh one) and write it atomically:
    its copy in runs/<run_id>/ when that directory exists, and the lane-wide file by `mirrors`.
    Returns the record."""
    rootp = Path(root)
    with _locked(rootp, lane):
        copy = _run_copy(rootp, run_id)
        lane_st = read_lane(rootp, lane)
        current = _load(copy) or (lane_st if lane_st is not None and lane_st.get("run_id") == run_id else None)
        record = _fresh(run_id, lane)
        if current:
            record.update(current)
        record.update(fields)
        record["run_id"], record["lane"], record["updated_at"] = run_id, lane, now_iso()
        record.pop("lost", None)
        if copy is not None:
            atomic_write_json(copy, record)
        if mirrors(record, lane_st, copy is not None):
            atomic_write_json(train_status_path(rootp, lane), record)
    return record


@contextlib.contextmanager
def heartbeat(root: str | os.PathLike[str], lane: str, run_id: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """While the block runs, rewrite the record's heartbeat_at every `every_s` seconds (a thread)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            with contextlib.suppress(OSError, LaneError, TimeoutError):
                update(root, lane, run_id, heartbeat_at=now_iso())

    thread = threading.Thread(target=beat, name="lane-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


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
    files = sorted((root / ARTIFACTS_DIR).glob("train_status.*.json"), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


def load_status(root: Path, run_id: str | None = None, lane: str | None = None) -> RunStatus:
    """What `lane status` shows: a run's record (or the lane's, or the newest lane file), observed."""
    from .ids import check_id

    if lane:
        check_id("lane", lane)
    if run_id:
        check_id("run id", run_id)
        found = read(root, run_id, lane)
        if found is None:
            raise LaneError("run_not_found", f"no status for run {run_id!r} (runs/{run_id}/{STATUS_COPY} missing)")
        return observed(found)
    path = train_status_path(root, lane) if lane else _latest_status(Path(root))
    data = _load(path) if path is not None and path.is_file() else None
    if data is None:
        raise LaneError("run_not_found", f"no train_status under {Path(root) / ARTIFACTS_DIR}" + (f" for lane {lane}" if lane else ""))
    return observed(data)


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
    stages = data.get("stages") or {}
    for name in data.get("stage_order") or list(stages):
        s = stages.get(name)
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
