"""The notebook side of the stage contract: record checks, stats and artifacts, emit the protocol
lines, and write `runs/<run_id>/<stage>/result.json` whatever happens.

A notebook does::

    st = StageRun.open("verify", root=root, run_id=run_id, lane=lane)
    with st.guard():                       # a LaneError inside is written as the result, then re-raised
        st.check("audio_decodable", ok, "3 files, 182.4 s")
        st.artifact("dataset_manifest", path)
    st.finish()                            # status from the checks: done, or failed/gate_failed

Opened by hand in Jupyter (no run id), it makes an ad-hoc run directory so everything still works.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NotRequired, TypedDict

from . import protocol
from .fsutil import atomic_write_json, rel, sha256_file
from .reasons import REASONS, LaneError

RESULT_SCHEMA_ID = "lane.stage_result/1"
StageStatus = Literal["done", "partial-blocked", "blocked", "failed"]
STAGE_STATUSES: tuple[StageStatus, ...] = ("done", "partial-blocked", "blocked", "failed")


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_run_id(prefix: str = "") -> str:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{os.urandom(3).hex()}"


def latest_run_id(root: str | os.PathLike[str], with_stage: str) -> str | None:
    """The newest run under root/runs whose `with_stage` wrote a result: what a notebook opened by
    hand continues from (e.g. export after a `lane run --stages verify,train`)."""
    runs = [p.parent.parent for p in (Path(root) / "runs").glob(f"*/{with_stage}/result.json")]
    return max(runs, key=lambda p: p.stat().st_mtime).name if runs else None


def result_path(run_dir: str | os.PathLike[str], stage: str) -> Path:
    return Path(run_dir) / stage / "result.json"


class CheckRecord(TypedDict):
    """One check as a stage result lists it (configs/schemas/stage_result.schema.json)."""

    id: str
    ok: bool | None
    detail: str
    optional: NotRequired[bool]
    reason: NotRequired[str]
    value: NotRequired[float | str | None]
    threshold: NotRequired[float | str | None]


class ArtifactRecord(TypedDict):
    kind: str
    path: str
    sha256: str


class UpstreamArtifact(ArtifactRecord):
    """An artifact of an earlier stage, as a later stage's fingerprint and ledger entry name it."""

    stage: str


class StageResult(TypedDict):
    """A stage's result.json (configs/schemas/stage_result.schema.json); `stats` holds whatever
    numbers and strings the stage recorded."""

    schema: str
    run_id: str
    stage: str
    lane: str | None
    status: str
    reason: str
    detail: str
    checks: list[CheckRecord]
    first_fail: str | None
    stats: dict[str, Any]
    artifacts: list[ArtifactRecord]
    started_at: str
    finished_at: str
    duration_s: float


@dataclass
class Check:
    id: str
    ok: bool | None  # None: not evaluated
    detail: str = ""
    optional: bool = False
    value: float | str | None = None
    threshold: float | str | None = None
    reason: str | None = None  # for a check not evaluated: the reason code why (e.g. evaluator_license_blocked)

    def as_dict(self) -> CheckRecord:
        d = CheckRecord(id=self.id, ok=self.ok, detail=self.detail)
        if self.optional:
            d["optional"] = True
        if self.reason is not None:
            d["reason"] = self.reason
        if self.value is not None:
            d["value"] = self.value
        if self.threshold is not None:
            d["threshold"] = self.threshold
        return d


