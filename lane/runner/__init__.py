"""The runner: execute the configured stage notebooks with papermill, gate each one, and leave the
status files, ledger entries and readiness report behind whatever happens.

For every stage in `settings.stages`:

1. inject the parameters (root, run_id, run_dir, stage, resume, every setting, extra params) and
   execute `<notebook>` into `runs/<run_id>/<stage>.ipynb`, streaming the kernel's output live;
2. render it to `runs/<run_id>/<stage>.html` (code cells hidden);
3. read and JSON-Schema-validate `runs/<run_id>/<stage>/result.json`;
4. gate it (lane.core.gates), append a ledger entry (lane.core.ledger), rewrite train_status;
5. stop at the first stage whose gate fails.

Failures map to reason codes: PapermillExecutionError -> stage_failed (cell, ename, evalue), a
per-cell timeout -> stage_timeout, DeadKernelError -> kernel_died, a missing or invalid result ->
result_invalid, a LaneError raised in the notebook keeps its code (from result.json, or from the
error name and value), Ctrl-C / SIGTERM -> interrupted. The last line printed is always
`[tts-prod] status=... reason=... run_id=... lane=...`.

papermill, nbconvert and jsonschema are imported inside functions: the CLI imports this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..core import protocol
from ..core.config import Settings
from ..core.fsutil import atomic_write_json, canonical_json, read_json, rel, sha256_bytes, sha256_file
from ..core.gates import FAIL, PASS, GateResult, certificate_hash
from ..core.paths import PACKAGE_ROOT, commit_of, config_file, notebook_file
from ..core.reasons import EXIT_BLOCKED, REASONS, LaneError, exit_code
from ..core.stage import new_run_id, now_iso, result_path
from ..core.status import OrchestratorLog, train_status_path, write_train_status

# parameters that do not change what a stage computes: left out of its resume fingerprint
RUN_SPECIFIC_PARAMS = ("root", "run_id", "run_dir", "resume", "stages", "cell_timeout_s", "kernel_name")
BUNDLE_KIND = "voice_bundle_manifest"
STATUS_COPY = "train_status.json"


@dataclass
class RunOutcome:
    run_id: str
    lane: str
    status: str  # completed | blocked | failed
    reason: str
    exit_code: int
    detail: str
    stages: list[dict[str, Any]] = field(default_factory=list)
    report_paths: list[Path] = field(default_factory=list)


# ------------------------------------------------------------------------------------ helpers
def find_notebook(stage: str, root: Path) -> Path:
    path = notebook_file(root, stage)
    if path is None:
        raise LaneError("config_invalid", f"no notebook for stage {stage!r} in {root / 'notebooks'} or "
                        f"{PACKAGE_ROOT / 'notebooks'}")
    return path


def schema_path(root: Path) -> Path:
    path = config_file(root, "schemas", "stage_result.schema.json")
    if not path.is_file():
        raise LaneError("config_invalid", "configs/schemas/stage_result.schema.json not found")
    return path


def load_result(run_dir: Path, stage: str, root: Path) -> tuple[dict[str, Any] | None, str]:
    """(result, problem): the validated stage result, or None and why it is missing or invalid."""
    path = result_path(run_dir, stage)
    if not path.is_file():
        return None, f"{rel(path, root)} was not written"
    try:
        data = read_json(path)
    except ValueError as exc:
        return None, f"{rel(path, root)} is not valid JSON ({exc})"
    import jsonschema

    schema = read_json(schema_path(root))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "<root>"
        return None, f"{rel(path, root)} breaks the schema at {where}: {err.message}"
    if data.get("stage") != stage:
        return None, f"{rel(path, root)} is for stage {data.get('stage')!r}, expected {stage!r}"
    if data.get("run_id") != run_dir.name:
        return None, f"{rel(path, root)} is for run {data.get('run_id')!r}, expected {run_dir.name!r}"
    return data, ""


def configs_hash(root: Path) -> str:
    cfg = root / "configs"
    rows = []
    if cfg.is_dir():
        for p in sorted(cfg.rglob("*")):
            if p.is_file():
                rows.append([p.relative_to(cfg).as_posix(), sha256_file(p)])
    return sha256_bytes(canonical_json(rows).encode())


def fingerprint(notebook: Path, params: Mapping[str, Any], cfg_hash: str,
                upstream: list[dict[str, Any]]) -> str:
    """A stage's input fingerprint: notebook bytes, parameters (run-specific ones removed), the
    configs/ tree and upstream stages' artifact hashes."""
    body = {
        "notebook": sha256_file(notebook),
        "params": {k: v for k, v in params.items() if k not in RUN_SPECIFIC_PARAMS},
        "configs": cfg_hash,
        "upstream": upstream,
    }
    return sha256_bytes(canonical_json(body).encode())


