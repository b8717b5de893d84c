"""The local dispatcher: a worker thread starts queued runs in order, at most `concurrency` at a time,
each as a `lane run --backend local --resume RUN_ID` subprocess in its own session (so a server
restart does not kill it: the next dispatcher adopts it by its pid, and re-queues once a run whose
process vanished without a final status). Its output goes to artifacts/jobs/<run_id>.log."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core import status as run_status
from ..core.fsutil import rel
from ..core.reasons import exit_code
from ..core.stage import now_iso
from .store import FINAL, JobRecord, JobStore


class LocalDispatcher:
    def __init__(self, root: Path, store: JobStore, env: dict[str, str], lane_cmd: Callable[[], list[str]],
                 concurrency: int, poll_s: float) -> None:
        self.root, self.store, self.env, self.lane_cmd = root, store, env, lane_cmd
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.loop, name="lane-jobs", daemon=True)
        self.thread.start()

    def queue(self, rec: JobRecord) -> None:
        """A new run: its run directory with a queued status, its record, and the worker woken."""
        from ..core.ids import id_path

        id_path(self.root, "runs", "run id", rec.run_id).mkdir(parents=True)
        run_status.update(self.root, rec.lane, rec.run_id, status="queued", reason=None, backend="local",
                          engine="local", queued_at=now_iso(), stages={})
        with self.store.locked():
            self.store.save(rec)
        self.wake.set()

    # ------------------------------------------------------------------------------------ the worker
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
            if proc.poll() is not None and getattr(self.store.get(run_id), "state", None) != "running":
                self.procs.pop(run_id)
        with self.store.locked():
            recs = [r for r in self.store.all() if r.backend == "local"]
            for rec in recs:
                if rec.state == "running" and not self.alive(rec):
                    self.finish(rec)
            running = sum(1 for r in recs if r.state == "running")
            for rec in (r for r in recs if r.state == "queued"):
                if running >= self.concurrency:
                    break
                self.start_run(rec)
                running += 1

    def start_run(self, rec: JobRecord) -> None:
        cmd = [*self.lane_cmd(), "--backend", "local", *rec.flags, "--resume", rec.run_id]
        log = self.store.dir / f"{rec.run_id}.log"
        env = {**self.env, "LANE_RUN_ID": rec.run_id, "PYTHONUNBUFFERED": "1"}
        try:
            with open(log, "ab") as fh:
                proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            self.store.save(rec, state="failed", reason="job_failed", exit_code=exit_code("job_failed"),
                            finished_at=now_iso(), detail=f"cannot start the run: {exc}")
            return
        self.procs[rec.run_id] = proc
        self.store.save(rec, state="running", pid=proc.pid, started_at=now_iso(), log=rel(log, self.root))

    def alive(self, rec: JobRecord) -> bool:
        proc = self.procs.get(rec.run_id)
        if proc is not None:
            return proc.poll() is None
        return pid_runs(rec.pid, rec.run_id)

    def finish(self, rec: JobRecord) -> None:
        """A local run's process has ended: its state from its train_status (or cancelled)."""
        proc = self.procs.pop(rec.run_id, None)
        st = final_status(self.root, rec.run_id, rec.lane) or {}
        if rec.cancel_requested:
            self.end(rec, "job_cancelled", "cancelled through the job API while it ran" +
                     (f" (the runner stopped with {st.get('reason')})" if st.get("reason") else ""))
        elif st:
            self.store.save(rec, state=st["status"], reason=st.get("reason"), exit_code=st.get("exit_code"),
                            finished_at=now_iso())
        elif rec.resumes < 1:  # its process vanished (a restart, kill -9?): resume it once
            self.store.save(rec, state="queued", resume=True, resumes=rec.resumes + 1, pid=None)
        else:
            rc = proc.returncode if proc is not None else None
            self.end(rec, "job_failed", f"the run's process ended (exit {rc}) without the runner's final status")

    def end(self, rec: JobRecord, reason: str, detail: str) -> None:
        """End a run on the queue's authority: train_status, the record, a job_end ledger entry."""
        from ..backends.slurm import failed
        from ..backends.slurm_job import ledger_job, rerender

        out = failed(reason, detail)
        state = "cancelled" if reason == "job_cancelled" else out.status
        run_status.update(self.root, rec.lane, rec.run_id, status=out.status, reason=reason, detail=detail,
                          exit_code=out.exit_code, finished_at=now_iso(), backend="local", engine="local")
        rerender(self.root, rec.run_id, rec.lane)
        self.store.save(rec, state=state, reason=reason, exit_code=out.exit_code, finished_at=now_iso(), detail=detail)
        ledger_job(self.root, rec.run_id, rec.lane, "job_end", out, f"local job {rec.run_id}: {reason} ({detail})",
                   {"engine": "local", "job_id": None, "state": state})

    # ------------------------------------------------------------------------------------ cancel
    def cancel(self, rec: JobRecord, wait_s: float) -> None:
        """Cancel a queued run at once; signal a running one and wait for its process to end."""
        with self.store.locked():
            rec = self.store.get(rec.run_id) or rec
            if rec.state == "queued":
                self.end(rec, "job_cancelled", "cancelled through the job API before it started")
            elif rec.state == "running":
                self.store.save(rec, cancel_requested=True)
                signal_run(rec.pid, rec.run_id)
        if rec.state == "running":
            self.await_end(rec.run_id, wait_s)

    def await_end(self, run_id: str, wait_s: float) -> None:
        """Wait for a signalled run's process to end, finishing it here when no worker does."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            rec = self.store.get(run_id)
            if rec is None or rec.state in FINAL:
                return
            if self.thread is None and not self.alive(rec):
                with self.store.locked():
                    rec = self.store.get(run_id) or rec
                    if rec.state == "running":
                        self.finish(rec)
                return
            self.wake.set()
            time.sleep(0.1)

    def close(self) -> None:
        """Stop the worker. Runs it started keep going; the next dispatcher on this workspace adopts them."""
        self.stop.set()
        self.wake.set()
        if self.thread is not None:
            self.thread.join(timeout=10)
            self.thread = None


def final_status(root: Path, run_id: str, lane: str) -> run_status.RunStatus | None:
    """The run's final train_status (its copy, or the lane's file when the run failed before its
    runner started), None while it is not final."""
    return run_status.final(run_status.read(root, run_id, lane), run_id)


def pid_runs(pid: Any, run_id: str) -> bool:
    """Whether `pid` is a live (not zombie) process whose command line names the run."""
    import psutil

    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and run_id in proc.cmdline()
    except (psutil.Error, OSError):
        return False


def signal_run(pid: Any, run_id: str, sig: int = signal.SIGTERM) -> None:
    """SIGTERM the run's process group (the runner and its kernels): the runner ends `interrupted`."""
    if pid_runs(pid, run_id):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), sig)