@dataclass
class StageRun:
    stage: str
    root: Path
    run_id: str
    run_dir: Path
    lane: str | None = None
    checks: list[Check] = field(default_factory=list)
    stats_: dict[str, Any] = field(default_factory=dict)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    started_at: str = field(default_factory=now_iso)
    t0: float = field(default_factory=time.monotonic)
    finished: bool = False

    @classmethod
    def open(cls, stage: str, root: str | os.PathLike[str] = ".", run_id: str | None = None,
             run_dir: str | os.PathLike[str] | None = None, lane: str | None = None) -> StageRun:
        from .ids import check_id, id_path

        rootp = Path(root).resolve()
        rid = check_id("run id", run_id or new_run_id("adhoc-"))
        check_id("stage", stage)
        rdir = Path(run_dir) if run_dir else id_path(rootp, "runs", "run id", rid)
        (rdir / stage).mkdir(parents=True, exist_ok=True)
        return cls(stage=stage, root=rootp, run_id=rid, run_dir=rdir.resolve(), lane=lane)

    @property
    def stage_dir(self) -> Path:
        return self.run_dir / self.stage

    # ------------------------------------------------------------------ recording
    def check(self, id: str, ok: bool | None, detail: str = "", *, optional: bool = False,
              value: float | str | None = None, threshold: float | str | None = None,
              reason: str | None = None) -> bool:
        """Record one check; returns `ok` (False for not evaluated) so callers can branch on it.
        `reason`, for a check not evaluated, is the reason code why (it becomes the stage's reason
        when every missing check gives the same one)."""
        if reason is not None and reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        self.checks = [c for c in self.checks if c.id != id]
        self.checks.append(Check(id, None if ok is None else bool(ok), detail, optional, value, threshold, reason))
        mark = "ok" if ok else ("n/a" if ok is None else "FAIL")
        print(f"check {id}: {mark} {detail}".rstrip(), flush=True)
        return bool(ok)

    def stats(self, **values: Any) -> None:
        self.stats_.update(values)
        clean = {k: v for k, v in values.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        clean.update({k: int(v) for k, v in values.items() if isinstance(v, bool)})
        if clean:
            protocol.stats(self.stage, **clean)

    def progress(self, step: int, total: int, msg: str | None = None) -> None:
        protocol.progress(self.stage, step, total, msg)

    def artifact(self, kind: str, path: str | os.PathLike[str]) -> str:
        """Hash `path`, emit an ARTIFACT line and record it; returns the sha256."""
        digest = sha256_file(path)
        relpath = rel(path, self.root)
        self.artifacts = [a for a in self.artifacts if not (a["kind"] == kind and a["path"] == relpath)]
        self.artifacts.append(ArtifactRecord(kind=kind, path=relpath, sha256=digest))
        protocol.artifact(self.stage, kind, relpath, digest)
        return digest

    # ------------------------------------------------------------------ outcome
    def first_fail(self) -> str | None:
        for c in self.checks:
            if c.ok is False or (c.ok is None and not c.optional):
                return c.id
        return None

    def _derived(self) -> tuple[StageStatus, str, str]:
        """(status, reason, detail) from the checks: any failure is gate_failed; required checks not
        evaluated block the stage (not_evaluated, or the one reason code they all give); optional
        ones only make it partial."""
        failed = [c for c in self.checks if c.ok is False]
        missing = [c for c in self.checks if c.ok is None and not c.optional]
        skipped = [c for c in self.checks if c.ok is None and c.optional]
        if failed:
            return "failed", "gate_failed", ""
        if missing:
            why = {c.reason for c in missing}
            if len(why) == 1 and None not in why:
                return "blocked", str(missing[0].reason), missing[0].detail
            return "blocked", "not_evaluated", ""
        if skipped:
            return "partial-blocked", "ok", ""
        return "done", "ok", ""

    def result(self, status: str | None = None, reason: str | None = None, detail: str = "") -> StageResult:
        d_status, d_reason, d_detail = self._derived()
        if status is None and reason is None:
            detail = detail or d_detail
        status = status or d_status
        reason = reason or d_reason
        if status not in STAGE_STATUSES:
            raise ValueError(f"bad stage status {status!r}")
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        return StageResult(
            schema=RESULT_SCHEMA_ID,
            run_id=self.run_id,
            stage=self.stage,
            lane=self.lane,
            status=status,
            reason=reason,
            detail=detail,
            checks=[c.as_dict() for c in self.checks],
            first_fail=self.first_fail() if status != "done" else None,
            stats=self.stats_,
            artifacts=list(self.artifacts),
            started_at=self.started_at,
            finished_at=now_iso(),
            duration_s=round(time.monotonic() - self.t0, 3),
        )

    def write(self, status: str | None = None, reason: str | None = None, detail: str = "") -> StageResult:
        res = self.result(status, reason, detail)
        atomic_write_json(result_path(self.run_dir, self.stage), res)
        self.finished = True
        return res

    def finish(self) -> StageResult:
        """Write the result from the recorded checks. Call it last in the notebook."""
        res = self.write()
        print(f"stage {self.stage}: {res['status']} reason={res['reason']}"
              + (f" first_fail={res['first_fail']}" if res["first_fail"] else ""), flush=True)
        return res

    def fail(self, err: LaneError) -> StageResult:
        status = err.status
        self.check(f"{self.stage}_error", False, f"{err.code}: {err.detail}")
        return self.write(status, err.code, err.detail)

    @contextlib.contextmanager
    def guard(self) -> Iterator[StageRun]:
        """Write a LaneError as this stage's result (keeping its code), then let it propagate."""
        try:
            yield self
        except LaneError as err:
            self.fail(err)
            raise