def _is_same_python(argv0: str) -> bool:
    if argv0 in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return True  # jupyter_client substitutes sys.executable for these
    return os.path.dirname(os.path.abspath(argv0)) == os.path.dirname(os.path.abspath(sys.executable))


def choose_kernel(settings: Settings, root: Path) -> str:
    """The kernel to run stages with: the configured one, else a kernelspec that runs this
    interpreter (voice-lane, then python3), else a private spec for sys.executable."""
    if settings.kernel_name:
        return settings.kernel_name
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    ksm = KernelSpecManager()
    for name in ("voice-lane", "python3"):
        try:
            spec = ksm.get_kernel_spec(name)
        except NoSuchKernel:
            continue
        if spec.argv and _is_same_python(spec.argv[0]):
            return name
    data_dir = root / ".lane" / "jupyter"
    kdir = data_dir / "kernels" / "lane-python"
    kdir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(kdir / "kernel.json", {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "voice-lane runner python", "language": "python"})
    os.environ["JUPYTER_PATH"] = os.pathsep.join([str(data_dir), *filter(None, [os.environ.get("JUPYTER_PATH")])])
    return "lane-python"


# ---------------------------------------------------------------------------------- streaming
class LineSplitter:
    """A file-like object for papermill's stdout_file/stderr_file: splits the kernel's stream output
    into lines and hands each complete line to `on_line` as soon as it arrives."""

    def __init__(self, on_line: Callable[[str], None]) -> None:
        self._buf = ""
        self._on_line = on_line
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._buf += text
            *lines, self._buf = self._buf.split("\n")
        for line in lines:
            self._on_line(line.rstrip("\r"))
        return len(text)

    def flush(self) -> None:
        pass

    def drain(self) -> None:
        with self._lock:
            rest, self._buf = self._buf, ""
        if rest:
            self._on_line(rest)


