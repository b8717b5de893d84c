"""Training jobs through the configured backend: what POST /api/train/start, GET /api/train/status?run_id=
and POST /api/train/cancel call, and what `lane cancel` uses.

    jobs = Jobs(root)                        # reads `jobs:` and `managed_job:` from configs/lane.yaml (or config_path)
    job = jobs.submit("tts_prod_train", "data/jane/session1.flac", profile="production")
    jobs.status(job["run_id"])               # train_status plus the queue or scheduler state
    jobs.cancel(job["run_id"]); jobs.list(); jobs.close()

`jobs.backend: local` (default): a persistent queue under artifacts/jobs/ (one JSON record per run, a
file lock around every change). A worker thread started by `Jobs` starts queued runs in order, at
most `jobs.concurrency` (default 1) at a time, each as a `lane run --backend local --resume RUN_ID`
subprocess in its own session (so a server restart does not kill it; the next `Jobs` adopts it by its
pid, and re-queues once a run whose process vanished without a final status). Its output goes to
artifacts/jobs/<run_id>.log.

`jobs.backend: managed_job` (with `managed_job.engine: slurm`): `submit` runs `lane run --backend
managed_job --detach`, which writes the job script and `sbatch`es it; the scheduler is the queue, and
`status` reads the state from it (settling a job that ended, exactly as `lane status RUN_ID` does).

Requests are checked before anything is written: the job type is one of JOB_TYPES (else
unknown_lane), identifiers pass lane.core.ids, and every path (audio, transcript, consent) must lie
under `jobs.data_root` (default `data/`, symlinks resolved) (else config_invalid).

States: queued, running, completed, failed, blocked, cancelled. Errors are LaneError with a reason code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .core.fsutil import atomic_write_json, read_json, rel
from .core.ids import check_id, id_path, within
from .core.reasons import LaneError, exit_code, fail_status
from .core.stage import new_run_id, now_iso

JOB_TYPES = ("tts_prod_train", "tts_prod_train_nemo", "train", "tts_voice_train")
JOBS_DIR = "artifacts/jobs"
FINAL = ("completed", "failed", "blocked", "cancelled")
INPUT_FORMATS = ("auto", "longform", "longform_transcript", "ljspeech", "nemo_manifest")
# request option -> `lane run` flag
OPTIONS = {"profile": "--profile", "voice_profile_id": "--voice-profile-id", "transcript": "--transcript",
           "input_format": "--input-format", "stages": "--stages", "consent": "--consent",
           "expected_head": "--expected-head", "allow_from_scratch": "--allow-from-scratch"}
PATH_OPTIONS = ("transcript", "consent")


class Jobs:
    """The job API over one workspace (see the module docstring)."""

    def __init__(self, root: str | os.PathLike[str] = ".", config_path: str | os.PathLike[str] | None = None, *,
                 env: Mapping[str, str] | None = None, start: bool = True, poll_s: float = 0.5) -> None:
        from .core.config import lane_config_file, lane_section

        self.root = Path(root).resolve()
        self.env = dict(os.environ if env is None else env)
        cfg = lane_config_file(self.root, config_path, self.env)
        self.config_path = cfg.resolve() if cfg is not None else None
        section = lane_section(self.root, "jobs", config_path, self.env)
        self.backend = str(section.get("backend") or "local")
        if self.backend not in ("local", "managed_job"):
            raise LaneError("config_invalid", f"jobs.backend: {self.backend!r} is not local or managed_job")
        self.concurrency = int(section.get("concurrency") or 1)
        if self.concurrency < 1:
            raise LaneError("config_invalid", "jobs.concurrency must be at least 1")
        self.data_root = (self.root / str(section.get("data_root") or "data")).resolve()
        self.dir = self.root / JOBS_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self.poll_s = poll_s
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        if start and self.backend == "local":
            self.thread = threading.Thread(target=self.loop, name="lane-jobs", daemon=True)
            self.thread.start()

    # -------------------------------------------------------------------------------- records
    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        from filelock import FileLock

        with FileLock(str(self.dir / ".lock"), timeout=60):
            yield

    def path(self, run_id: str) -> Path:
        return within(self.dir, f"{check_id('run id', run_id)}.json")

    def record(self, run_id: str) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            data = read_json(self.path(run_id))
            return data if isinstance(data, dict) else None
        return None

    def save(self, rec: dict[str, Any], **fields: Any) -> dict[str, Any]:
        rec.update(fields, updated_at=now_iso())
        atomic_write_json(self.path(str(rec["run_id"])), rec)
        return rec

    def records(self) -> list[dict[str, Any]]:
        out = []
        for p in self.dir.glob("*.json"):
            with contextlib.suppress(OSError, ValueError):
                data = read_json(p)
                if isinstance(data, dict) and data.get("run_id"):
                    out.append(data)
        return sorted(out, key=lambda r: (int(r.get("seq") or 0), str(r["run_id"])))

    # -------------------------------------------------------------------------------- requests
    def inside(self, what: str, value: Any) -> Path:
        """A request path (relative to the workspace, or absolute) that must lie under the data root."""
        if not isinstance(value, str) or not value.strip() or "\0" in value:
            raise LaneError("config_invalid", f"{what}: expected a path, got {value!r}")
        path = Path(value) if Path(value).is_absolute() else self.root / value
        try:
            return within(self.data_root, str(path), kind="data path").resolve()
        except LaneError as err:
            raise LaneError("config_invalid", f"{what} {value!r} is outside the data root {self.data_root} "
                            f"(jobs.data_root): {err.detail}") from None

    def flags(self, job_type: str, audio_path: str, options: Mapping[str, Any]) -> list[str]:
        """The request, checked, as `lane run` flags."""
        if check_id("lane", job_type) not in JOB_TYPES:
            raise LaneError("unknown_lane", f"job_type {job_type!r}; accepted: {', '.join(JOB_TYPES)}")
        audio = self.inside("audio_path", audio_path)
        if not audio.exists():
            raise LaneError("missing_audio_path", f"audio_path {audio_path!r} does not exist")
        out = ["--lane", job_type, "--audio", str(audio)]
        for key, value in options.items():
            if key not in OPTIONS:
                raise LaneError("config_invalid", f"unknown job option {key!r}; accepted: {', '.join(OPTIONS)}")
            if value is None or value is False:
                continue
            out += option_flag(key, value, self.inside(key, value) if key in PATH_OPTIONS else None)
        return out

    def submit(self, job_type: str, audio_path: str, **options: Any) -> dict[str, Any]:
        """Queue a run (local backend) or submit it to the scheduler (managed_job); its summary:
        run_id, state, engine, job_id, queue_position ... LaneError when the request is refused."""
        flags = self.flags(job_type, audio_path, options)
        run_id = new_run_id()
        rec = {"run_id": run_id, "job_type": job_type, "lane": job_type, "audio_path": audio_path,
               "options": dict(options), "flags": flags, "seq": time.time_ns(), "created_at": now_iso(),
               "backend": self.backend, "engine": "local" if self.backend == "local" else "slurm", "job_id": None,
               "state": "queued", "resume": False, "resumes": 0, "pid": None, "reason": None, "exit_code": None,
               "started_at": None, "finished_at": None, "cancel_requested": False}
        if self.backend == "managed_job":
            return self.submit_managed(rec)
        run_dir = id_path(self.root, "runs", "run id", run_id)
        run_dir.mkdir(parents=True)
        from .core.status import STATUS_COPY, STATUS_SCHEMA_ID

        atomic_write_json(run_dir / STATUS_COPY, {"schema": STATUS_SCHEMA_ID, "run_id": run_id, "lane": job_type,
                                                  "status": "queued", "reason": None, "backend": "local",
                                                  "engine": "local", "queued_at": now_iso(), "stages": {}})
        with self.locked():
            self.save(rec)
        self.wake.set()
        return self.summary(rec)

    def submit_managed(self, rec: dict[str, Any]) -> dict[str, Any]:
        """`lane run --backend managed_job --detach`: the job script is written and submitted."""
        from .backends.slurm_job import read_job, read_run_status

        run_id = str(rec["run_id"])
        cmd = [*self.lane_cmd(), "--backend", "managed_job", "--detach", *rec["flags"]]
        env = {**self.env, "LANE_RUN_ID": run_id, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=600,
                              stdin=subprocess.DEVNULL)
        job = read_job(self.root, run_id) or {}
        with self.locked():
            self.save(rec, job_id=job.get("job_id"), pid=None, submit_log=proc.stdout[-4000:] + proc.stderr[-2000:])
        if proc.returncode != 0 or not job.get("job_id"):
            st = read_run_status(self.root, run_id, str(rec["lane"])) or {}
            code = str(st.get("reason") or "scheduler_unavailable")
            with self.locked():
                self.save(rec, state=fail_status(code), reason=code, exit_code=proc.returncode, finished_at=now_iso())
            raise LaneError(code, str(st.get("detail") or proc.stderr.strip()[-300:] or "submission failed"))
        return self.status(run_id)

    def lane_cmd(self) -> list[str]:
        cmd = [sys.executable, "-m", "lane", "run", "--root", str(self.root)]
        return cmd + (["--config", str(self.config_path)] if self.config_path else [])

    # -------------------------------------------------------------------------------- the local worker
    def loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # the worker never dies of one bad record
                print(f"jobs: worker error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self.wake.wait(self.poll_s)
            self.wake.clear()

    def tick(self) -> None:
        """Finish what ended, then start queued runs in order while fewer than `concurrency` run."""
        for run_id, proc in list(self.procs.items()):  # reap children another process has finished for us
            if proc.poll() is not None and (self.record(run_id) or {}).get("state") != "running":
                self.procs.pop(run_id)
        with self.locked():
            recs = [r for r in self.records() if r.get("backend") == "local"]
            for rec in recs:
                if rec["state"] == "running" and not self.alive(rec):
                    self.finish(rec)
            running = sum(1 for r in recs if r["state"] == "running")
            for rec in (r for r in recs if r["state"] == "queued"):
                if running >= self.concurrency:
                    break
                self.start_run(rec)
                running += 1

    def start_run(self, rec: dict[str, Any]) -> None:
        run_id = str(rec["run_id"])
        cmd = [*self.lane_cmd(), "--backend", "local", *rec["flags"], "--resume", run_id]
        log = self.dir / f"{run_id}.log"
        env = {**self.env, "LANE_RUN_ID": run_id, "PYTHONUNBUFFERED": "1"}
        try:
            with open(log, "ab") as fh:
                proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            self.save(rec, state="failed", reason="job_failed", exit_code=exit_code("job_failed"),
                      finished_at=now_iso(), detail=f"cannot start the run: {exc}")
            return
        self.procs[run_id] = proc
        self.save(rec, state="running", pid=proc.pid, started_at=now_iso(), log=rel(log, self.root))

    def alive(self, rec: Mapping[str, Any]) -> bool:
        proc = self.procs.get(str(rec["run_id"]))
        if proc is not None:
            return proc.poll() is None
        return pid_runs(rec.get("pid"), str(rec["run_id"]))

    def finish(self, rec: dict[str, Any]) -> None:
        """A local run's process has ended: its state from its train_status (or cancelled)."""
        run_id = str(rec["run_id"])
        proc = self.procs.pop(run_id, None)
        st = final_status(self.root, run_id, str(rec["lane"])) or {}
        if rec.get("cancel_requested"):
            self.end(rec, "job_cancelled", "cancelled through the job API while it ran" +
                     (f" (the runner stopped with {st.get('reason')})" if st.get("reason") else ""))
        elif st:
            self.save(rec, state=st["status"], reason=st.get("reason"), exit_code=st.get("exit_code"),
                      finished_at=now_iso())
        elif int(rec.get("resumes") or 0) < 1:  # its process vanished (a restart?): resume it once
            self.save(rec, state="queued", resume=True, resumes=int(rec.get("resumes") or 0) + 1, pid=None)
        else:
            rc = proc.returncode if proc is not None else None
            self.end(rec, "job_failed", f"the run's process ended (exit {rc}) without the runner's final status")

    def end(self, rec: dict[str, Any], reason: str, detail: str) -> None:
        """End a run on the queue's authority: train_status, the record, a job_end ledger entry."""
        from .backends.slurm import failed
        from .backends.slurm_job import ledger_job, record_status, rerender

        out = failed(reason, detail)
        status = "cancelled" if reason == "job_cancelled" else out.status
        run_id, lane = str(rec["run_id"]), str(rec["lane"])
        record_status(self.root, lane, run_id, status=out.status, reason=reason, detail=detail,
                      exit_code=out.exit_code, finished_at=now_iso(), backend="local", engine="local")
        rerender(self.root, run_id, lane)
        self.save(rec, state=status, reason=reason, exit_code=out.exit_code, finished_at=now_iso(), detail=detail)
        ledger_job(self.root, run_id, lane, "job_end", out, f"local job {run_id}: {reason} ({detail})",
                   {"engine": "local", "job_id": None, "state": status})

    # -------------------------------------------------------------------------------- the API
    def status(self, run_id: str) -> dict[str, Any]:
        """The run's summary (state, queue position or scheduler job) with its train_status."""
        from .backends.slurm_job import read_job, read_run_status, refresh

        check_id("run id", run_id)
        rec = self.record(run_id)
        job = refresh(self.root, run_id, self.env) if rec is None or rec.get("engine") == "slurm" else None
        if job is not None and rec is not None and rec.get("state") not in FINAL:
            with self.locked():
                rec = self.save(self.record(run_id) or rec, state=job_state(job), job_id=job.get("job_id"),
                                reason=(job.get("outcome") or {}).get("reason"))
        lane = str((rec or job or {}).get("lane") or "")
        st = read_run_status(self.root, run_id, lane or None)
        if rec is None and st is None and read_job(self.root, run_id) is None:
            raise LaneError("run_not_found", f"no job or run {run_id!r} in {self.root}")
        out = self.summary(rec) if rec else {"run_id": run_id, "lane": lane or (st or {}).get("lane"),
                                             "state": job_state(job) if job else (st or {}).get("status"),
                                             "engine": "slurm" if job else (st or {}).get("engine") or "local"}
        out.update(train_status=st, job=job, job_state=(job or {}).get("state"))
        if job:
            out["job_id"] = job.get("job_id")
        return out

    def summary(self, rec: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("run_id", "job_type", "lane", "state", "engine", "job_id", "reason", "exit_code", "created_at",
                "started_at", "finished_at", "pid", "log")
        out = {k: rec.get(k) for k in keys}
        if rec.get("state") == "queued":
            queued = [r["run_id"] for r in self.records() if r.get("state") == "queued" and r.get("backend") == "local"]
            out["queue_position"] = queued.index(rec["run_id"]) + 1 if rec["run_id"] in queued else None
        return out

    def list(self) -> list[dict[str, Any]]:
        """Every job this workspace queued, oldest first (scheduler jobs refreshed)."""
        out = []
        for rec in self.records():
            out.append(self.status(str(rec["run_id"])) if rec.get("engine") == "slurm" and rec.get("state") not in FINAL
                       else self.summary(rec))
        return out

    def cancel(self, run_id: str, wait_s: float = 30.0) -> dict[str, Any]:
        """Cancel a queued or running run (scancel for a scheduler job); its status afterwards. A run
        that already ended is left as it is."""
        from .backends import slurm_job

        check_id("run id", run_id)
        rec = self.record(run_id)
        if (rec is None or rec.get("engine") == "slurm") and slurm_job.read_job(self.root, run_id):
            slurm_job.cancel(self.root, run_id, self.env, wait_s=wait_s)
            return self.status(run_id)
        if rec is None:
            raise LaneError("run_not_found", f"no job {run_id!r} in {self.dir}")
        with self.locked():
            rec = self.record(run_id) or rec
            if rec["state"] == "queued":
                self.end(rec, "job_cancelled", "cancelled through the job API before it started")
            elif rec["state"] == "running":
                self.save(rec, cancel_requested=True)
                signal_run(rec.get("pid"), run_id)
        if rec["state"] == "running":
            self.await_end(run_id, wait_s)
        return self.status(run_id)

    def await_end(self, run_id: str, wait_s: float) -> None:
        """Wait for a signalled run's process to end, finishing it here when no worker does."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            rec = self.record(run_id) or {}
            if rec.get("state") in FINAL:
                return
            if self.thread is None and not self.alive(rec):
                with self.locked():
                    rec = self.record(run_id) or rec
                    if rec.get("state") == "running":
                        self.finish(rec)
                return
            self.wake.set()
            time.sleep(0.1)

    def wait(self, run_id: str, timeout_s: float = 600.0) -> dict[str, Any]:
        """Poll `status` until the run has ended (or `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            out = self.status(run_id)
            if out.get("state") in FINAL or time.monotonic() > deadline:
                return out
            time.sleep(0.2)

    def close(self) -> None:
        """Stop the worker. Runs it started keep going; the next Jobs on this workspace adopts them."""
        self.stop.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None

    def __enter__(self) -> Jobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def option_flag(key: str, value: Any, path: Path | None) -> list[str]:
    """One request option as `lane run` flags (identifiers and enums checked)."""
    flag = OPTIONS[key]
    if key == "allow_from_scratch":
        return [flag] if value is True else []
    if path is not None:
        return [flag, str(path)]
    if key in ("profile", "voice_profile_id"):
        return [flag, check_id("profile" if key == "profile" else "voice profile id", value)]
    if key == "input_format" and value not in INPUT_FORMATS:
        raise LaneError("config_invalid", f"input_format {value!r}; accepted: {', '.join(INPUT_FORMATS)}")
    if key == "stages":
        from .core.config import STAGES

        names = value if isinstance(value, list) else str(value).split(",")
        if not names or any(str(n).strip() not in STAGES for n in names):
            raise LaneError("config_invalid", f"stages {value!r}; known: {', '.join(STAGES)}")
        return [flag, ",".join(str(n).strip() for n in names)]
    if key == "expected_head" and not (isinstance(value, str) and value.isalnum()):
        raise LaneError("config_invalid", f"expected_head {value!r} is not a commit sha")
    return [flag, str(value)]


def final_status(root: Path, run_id: str, lane: str) -> dict[str, Any] | None:
    """The run's final train_status (its copy, or the lane's file when the run failed before its
    runner started), None while it is not final."""
    from .backends.slurm import runner_final
    from .backends.slurm_job import read_run_status
    from .core.status import read_train_status

    candidates = [read_run_status(root, run_id, None)]
    with contextlib.suppress(OSError, ValueError):
        candidates.append(read_train_status(root, lane))
    for st in candidates:
        final = runner_final(st, run_id)
        if final is not None:
            return dict(final)
    return None


def job_state(job: Mapping[str, Any]) -> str:
    """A scheduler job's state in the queue's words."""
    out = job.get("outcome") or {}
    if job.get("settled") and out:
        return "cancelled" if out.get("reason") == "job_cancelled" else str(out.get("status"))
    return "queued" if job.get("state") in ("PENDING", "SUBMITTING", None) else "running"


def pid_runs(pid: Any, run_id: str) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line names the run."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace")
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X") and run_id in cmdline.split("\0")


def signal_run(pid: Any, run_id: str, sig: int = signal.SIGTERM) -> None:
    """SIGTERM the run's process group (the runner and its kernels): the runner ends `interrupted`."""
    if pid_runs(pid, run_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), sig)
