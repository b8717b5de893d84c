"""The run loop: for every configured stage, plan (skip on resume?), execute the notebook, decide the
outcome, record it (ledger, train_status, fingerprint), and stop at the first stage that does not
pass. Whatever happens, the run ends with train_status, the readiness report and the final
`[tts-prod]` line.

The pieces it composes live beside it: `kernel` (papermill, failure classification, HTML),
`stream` (live output and protocol state), `outcome` (the pure status rules), `resume` (fingerprints
and the pure skip plan), `results` (notebook and result files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

from ..core import protocol
from ..core import status as run_status
from ..core.config import Settings
from ..core.fsutil import atomic_write_json, read_json, rel, sha256_file
from ..core.gates import PASS, GateResult, certify, evaluate, later_hashes
from ..core.ids import id_path
from ..core.inputs import InputDigest, input_digests
from ..core.paths import commit_of
from ..core.reasons import LaneError, exit_code, fail_status
from ..core.stage import StageResult, new_run_id, now_iso, result_path
from ..core.status import OrchestratorLog, RunState, RunStatus, StageRecord
from . import outcome as oc
from . import resume as rs
from .kernel import choose_kernel, classify_exception, execute_notebook, render_html
from .results import find_notebook, load_result
from .stream import LineSplitter, Stream


@dataclass
class RunOutcome:
    run_id: str
    lane: str
    status: str  # completed | blocked | failed
    reason: str
    exit_code: int
    detail: str
    stages: list[StageRecord] = field(default_factory=list)
    report_paths: list[Path] = field(default_factory=list)


def _children_cpu_s() -> float:
    """CPU seconds (user + system) of this process's finished children: the stage kernels."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return float(ru.ru_utime + ru.ru_stime)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (main thread only), so both take the `interrupted` path."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _warnings_to(sink: Callable[[str], None]) -> Iterator[None]:
    """Python warnings raised in this process while the run lasts go to `sink` (the run log), not the
    terminal."""
    import warnings

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: Any = None, line: str | None = None) -> None:
        sink(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


class _Run:
    def __init__(self, settings: Settings, root: Path, run_id: str, resume: bool,
                 notebooks: Mapping[str, Path] | None, extra_params: Mapping[str, Any] | None,
                 log: OrchestratorLog) -> None:
        self.settings = settings
        self.root = root
        self.run_id = run_id
        self.run_dir = id_path(root, "runs", "run id", run_id)
        self.resume = resume
        self.notebooks = dict(notebooks or {})
        self.extra = dict(extra_params or {})
        self.log = log
        self.lane = settings.lane
        self.stages: dict[str, StageRecord] = {}
        self.timings: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.stream = Stream(log, self.flush_status)
        self.commit = commit_of(root).sha or "unknown"
        self.cfg_hash = ""
        self.inputs: list[InputDigest] = []
        self.cpu0 = 0.0
        self.kernel = "python3"
        self.snapshot: Any = None  # lane.core.snapshot.Snapshot, frozen in start()
        self.evidence: list[dict[str, Any]] = []  # what every ledger entry of the run binds besides its stage

    # ---------------------------------------------------------------------------- status
    def flush_status(self, **fields: Unpack[RunStatus]) -> None:
        st: RunStatus = {
            "backend": self.settings.backend, "profile": self.settings.profile, "stages": self.stages,
            "timings": self.timings, "last_progress": self.stream.last_progress, "last_stats": self.stream.last_stats,
            "line_counts": self.stream.counts, "run_dir": rel(self.run_dir, self.root),
            "stage_order": list(self.settings.stages)}
        if self.stream.bundle_path:
            st["bundle_path"] = self.stream.bundle_path
        st.update(fields)
        run_status.update(self.root, self.lane, self.run_id, **st)

    def say(self, text: str) -> None:
        self.stream.out(text)

    # ---------------------------------------------------------------------------- one stage
    def params(self, stage: str) -> dict[str, Any]:
        p: dict[str, Any] = dict(self.settings.as_dict())
        p.update(self.extra)
        p.update({"root": str(self.root), "run_id": self.run_id, "run_dir": str(self.run_dir),
                  "stage": stage, "resume": bool(self.resume)})
        if self.snapshot is not None:  # the stages read the configuration frozen at the start
            from ..core.snapshot import frozen_manifest

            p["config_snapshot"] = str(self.snapshot.path)
            manifest = frozen_manifest(self.run_dir, self.snapshot)
            if manifest is not None:
                p["weights_manifest"] = rel(manifest, self.root)
        return p

    def results(self, names: list[str]) -> dict[str, StageResult | None]:
        return {n: load_result(self.run_dir, n, self.root)[0] for n in names}

    def try_skip(self, stage: str, fp: str) -> StageRecord | None:
        """The skipped stage's record when it may be skipped on resume, else None."""
        stored: dict[str, Any] | None = None
        with contextlib.suppress(OSError, ValueError):
            stored = read_json(self.run_dir / stage / rs.FINGERPRINT_FILE)
        if not rs.fingerprint_plan(resume=self.resume, stored=stored, fp=fp).skip or stored is None:
            return None
        res = load_result(self.run_dir, stage, self.root)[0]
        gate = None
        if res is not None:
            order = list(self.settings.stages)
            later = [r for r in self.results(order[order.index(stage) + 1:]).values() if r is not None]
            gate = evaluate(res, self.root, later_hashes(later))
        if not rs.evidence_plan(res, gate).skip or res is None or gate is None:
            return None
        return rs.skipped_record(stage, stored, res, gate)

    def on_gpu(self, stage: str) -> bool:
        """Whether the stage ran with a CUDA device (as the verify stage found the runtime)."""
        res = load_result(self.run_dir, "verify", self.root)[0] if stage != "verify" else None
        return bool(res is not None and (res.get("stats") or {}).get("cuda"))

    def execute_stage(self, stage: str, nb_in: Path, params: dict[str, Any]) -> tuple[tuple[str, str] | None, float]:
        """Run the notebook; (classified exception or None, duration). Ctrl-C propagates."""
        nb_out = self.run_dir / f"{stage}.ipynb"
        out = LineSplitter(self.stream.on_stdout)
        err = LineSplitter(self.stream.on_stderr)
        t0 = time.monotonic()
        self.cpu0 = _children_cpu_s()

        def on_retry(attempt: int, exc: BaseException) -> None:
            self.say(f"runner: stage {stage}: kernel died while starting ({exc}); retrying ({attempt})")

        try:
            execute_notebook(nb_in, nb_out, params, kernel=self.kernel, cwd=self.root,
                             timeout_s=int(self.settings.cell_timeout_s), out=out, err=err, on_retry=on_retry)
            return None, round(time.monotonic() - t0, 3)
        except KeyboardInterrupt:
            self.timings[stage] = round(time.monotonic() - t0, 3)
            self.stages[stage].update({"status": "failed", "reason": "interrupted", "duration_s": self.timings[stage]})
            raise
        except Exception as exc:
            return classify_exception(exc, nb_out, int(self.settings.cell_timeout_s)), round(time.monotonic() - t0, 3)
        finally:
            out.drain()
            err.drain()

    def run_stage(self, stage: str) -> tuple[StageRecord, GateResult, StageResult | None]:
        from ..core.ledger import append, make_entry

        nb_in = Path(self.notebooks[stage]) if stage in self.notebooks else find_notebook(stage, self.root)
        if not nb_in.is_file():
            raise LaneError("config_invalid", f"notebook for stage {stage!r} not found: {nb_in}")
        params = self.params(stage)
        order = list(self.settings.stages)
        upstream = rs.upstream_artifacts(order, stage, self.results(order))
        fp = rs.fingerprint(nb_in, params, self.cfg_hash, upstream, self.inputs, rs.code_hash())
        skipped = self.try_skip(stage, fp)
        if skipped is not None:
            self.say(f"runner: stage {stage}: skipped (unchanged since PASS, certificate {skipped['certificate_hash'][:12]})")
            return skipped, GateResult(PASS, None, skipped["certificate_hash"], True), load_result(self.run_dir, stage, self.root)[0]

        result_path(self.run_dir, stage).unlink(missing_ok=True)  # a stale result must never stand in for this attempt
        (self.run_dir / stage / rs.FINGERPRINT_FILE).unlink(missing_ok=True)
        self.say(f"runner: stage {stage}: start ({rel(nb_in, self.root)})")
        self.stages[stage] = {"name": stage, "status": "running", "started_at": now_iso(), "skipped": False}
        self.flush_status()
        exc_reason, duration = self.execute_stage(stage, nb_in, params)
        self.timings[stage] = duration
        nb_out = self.run_dir / f"{stage}.ipynb"
        html = render_html(nb_out, self.run_dir / f"{stage}.html") if nb_out.is_file() else None

        res, problem = load_result(self.run_dir, stage, self.root)
        status, reason, detail = oc.initial_status(exc_reason, res, problem)
        gate = evaluate(oc.gate_input(self.run_id, stage, res, status, reason), self.root)
        out = oc.settle(status, reason, detail, gate, raised=exc_reason is not None, has_result=res is not None)
        out = dataclasses.replace(out, gate=dataclasses.replace(
            out.gate, certificate_hash=certify(res, self.run_id, stage, out.status, out.gate.verdict)))
        record = oc.stage_record(stage, out, duration_s=duration, notebook=rel(nb_out, self.root),
                                 html=rel(html, self.root) if html else None, source_notebook=str(nb_in),
                                 finished_at=now_iso(), commit_sha=self.commit,
                                 cpu_s=round(_children_cpu_s() - self.cpu0, 2),
                                 gpu_s=duration if self.on_gpu(stage) else 0.0)
        rpath = result_path(self.run_dir, stage)
        evidence = [*self.evidence, {"kind": "stage_result", "path": rel(rpath, self.root),
                                     "sha256": sha256_file(rpath) if rpath.is_file() else None}]
        append(self.root, make_entry(run_id=self.run_id, stage=stage, lane=self.lane, result=res, gate=out.gate,
                                     status=out.status, reason=out.reason, summary=oc.ledger_summary(stage, out),
                                     commit_sha=self.commit, evidence=evidence, upstream=upstream))
        if out.passed:
            atomic_write_json(self.run_dir / stage / rs.FINGERPRINT_FILE,
                              {"fingerprint": fp, "passed_at": now_iso(), "certificate_hash": out.gate.certificate_hash,
                               "stage_record": record})
        return record, out.gate, res

    # ---------------------------------------------------------------------------- the whole run
    def start(self) -> None:
        """Create (or reopen) the run directory and write settings.json and a running status."""
        if self.resume and not self.run_dir.is_dir():
            raise LaneError("run_not_found", f"runs/{self.run_id} does not exist")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.freeze()
        if self.resume:
            self.stream.restore(run_status.read(self.root, self.run_id) or {})
        started = now_iso()
        meta = self.run_dir / "settings.json"
        if not meta.is_file():  # written once, like the snapshot: the ledger binds its hash
            atomic_write_json(meta, {
                "run_id": self.run_id, "created_at": started, "settings": self.settings.as_dict(),
                "sources": dict(self.settings.sources), "extra_params": self.extra,
                "notebooks": {k: str(v) for k, v in self.notebooks.items()}, "commit_sha": self.commit})
        self.evidence.append({"kind": "run_settings", "path": rel(meta, self.root), "sha256": sha256_file(meta)})
        first: RunStatus = {"status": "running", "reason": None, "detail": "", "started_at": started, "exit_code": None,
                            "report_path": None, "owner": run_status.this_owner(), "heartbeat_at": started,
                            "heartbeat_s": run_status.HEARTBEAT_S}
        if self.resume:
            first["resumed_at"] = started
        else:
            first["bundle_path"] = None
        self.flush_status(**first)
        self.say(f"runner: run {self.run_id} lane={self.lane} profile={self.settings.profile} "
                 f"stages={','.join(self.settings.stages)}" + (" (resume)" if self.resume else ""))
        self.cfg_hash = rs.configs_hash(self.root)
        self.inputs = input_digests(self.root, audio=self.settings.audio, transcript=self.settings.transcript,
                                    consent=self.settings.consent, weights_manifest=self.settings.weights_manifest)
        atomic_write_json(self.run_dir / "inputs.json", self.inputs)
        self.kernel = choose_kernel(self.settings, self.root)

    def freeze(self) -> None:
        """The run's configuration snapshot: written at the first start, and a resume must resolve to
        the same configuration (config_changed otherwise). Its hash goes into every ledger entry."""
        from ..core.snapshot import MANIFEST_COPY, freeze

        snap, changed = freeze(self.root, self.run_dir, self.run_id, self.settings.as_dict())
        if changed:
            raise LaneError("config_changed", f"run {self.run_id} started with another configuration: "
                            + "; ".join(changed[:4]) + (f" (and {len(changed) - 4} more)" if len(changed) > 4 else ""))
        self.snapshot = snap
        self.evidence = [{"kind": "config_snapshot", "path": rel(snap.path, self.root), "sha256": snap.sha256}]
        pinned = (snap.doc.get("weights") or {}).get("sha256")
        if pinned:
            self.evidence.append({"kind": "weights_manifest_copy", "path": rel(self.run_dir / MANIFEST_COPY, self.root),
                                  "sha256": pinned})

    def check_gpu(self) -> None:
        """A run that asks for a GPU must have one before any stage starts (lane.core.gpu)."""
        from ..core import gpu
        from ..core.config import load_profile

        why = gpu.requested(load_profile(self.settings.profile, self.root), os.environ)
        if why:
            self.say(f"runner: gpu: {gpu.require(why)}")

    def run_stages(self) -> tuple[RunState, str, str]:
        """Every configured stage in order; (status, reason, detail) of the run."""
        self.check_gpu()
        for stage in self.settings.stages:
            record, gate, _ = self.run_stage(stage)
            self.stages[stage] = record
            self.flush_status()
            if record.get("skipped"):
                continue
            self.say(f"runner: stage {stage}: {gate.verdict} status={record['status']} reason={record['reason']}"
                     f" certificate={gate.certificate_hash[:12]} integrity={str(gate.integrity_ok).lower()}"
                     + (f" first_fail={gate.first_fail}" if gate.first_fail else "")
                     + (f" detail={record['detail']}" if record.get("detail") else ""))
            if not gate.passed:
                return ("blocked" if record["status"] == "blocked" else "failed"), record["reason"], record.get("detail", "")
        return "completed", "ok", ""

    def finish(self, status: RunState, reason: str, detail: str, interrupted: bool) -> RunOutcome:
        """Final train_status, the readiness report and the [tts-prod] line."""
        if status == "failed":
            status = fail_status(reason)
        code = exit_code(reason)
        self.timings["total"] = round(time.monotonic() - self.t0, 3)
        report_paths: list[Path] = []
        if self.run_dir.is_dir():
            self.flush_status(status=status, reason=reason, detail=detail, exit_code=code,
                              finished_at=now_iso(), interrupted=interrupted)
            try:
                self.flush_status(**self.conclude())
            except Exception as exc:  # a verdict problem is logged and shown as NO-GO, never hides the outcome
                self.say(f"runner: could not reach a verdict: {type(exc).__name__}: {exc}")
                self.flush_status(verdict="NO-GO", verdict_reasons=["not_evaluated"])
            try:
                from ..report import render_report

                report_paths = render_report(self.root, self.run_id)
                self.flush_status(report_path=rel(report_paths[0], self.root))
            except Exception as exc:  # report problems are logged, never hide the run's outcome
                self.say(f"runner: could not render the readiness report: {type(exc).__name__}: {exc}")
        else:
            run_status.update(self.root, self.lane, self.run_id, status=status, reason=reason, detail=detail,
                              exit_code=code, finished_at=now_iso())
        if detail:
            self.say(f"runner: {reason}: {detail}")
        if self.stream.quiet_lines:
            self.say(f"runner: {self.stream.quiet_lines} line(s) of third-party warnings, logs and progress output "
                     f"are in {rel(self.log.path, self.root)} only")
        line = protocol.format_line(protocol.Status(status, reason, self.run_id, self.lane))
        print(line, flush=True)
        self.log.write(line)
        stages = [self.stages[s] for s in self.settings.stages if s in self.stages]
        return RunOutcome(self.run_id, self.lane, status, reason, code, detail, stages, report_paths)

    def conclude(self) -> RunStatus:
        """The verdict (lane.promotion), the signed provenance in the candidate bundle, and the switch
        to live when the config asks for automatic promotion of GO runs."""
        from .. import promotion
        from ..core.config import lane_section

        ev = promotion.gather(self.root, self.run_id)
        decision = promotion.decide(self.root, self.run_id, ev)
        sealed = promotion.seal(ev, decision)
        out: RunStatus = {"verdict": decision.verdict, "verdict_reasons": decision.reason_codes,
                               "provenance": rel(sealed, self.root) if sealed else None, "promoted": None}
        self.say(f"runner: verdict {decision.verdict}" + (f": {decision.reasons[0]}" if decision.reasons else ""))
        if decision.go and lane_section(self.root, "promotion").get("auto_promote"):
            live = promotion.promote(self.root, self.run_id)
            out["promoted"] = live.relative_to(self.root).as_posix()  # the link itself, not where it points
            self.say(f"runner: promoted: {out['promoted']} is run {self.run_id}")
        return out

    def execute(self) -> RunOutcome:
        interrupted = False
        status: RunState
        try:
            with _sigterm_as_interrupt(), _warnings_to(self.stream.warn):
                self.start()
                with run_status.heartbeat(self.root, self.lane, self.run_id):
                    status, reason, detail = self.run_stages()
        except KeyboardInterrupt:
            interrupted = True
            status, reason, detail = "failed", "interrupted", "Ctrl-C or SIGTERM; nothing promoted"
        except LaneError as err:
            status, reason, detail = err.status, err.code, err.detail
        except Exception as exc:  # a runner bug or a full disk still ends with status files and the final line
            status, reason, detail = "failed", "stage_failed", f"runner error: {type(exc).__name__}: {exc}"
        finally:
            self.stream.close()
        return self.finish(status, reason, detail, interrupted)


def execute_run(settings: Settings, root: Path, *, run_id: str | None = None, resume: bool = False,
                notebooks: Mapping[str, Path] | None = None, extra_params: Mapping[str, Any] | None = None,
                log: OrchestratorLog | None = None) -> RunOutcome:
    """Run (or resume) the configured stages; always ends with the [tts-prod] line and a RunOutcome."""
    rootp = Path(root).resolve()
    if resume and not run_id:
        raise LaneError("config_invalid", "resume needs a run id")
    own_log = log is None
    olog = log or OrchestratorLog(rootp)
    try:
        return _Run(settings, rootp, run_id or new_run_id(), resume, notebooks, extra_params, olog).execute()
    finally:
        if own_log:
            olog.close()