class _ProgressBar:
    """A Rich progress bar driven by PROGRESS lines; only on a TTY outside CI."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                 TimeElapsedColumn(), TextColumn("{task.fields[msg]}"), transient=False)
        self.tasks: dict[str, Any] = {}
        self.progress.start()

    def update(self, line: protocol.Progress) -> None:
        if line.stage not in self.tasks:
            self.tasks[line.stage] = self.progress.add_task(line.stage, total=max(line.total, 1), msg="")
        self.progress.update(self.tasks[line.stage], completed=line.step, total=max(line.total, 1), msg=line.msg or "")

    def print(self, text: str) -> None:
        self.progress.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self.progress.stop()


def _want_bar(stream: TextIO) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("CI")


class _Stream:
    """Everything the runner learns from the stage's stdout: it echoes every line live, sends it to the
    orchestrator log, and keeps the protocol state (counts, last PROGRESS/STATS, bundle path)."""

    def __init__(self, log: OrchestratorLog, on_state: Callable[[], None]) -> None:
        self.log = log
        self.counts = {"PROGRESS": 0, "STATS": 0, "ARTIFACT": 0}
        self.last_progress: dict[str, Any] | None = None
        self.last_stats: dict[str, Any] | None = None
        self.bundle_path: str | None = None
        self.artifacts: list[dict[str, str]] = []
        self._on_state = on_state
        self._last_flush = 0.0
        self.bar = _ProgressBar() if _want_bar(sys.stdout) else None

    def out(self, text: str) -> None:
        if self.bar:
            self.bar.print(text)
        else:
            print(text, flush=True)
        self.log.write(text)

    def on_stdout(self, text: str) -> None:
        self.out(text)
        parsed = protocol.parse_line(text)
        if parsed is None:
            return
        if isinstance(parsed, protocol.Progress):
            self.counts["PROGRESS"] += 1
            self.last_progress = {"stage": parsed.stage, "step": parsed.step, "total": parsed.total,
                                  "pct": parsed.pct, "msg": parsed.msg}
            if self.bar:
                self.bar.update(parsed)
        elif isinstance(parsed, protocol.Stats):
            self.counts["STATS"] += 1
            self.last_stats = {"stage": parsed.stage, **parsed.values}
        elif isinstance(parsed, protocol.Artifact):
            self.counts["ARTIFACT"] += 1
            self.artifacts.append({"stage": parsed.stage, "kind": parsed.kind, "path": parsed.path,
                                   "sha256": parsed.sha256})
            if parsed.kind == BUNDLE_KIND:
                self.bundle_path = str(Path(parsed.path).parent.as_posix())
        now = time.monotonic()
        if now - self._last_flush >= 1.0:  # keep train_status fresh without rewriting it per line
            self._last_flush = now
            self._on_state()

    def on_stderr(self, text: str) -> None:
        if self.bar:
            self.bar.print(text)
        else:
            print(text, file=sys.stderr, flush=True)
        self.log.write(f"stderr: {text}")

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None


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
def _env(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def _quiet_papermill() -> Iterator[None]:
    """papermill warns for every injected parameter the notebook does not declare: noise here."""
    import logging

    logger = logging.getLogger("papermill")
    old = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(old)


# ---------------------------------------------------------------------------- failure mapping
_LANE_ERROR_VALUE = re.compile(r"^\s*([a-z][a-z0-9_]*)(?::\s*(.*))?$", re.S)


def _cell_label(exc: Any) -> str:
    count = getattr(exc, "exec_count", None)
    index = getattr(exc, "cell_index", None)
    if count is not None:
        return f"cell {count} (index {index})"
    return f"cell index {index}"


def _running_cell(output_nb: Path) -> str:
    """The cell that was running when execution stopped: the last one papermill gave a start time."""
    try:
        nb = read_json(output_nb)
    except (OSError, ValueError):
        return "cell ?"
    label = "cell ?"
    for i, cell in enumerate(nb.get("cells", [])):
        meta = cell.get("metadata", {}).get("papermill", {})
        if cell.get("cell_type") == "code" and meta.get("start_time"):
            count = cell.get("execution_count")
            label = f"cell {count} (index {i})" if count is not None else f"cell index {i}"
    return label


KERNEL_START_ATTEMPTS = 3


def _died_at_start(exc: BaseException) -> bool:
    return "before replying to kernel_info" in str(exc)  # jupyter_client raises a RuntimeError with this text


def classify_exception(exc: BaseException, output_nb: Path, timeout_s: int) -> tuple[str, str]:
    """(reason, detail) for an exception out of papermill.execute_notebook."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        ename, evalue = str(exc.ename), str(exc.evalue)
        if ename == "LaneError":
            m = _LANE_ERROR_VALUE.match(evalue)
            if m and m.group(1) in REASONS:
                return m.group(1), (m.group(2) or "").strip()
        return "stage_failed", f"{_cell_label(exc)}: {ename}: {evalue}"
    if isinstance(exc, CellTimeoutError):
        return "stage_timeout", f"{_running_cell(output_nb)} ran past cell_timeout_s={timeout_s}"
    if isinstance(exc, DeadKernelError):
        return "kernel_died", f"{_running_cell(output_nb)}: kernel died ({exc})".rstrip()
    if type(exc).__name__ == "NoSuchKernel":
        return "config_invalid", f"no such kernel: {exc}"
    if isinstance(exc, TimeoutError | RuntimeError) and "kernel" in str(exc).lower() and "died" in str(exc).lower():
        return "kernel_died", str(exc)
    return "stage_failed", f"{type(exc).__name__}: {exc}"


def render_html(notebook: Path, out: Path) -> Path | None:
    """The executed notebook as HTML with code cells hidden (outputs only)."""
    try:
        import nbformat
        from nbconvert import HTMLExporter

        nb = nbformat.read(str(notebook), as_version=4)
        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(nb)
        out.write_text(body, encoding="utf-8")
        return out
    except Exception as exc:  # the report links what exists; a render failure must not hide the outcome
        print(f"runner: could not render {notebook.name} to HTML: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


# --------------------------------------------------------------------------------------- run
class _Run:
    def __init__(self, settings: Settings, root: Path, run_id: str, resume: bool,
                 notebooks: Mapping[str, Path] | None, extra_params: Mapping[str, Any] | None,
                 log: OrchestratorLog) -> None:
        self.settings = settings
        self.root = root
        self.run_id = run_id
        self.run_dir = root / "runs" / run_id
        self.resume = resume
        self.notebooks = dict(notebooks or {})
        self.extra = dict(extra_params or {})
        self.log = log
        self.lane = settings.lane
        self.stages: dict[str, dict[str, Any]] = {}
        self.timings: dict[str, float] = {}
        self.t0 = time.monotonic()
        self.stream = _Stream(log, self.flush_status)
        self.commit = commit_of(root).sha or "unknown"
        self.cfg_hash = ""
        self.kernel = "python3"

    # -- status
    def flush_status(self, **fields: Any) -> None:
        st = write_train_status(
            self.root, self.lane, run_id=self.run_id, backend=self.settings.backend, profile=self.settings.profile,
            stages=self.stages, timings=self.timings, last_progress=self.stream.last_progress,
            last_stats=self.stream.last_stats, line_counts=self.stream.counts,
            run_dir=rel(self.run_dir, self.root), stage_order=list(self.settings.stages),
            **({"bundle_path": self.stream.bundle_path} if self.stream.bundle_path else {}), **fields)
        if self.run_dir.is_dir():
            atomic_write_json(self.run_dir / STATUS_COPY, st)

    def say(self, text: str) -> None:
        self.stream.out(text)

    def carry_over(self) -> None:
        """On resume, keep what earlier attempts of this run saw: line counts, bundle path, timings."""
        try:
            prev = read_json(self.run_dir / STATUS_COPY)
        except (OSError, ValueError):
            return
        for key, value in (prev.get("line_counts") or {}).items():
            if key in self.stream.counts and isinstance(value, int):
                self.stream.counts[key] += value
        self.stream.bundle_path = self.stream.bundle_path or prev.get("bundle_path")
        self.stream.last_progress = prev.get("last_progress")
        self.stream.last_stats = prev.get("last_stats")

    # -- one stage
    def params(self, stage: str) -> dict[str, Any]:
        p: dict[str, Any] = dict(self.settings.as_dict())
        p.update(self.extra)
        p.update({"root": str(self.root), "run_id": self.run_id, "run_dir": str(self.run_dir),
                  "stage": stage, "resume": bool(self.resume)})
        return p

    def upstream(self, upto: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for name in self.settings.stages:
            if name == upto:
                break
            res, _ = load_result(self.run_dir, name, self.root)
            for a in (res or {}).get("artifacts", []):
                rows.append({"stage": name, "kind": a["kind"], "path": a["path"], "sha256": a["sha256"]})
        return rows

    def try_skip(self, stage: str, fp: str) -> dict[str, Any] | None:
        fp_file = self.run_dir / stage / "fingerprint.json"
        if not (self.resume and fp_file.is_file()):
            return None
        try:
            stored = read_json(fp_file)
        except ValueError:
            return None
        if stored.get("fingerprint") != fp:
            return None
        res, _ = load_result(self.run_dir, stage, self.root)
        if res is None:
            return None
        from ..core.gates import evaluate, later_hashes

        stages = list(self.settings.stages)
        later = [r for r in (load_result(self.run_dir, n, self.root)[0] for n in stages[stages.index(stage) + 1:])
                 if r is not None]
        gate = evaluate(res, self.root, later_hashes(later))
        if not gate.passed:
            return None
        prev = stored.get("stage_record", {})
        return {**prev, "name": stage, "status": res["status"], "reason": res["reason"], "verdict": gate.verdict,
                "certificate_hash": gate.certificate_hash, "integrity_ok": gate.integrity_ok,
                "skipped": True, "skip_note": "skipped (unchanged since PASS)",
                "original_duration_s": prev.get("duration_s"), "duration_s": 0.0}

    def run_stage(self, stage: str) -> tuple[dict[str, Any], GateResult, dict[str, Any] | None]:
        import papermill as pm

        from ..core.gates import evaluate
        from ..core.ledger import append, make_entry

        nb_in = Path(self.notebooks[stage]) if stage in self.notebooks else find_notebook(stage, self.root)
        if not nb_in.is_file():
            raise LaneError("config_invalid", f"notebook for stage {stage!r} not found: {nb_in}")
        params = self.params(stage)
        fp = fingerprint(nb_in, params, self.cfg_hash, self.upstream(stage))
        skipped = self.try_skip(stage, fp)
        if skipped is not None:
            self.say(f"runner: stage {stage}: skipped (unchanged since PASS, certificate {skipped['certificate_hash'][:12]})")
            res, _ = load_result(self.run_dir, stage, self.root)
            return skipped, GateResult(PASS, None, skipped["certificate_hash"], True), res

        nb_out = self.run_dir / f"{stage}.ipynb"
        res_file = result_path(self.run_dir, stage)
        res_file.unlink(missing_ok=True)  # a stale result must never stand in for this attempt
        (self.run_dir / stage / "fingerprint.json").unlink(missing_ok=True)
        self.say(f"runner: stage {stage}: start ({rel(nb_in, self.root)})")
        self.stages[stage] = {"name": stage, "status": "running", "started_at": now_iso(), "skipped": False}
        self.flush_status()
        out = LineSplitter(self.stream.on_stdout)
        err = LineSplitter(self.stream.on_stderr)
        exc_reason: tuple[str, str] | None = None
        t0 = time.monotonic()
        try:
            for attempt in range(1, KERNEL_START_ATTEMPTS + 1):
                try:
                    with _env(PYTHONUNBUFFERED="1"), _quiet_papermill():
                        pm.execute_notebook(
                            str(nb_in), str(nb_out), parameters=params, kernel_name=self.kernel,
                            progress_bar=False, log_output=False, stdout_file=out, stderr_file=err,
                            execution_timeout=int(self.settings.cell_timeout_s), start_timeout=180,
                            cwd=str(self.root), request_save_on_cell_execute=True)
                    break
                except Exception as exc:
                    # jupyter_client picks free ports and then binds them; runs starting kernels at the
                    # same moment can race for a port, and that kernel dies before running any cell.
                    # Nothing has executed yet, so starting it again is safe.
                    if attempt == KERNEL_START_ATTEMPTS or not _died_at_start(exc):
                        raise
                    self.say(f"runner: stage {stage}: kernel died while starting ({exc}); "
                             f"retrying ({attempt + 1}/{KERNEL_START_ATTEMPTS})")
        except KeyboardInterrupt:
            out.drain()
            err.drain()
            self.timings[stage] = round(time.monotonic() - t0, 3)
            self.stages[stage].update(status="failed", reason="interrupted", duration_s=self.timings[stage])
            raise
        except Exception as exc:
            exc_reason = classify_exception(exc, nb_out, int(self.settings.cell_timeout_s))
        finally:
            out.drain()
            err.drain()
        duration = round(time.monotonic() - t0, 3)
        self.timings[stage] = duration
        html = render_html(nb_out, self.run_dir / f"{stage}.html") if nb_out.is_file() else None

        res, problem = load_result(self.run_dir, stage, self.root)
        if exc_reason is not None:
            reason, detail = exc_reason
            # a LaneError written by StageRun.guard keeps its own code
            if res is not None and res["status"] in ("blocked", "failed") and res["reason"] not in ("ok", "gate_failed"):
                reason, detail = res["reason"], res.get("detail") or detail
            status = "blocked" if exit_code(reason) == EXIT_BLOCKED or (res or {}).get("status") == "blocked" else "failed"
        elif res is None:
            reason, detail, status = "result_invalid", problem, "failed"
        else:
            reason, detail, status = res["reason"], res.get("detail", ""), res["status"]

        gate_input = res if res is not None else {"run_id": self.run_id, "stage": stage, "status": status,
                                                  "checks": [], "artifacts": [], "first_fail": reason}
        gate = evaluate(gate_input, self.root)
        if exc_reason is not None or res is None:
            gate = GateResult(FAIL, gate.first_fail or reason, gate.certificate_hash, gate.integrity_ok, gate.problems)
        if not gate.passed:
            if reason == "ok":
                reason = "gate_failed"
                detail = "; ".join(gate.problems) or f"first_fail={gate.first_fail}"
            if status in ("done", "partial-blocked"):
                status = "failed"
        else:
            reason = "ok"
        record = {
            "name": stage, "status": status, "reason": reason, "detail": detail, "verdict": gate.verdict,
            "first_fail": gate.first_fail, "certificate_hash": gate.certificate_hash, "integrity_ok": gate.integrity_ok,
            "duration_s": duration, "skipped": False, "notebook": rel(nb_out, self.root),
            "html": rel(html, self.root) if html else None, "source_notebook": str(nb_in),
            "finished_at": now_iso(),
        }
        summary = f"{stage}: {status} reason={reason}" + (f" ({detail[:200]})" if detail else "")
        append(self.root, make_entry(run_id=self.run_id, stage=stage, lane=self.lane, result=res, gate=gate,
                                     status=status, reason=reason, summary=summary, commit_sha=self.commit))
        if gate.passed:
            atomic_write_json(self.run_dir / stage / "fingerprint.json",
                              {"fingerprint": fp, "passed_at": now_iso(), "certificate_hash": gate.certificate_hash,
                               "stage_record": record})
        return record, gate, res

    # -- the whole run
    def execute(self) -> RunOutcome:
        status, reason, detail = "completed", "ok", ""
        interrupted = False
        try:
            with _sigterm_as_interrupt():
                if self.resume and not self.run_dir.is_dir():
                    raise LaneError("run_not_found", f"runs/{self.run_id} does not exist")
                self.run_dir.mkdir(parents=True, exist_ok=True)
                if self.resume:
                    self.carry_over()
                started = now_iso()
                prev_started = None
                if self.resume and (self.run_dir / "settings.json").is_file():
                    with contextlib.suppress(ValueError):
                        prev_started = read_json(self.run_dir / "settings.json").get("created_at")
                atomic_write_json(self.run_dir / "settings.json", {
                    "run_id": self.run_id, "created_at": prev_started or started, "resumed_at": started if self.resume else None,
                    "settings": self.settings.as_dict(), "sources": dict(self.settings.sources),
                    "extra_params": self.extra, "notebooks": {k: str(v) for k, v in self.notebooks.items()},
                    "commit_sha": self.commit})
                self.flush_status(status="running", reason=None, detail="", started_at=started, exit_code=None,
                                  report_path=None, **({} if self.resume else {"bundle_path": None}))
                self.say(f"runner: run {self.run_id} lane={self.lane} profile={self.settings.profile} "
                         f"stages={','.join(self.settings.stages)}" + (" (resume)" if self.resume else ""))
                self.cfg_hash = configs_hash(self.root)
                self.kernel = choose_kernel(self.settings, self.root)
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
                        status = "blocked" if record["status"] == "blocked" else "failed"
                        reason, detail = record["reason"], record.get("detail", "")
                        break
        except KeyboardInterrupt:
            interrupted = True
            status, reason, detail = "failed", "interrupted", "Ctrl-C or SIGTERM; nothing promoted"
        except LaneError as err:
            status = "blocked" if err.exit_code == EXIT_BLOCKED else "failed"
            reason, detail = err.code, err.detail
        except Exception as exc:  # a runner bug or a full disk still ends with status files and the final line
            status, reason, detail = "failed", "stage_failed", f"runner error: {type(exc).__name__}: {exc}"
        finally:
            self.stream.close()
        if status == "failed" and exit_code(reason) == EXIT_BLOCKED:
            status = "blocked"
        code = exit_code(reason)
        self.timings["total"] = round(time.monotonic() - self.t0, 3)
        report_paths: list[Path] = []
        if self.run_dir.is_dir():
            self.flush_status(status=status, reason=reason, detail=detail, exit_code=code,
                              finished_at=now_iso(), interrupted=interrupted)
            try:
                from ..report import render_report

                report_paths = render_report(self.root, self.run_id)
                self.flush_status(report_path=rel(report_paths[0], self.root))
            except Exception as exc:  # report problems are logged, never hide the run's outcome
                self.say(f"runner: could not render the readiness report: {type(exc).__name__}: {exc}")
        else:
            write_train_status(self.root, self.lane, run_id=self.run_id, status=status, reason=reason,
                               detail=detail, exit_code=code, finished_at=now_iso())
        if detail:
            self.say(f"runner: {reason}: {detail}")
        line = protocol.format_line(protocol.Status(status, reason, self.run_id, self.lane))
        print(line, flush=True)
        self.log.write(line)
        stages = [self.stages[s] for s in self.settings.stages if s in self.stages]
        return RunOutcome(self.run_id, self.lane, status, reason, code, detail, stages, report_paths)


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


# ------------------------------------------------------------------------------------- status
def _latest_status(root: Path) -> Path | None:
    files = sorted((root / "artifacts").glob("train_status.*.json"), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


def load_status(root: Path, run_id: str | None = None, lane: str | None = None) -> dict[str, Any]:
    if run_id:
        copy = root / "runs" / run_id / STATUS_COPY
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


__all__ = ["RunOutcome", "certificate_hash", "execute_run", "load_status", "show_status"]
