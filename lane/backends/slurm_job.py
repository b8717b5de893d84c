"""The life of one run's Slurm job: submit, follow, settle, and the commands that look at it later
(`lane status RUN_ID`, `lane cancel RUN_ID`, the job API). The rules themselves are in slurm.py.

Everything about the job lives with the run, in runs/<run_id>/slurm/:

    attempt-<n>.sbatch  the job script of the n-th submission (its sha256 in train_status and the ledger)
    probe, ack-<job>    the token the submitter wrote and the job's acknowledgement that it read it back
    slurm-<job>.out     the job's output (--open-mode=append: a requeued job adds to it)
    job.json            engine, job id, state, requeue policy, and the outcome once settled

train_status is written (through lane.core.status.update, its one writer) by the submitter (running,
engine, job id, script hash; the job is its owner, so the scheduler answers for its liveness), by the runner inside
the job as it goes, and once more when the job has ended ("settled": the scheduler's verdict, or
the runner's own). Only the submitter and the settle step write train_status while the runner is not
running, so they never race it. Every submission and every end is a ledger entry (job_submit, job_end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict, Unpack

from ..core import gpu, protocol
from ..core import status as run_status
from ..core.fsutil import atomic_write_json, atomic_write_text, read_json, rel, sha256_file
from ..core.ids import id_path
from ..core.reasons import LaneError
from ..core.stage import now_iso
from .base import RunContext, inner_args
from .slurm import (
    PROBE_FILE,
    JobInfo,
    JobSpec,
    Outcome,
    SlurmClient,
    SlurmOptions,
    ack_path,
    failed,
    map_outcome,
    next_action,
    output_path,
    render_script,
)

SLURM_DIR = "slurm"
JOB_FILE = "job.json"
TAIL_BYTES = 65536
Say = Callable[[str], None]


# ------------------------------------------------------------------------------------------ records
def slurm_dir(root: Path, run_id: str) -> Path:
    return id_path(root, "runs", "run id", run_id) / SLURM_DIR


class SlurmJob(TypedDict, total=False):
    """runs/<run_id>/slurm/job.json: the run's current Slurm job."""

    engine: str  # slurm
    lane: str
    job_id: str
    attempt: int
    script: str
    script_sha256: str
    output: str
    submitted_at: str
    state: str  # the scheduler's JobState, as last seen
    info: dict[str, Any] | None  # JobInfo.as_dict()
    settled: bool
    outcome: dict[str, Any] | None  # Outcome.as_dict(), once settled
    policy: dict[str, Any]
    requeued_by_lane: int
    checked_at: str
    finished_at: str
    updated_at: str
    scheduler: str  # "unreachable" when the controller did not answer (never written)


def read_job(root: Path, run_id: str) -> SlurmJob | None:
    """runs/<run_id>/slurm/job.json, or None when the run was never submitted to a scheduler."""
    path = slurm_dir(root, run_id) / JOB_FILE
    with contextlib.suppress(OSError, ValueError):
        data = read_json(path)
        if isinstance(data, dict):
            job: SlurmJob = data  # type: ignore[assignment]
            return job
    return None


def update_job(root: Path, run_id: str, **fields: Unpack[SlurmJob]) -> SlurmJob:
    job = read_job(root, run_id) or {}
    job.update(fields)
    job["updated_at"] = now_iso()
    atomic_write_json(slurm_dir(root, run_id) / JOB_FILE, job)
    return job


def ledger_job(root: Path, run_id: str, lane: str | None, action: str, outcome: Outcome | None, summary: str,
               job: Mapping[str, Any], artifacts: list[dict[str, str]] | None = None) -> None:
    """A job_submit / job_end entry in the signed ledger."""
    from ..core.ledger import action_entry, append
    from ..core.paths import commit_of

    status, reason = ("submitted", "ok") if outcome is None else (outcome.status, outcome.reason)
    append(root, action_entry(run_id=run_id, action=action, lane=lane, status=status, reason=reason, summary=summary,
                              commit_sha=commit_of(root).sha or "unknown", artifacts=artifacts or [],
                              job={k: job.get(k) for k in ("engine", "job_id", "attempt", "script", "script_sha256",
                                                           "state")}))


def policy(opts: SlurmOptions) -> dict[str, Any]:
    """What later commands (status, cancel) need of the options, kept in job.json."""
    return {"requeue_on": list(opts.requeue_on), "max_requeues": opts.max_requeues,
            "submit_timeout_s": opts.submit_timeout_s, "poll_s": opts.poll_s, "unreachable_s": opts.unreachable_s}


def options_of(job: Mapping[str, Any]) -> SlurmOptions:
    return SlurmOptions.from_config(dict(job.get("policy") or {}))


# ------------------------------------------------------------------------------------------ submit
def job_env(ctx: RunContext, opts: SlurmOptions) -> list[tuple[str, str]]:
    """Variables the script exports (everything else travels with --export=ALL)."""
    s = ctx.settings
    env = [("PYTHONUNBUFFERED", "1"), ("MPLBACKEND", "Agg"), ("LANE_RUN_ID", ctx.run_id),
           ("LANE_REQUIRE_CLEAN_TREE", "1" if s.require_clean_tree else "0")]
    if s.kernel_name:
        env.append(("LANE_KERNEL", s.kernel_name))
    if gpu.slurm_asks(opts.gres, opts.gpus):  # the runner checks the node really gives it one
        env.append((gpu.ENV, f"slurm gres={opts.gres or ''} gpus={opts.gpus or ''}"))
    anchors = ("LANE_SIGNING_KEY", "LANE_TRUSTED_KEYS", "LANE_WITNESS_DIR", "XDG_CONFIG_HOME")  # outside the workspace
    for var in (*anchors, *(("PYTHONPATH",) if opts.container is None else ())):
        if ctx.env.get(var):
            env.append((var, ctx.env[var]))
    return env


def job_args(ctx: RunContext) -> list[str]:
    """`lane run --backend local ... --resume RUN_ID`: every resolved setting as a flag."""
    args = inner_args(ctx.settings, ctx.root, True, ctx.run_id)
    if ctx.config_path is not None:
        cfg = ctx.config_path.resolve() if ctx.config_path.exists() else ctx.root / ctx.config_path
        args += ["--config", str(cfg)]
    return args


def write_script(ctx: RunContext, opts: SlurmOptions, sdir: Path) -> tuple[Path, str, int]:
    """The probe and the job script of the next attempt; (script, sha256, attempt)."""
    attempt = 1 + len(list(sdir.glob("attempt-*.sbatch")))
    token = secrets.token_hex(16)
    atomic_write_text(sdir / PROBE_FILE, token + "\n")
    spec = JobSpec(ctx.run_id, ctx.settings.lane, ctx.root, sdir, tuple(job_args(ctx)), opts.python or sys.executable,
                   token, tuple(job_env(ctx, opts)))
    script = sdir / f"attempt-{attempt}.sbatch"
    atomic_write_text(script, render_script(opts, spec))
    os.chmod(script, 0o755)
    return script, sha256_file(script), attempt


def check_resubmit(ctx: RunContext, client: SlurmClient) -> None:
    """--resume of a run: it must exist, and its previous job must have ended (two runners on one
    run directory would overwrite each other)."""
    if not ctx.resume:
        return
    if not id_path(ctx.root, "runs", "run id", ctx.run_id).is_dir():
        raise LaneError("run_not_found", f"runs/{ctx.run_id} does not exist")
    job = read_job(ctx.root, ctx.run_id)
    if not job or job.get("settled") or not job.get("job_id"):
        return
    info = client.query(str(job["job_id"]))
    if info is not None and info.terminal:
        settle(ctx.root, ctx.run_id, info)  # the previous job's end, recorded before the next one starts
    elif info is not None and info.state != "UNKNOWN":
        raise LaneError("config_invalid", f"run {ctx.run_id} is still slurm job {job['job_id']} ({info.state}): "
                        f"`lane cancel {ctx.run_id}` or wait for it before resubmitting")


def submit(ctx: RunContext, opts: SlurmOptions, client: SlurmClient) -> SlurmJob:
    """Write the script, `sbatch --parsable` it, record the job (train_status, job.json, ledger)."""
    client.check()
    root, run_id, lane = ctx.root, ctx.run_id, ctx.settings.lane
    check_resubmit(ctx, client)
    sdir = slurm_dir(root, run_id)
    sdir.mkdir(parents=True, exist_ok=True)
    script, sha, attempt = write_script(ctx, opts, sdir)
    run_status.update(root, lane, run_id, status="running", reason=None, detail="", exit_code=None, finished_at=None,
                      backend="managed_job", profile=ctx.settings.profile, engine="slurm", job_id=None,
                      owner={"slurm_job_id": None}, job_state="SUBMITTING", job_script=rel(script, root),
                      job_script_sha256=sha, submitted_at=now_iso())
    try:
        job_id = client.submit(script, root)
    except LaneError as err:
        run_status.update(root, lane, run_id, status=err.status, reason=err.code, detail=err.detail,
                          exit_code=err.exit_code, job_state="NOT_SUBMITTED", finished_at=now_iso())
        raise
    out = output_path(sdir, job_id)
    job: SlurmJob = {"engine": "slurm", "lane": lane, "job_id": job_id, "attempt": attempt, "script": rel(script, root),
                     "script_sha256": sha, "output": rel(out, root), "submitted_at": now_iso(), "state": "PENDING",
                     "info": None, "settled": False, "outcome": None, "policy": policy(opts), "updated_at": now_iso()}
    atomic_write_json(sdir / JOB_FILE, job)  # a new submission starts a fresh record
    run_status.update(root, lane, run_id, job_id=job_id, job_state="PENDING", job_output=rel(out, root),
                      owner={"slurm_job_id": job_id})
    ledger_job(root, run_id, lane, "job_submit", None, f"slurm job {job_id} submitted ({rel(script, root)})", job,
               [{"kind": "job_script", "path": rel(script, root), "sha256": sha}])
    ctx.log.say(f"slurm: submitted job {job_id}: {rel(script, root)} (sha256 {sha[:12]}), output {rel(out, root)}")
    return job


# ------------------------------------------------------------------------------------------ settle
def tail_text(path: Path, max_bytes: int = TAIL_BYTES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - max_bytes))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def settle(root: Path, run_id: str, info: JobInfo, outcome: Outcome | None = None, note: str = "") -> Outcome:
    """The job has ended: decide the run's outcome once (later calls get the same answer), write
    train_status and a job_end ledger entry. Safe against a follower and `lane cancel` racing."""
    from filelock import FileLock

    sdir = slurm_dir(root, run_id)
    with FileLock(str(sdir / ".settle.lock"), timeout=120):
        job = read_job(root, run_id) or {}
        settled = job.get("outcome")
        if job.get("settled") and settled:
            return Outcome(**settled)
        lane = str(job.get("lane") or "unknown")
        if outcome is None:
            runner = run_status.final(run_status.read(root, run_id, lane), run_id)
            outcome = map_outcome(info, runner, ack_seen=ack_path(sdir, info.job_id).exists(),
                                  output=tail_text(output_path(sdir, info.job_id)))
        if note:
            outcome = dataclasses.replace(outcome, detail=f"{outcome.detail} ({note})")
        fields: run_status.RunStatus = {"backend": "managed_job", "engine": "slurm", "job_id": info.job_id,
                             "job_state": info.state, "job_exit_code": info.exit_code, "job_restarts": info.restarts}
        if not outcome.from_runner:
            fields.update({"status": outcome.status, "reason": outcome.reason, "detail": outcome.detail,
                           "exit_code": outcome.exit_code, "finished_at": now_iso()})
        run_status.update(root, lane, run_id, **fields)
        if not outcome.from_runner:
            rerender(root, run_id, lane)
        job = update_job(root, run_id, state=info.state, info=info.as_dict(), settled=True, outcome=outcome.as_dict(),
                         finished_at=now_iso())
        ledger_job(root, run_id, lane, "job_end", outcome, f"slurm job {info.job_id} ended {info.state}: "
                   f"{outcome.reason}" + (f" ({outcome.detail})" if outcome.detail else ""), job)
    return outcome


def rerender(root: Path, run_id: str, lane: str) -> None:
    """The readiness report again, so it names the scheduler's verdict rather than what the runner
    wrote when it was stopped (nothing to render when the runner never started)."""
    if not (id_path(root, "runs", "run id", run_id) / "settings.json").is_file():
        return
    try:
        from ..report import render_report

        paths = render_report(root, run_id)
        run_status.update(root, lane, run_id, report_path=rel(paths[0], root))
    except Exception as exc:  # a report problem never hides the outcome
        print(f"slurm: could not re-render the readiness report: {type(exc).__name__}: {exc}", file=sys.stderr)


def advance(root: Path, run_id: str, info: JobInfo, opts: SlurmOptions, client: SlurmClient,
            say: Say) -> Outcome | None:
    """One step on what the scheduler says: requeue once after a node failure or preemption, give up
    after that, settle any other end. None while the job is still on its way."""
    action = next_action(info, opts)
    if action == "wait":
        return None
    if action == "requeue":
        said = client.requeue(info.job_id)
        if not said:
            say(f"slurm: job {info.job_id} ended {info.state}: requeued (restart {info.restarts + 1} of at most "
                f"{opts.max_requeues}); it resumes after the last stage that passed")
            update_job(root, run_id, requeued_by_lane=int((read_job(root, run_id) or {}).get("requeued_by_lane") or 0) + 1)
            return None
        return settle(root, run_id, info, note=f"requeue refused: {said}")
    if action == "give_up":
        if not info.terminal:
            client.cancel(info.job_id)  # Slurm requeued it on its own more often than allowed
        return settle(root, run_id, info, failed("job_failed", f"slurm job {info.job_id} {info.state} after "
                                                  f"{info.restarts} requeue(s): not requeued again"))
    return settle(root, run_id, info)


# ------------------------------------------------------------------------------------------ follow
class Tail:
    """New complete lines of a growing file (the job's output), from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.buf = b""

    def read(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except OSError:
            return []
        if size < self.pos:  # truncated (a requeue without --open-mode=append): start again
            self.pos, self.buf = 0, b""
        if size == self.pos:
            return []
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read(size - self.pos)
        self.pos += len(data)
        *lines, self.buf = (self.buf + data).split(b"\n")
        return [line.decode("utf-8", "replace").rstrip("\r") for line in lines]


class Echo:
    """The job's output re-emitted as a local run prints it: every line live, PROGRESS driving the Rich
    bar on a TTY; the job's own [tts-prod] line held back until the scheduler says the job ended."""

    def __init__(self) -> None:
        from ..runner.stream import ProgressBar, want_bar

        self.bar = ProgressBar() if want_bar(sys.stdout) else None
        self.final: str | None = None
        self.counts = {"PROGRESS": 0, "STATS": 0, "ARTIFACT": 0}

    def line(self, text: str) -> None:
        parsed = protocol.parse_line(text)
        if isinstance(parsed, protocol.Status):
            self.final = text
            return
        kind = {protocol.Progress: "PROGRESS", protocol.Stats: "STATS", protocol.Artifact: "ARTIFACT"}.get(type(parsed))
        if kind:
            self.counts[kind] += 1
        if self.bar is None:
            print(text, flush=True)
            return
        self.bar.print(text)
        if isinstance(parsed, protocol.Progress):
            self.bar.update(parsed)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


class Follower:
    """Tail the job's output and poll the scheduler until the job has ended; print the final line."""

    def __init__(self, ctx: RunContext, opts: SlurmOptions, client: SlurmClient, job: Mapping[str, Any]) -> None:
        self.ctx, self.opts, self.client = ctx, opts, client
        self.job_id = str(job["job_id"])
        self.sdir = slurm_dir(ctx.root, ctx.run_id)
        self.tail = Tail(output_path(self.sdir, self.job_id))
        self.echo = Echo()
        self.state = str(job.get("state") or "PENDING")
        self.restarts = 0
        self.next_poll = 0.0
        self.silent_since: float | None = None

    def run(self) -> int:
        try:
            while True:
                self.pump()
                info = self.poll()
                outcome = None if info is None else advance(self.ctx.root, self.ctx.run_id, info, self.opts,
                                                            self.client, self.ctx.log.say)
                if outcome is None and info is None and self.lost():
                    outcome = self.unreachable()
                if outcome is not None:
                    return self.finish(outcome)
                time.sleep(0.2)
        except KeyboardInterrupt:
            self.echo.close()
            self.ctx.log.say(f"slurm: stopped following job {self.job_id}; it keeps running. "
                             f"`lane status {self.ctx.run_id}` shows it, `lane cancel {self.ctx.run_id}` ends it")
            return 130
        finally:
            self.echo.close()

    def pump(self) -> None:
        had_final = self.echo.final is not None
        for line in self.tail.read():
            self.echo.line(line)
        if self.echo.final is not None and not had_final:
            self.next_poll = min(self.next_poll, time.monotonic())  # the job says it is done: ask now

    def poll(self) -> JobInfo | None:
        """The job's state when it is time to ask (quickly once its final line is out), else None."""
        now = time.monotonic()
        if now < self.next_poll:
            return None
        self.next_poll = now + (0.25 if self.echo.final else self.opts.poll_s)
        info = self.client.query(self.job_id)
        if info is None or info.state == "UNKNOWN":  # no answer, or a job the scheduler no longer knows
            self.silent_since = self.silent_since or now
            return None
        self.silent_since = None
        if info.restarts > self.restarts:
            self.restarts = info.restarts
            self.echo.final = None  # the interrupted attempt's line is not the run's end
            self.ctx.log.say(f"slurm: job {self.job_id} was requeued (restart {info.restarts})")
        if info.state != self.state:
            self.state = info.state
            self.ctx.log.say(f"slurm: job {self.job_id} {info.state}" + (f" on {info.node}" if info.node else "")
                             + (f" ({info.reason})" if info.reason not in ("", "None") else ""))
            update_job(self.ctx.root, self.ctx.run_id, state=info.state, info=info.as_dict())
        return info if info.terminal or info.restarts > self.opts.max_requeues else None

    def lost(self) -> bool:
        return self.silent_since is not None and time.monotonic() - self.silent_since > self.opts.unreachable_s

    def unreachable(self) -> Outcome:
        """Out of touch with the controller for too long: say so; the job is left as it is (unsettled),
        so `lane status RUN_ID` can still settle it later."""
        out = failed("scheduler_unavailable", f"no answer from the Slurm controller for {self.opts.unreachable_s:.0f} s "
                     f"while following job {self.job_id}; it may still be running: `lane status {self.ctx.run_id}`")
        run_status.update(self.ctx.root, self.ctx.settings.lane, self.ctx.run_id, status=out.status,
                          reason=out.reason, detail=out.detail, exit_code=out.exit_code)
        return out

    def finish(self, outcome: Outcome) -> int:
        self.wait_for_final(outcome)
        self.echo.close()
        run_id, lane = self.ctx.run_id, self.ctx.settings.lane
        if outcome.from_runner:
            line = self.echo.final or protocol.format_line(protocol.Status(outcome.status, outcome.reason, run_id, lane))
            print(line, flush=True)  # the job's own line: the runner inside already logged it
            return outcome.exit_code
        self.ctx.log.say(f"slurm: {outcome.reason}: {outcome.detail}")
        protocol.status(outcome.status, outcome.reason, run_id, lane)
        return outcome.exit_code

    def wait_for_final(self, outcome: Outcome, grace_s: float = 10.0) -> None:
        """The job's last lines (and its [tts-prod] line, when it printed one) may reach a network
        filesystem a little after the scheduler says it ended."""
        deadline = time.monotonic() + (grace_s if outcome.from_runner else 0.5)
        self.pump()
        while self.echo.final is None and time.monotonic() < deadline:
            time.sleep(0.2)
            self.pump()
        for line in ([self.tail.buf.decode("utf-8", "replace")] if self.tail.buf.strip() else []):
            self.echo.line(line)


# ------------------------------------------------------------------------------------------ later commands
def refresh(root: Path, run_id: str, env: Mapping[str, str] | None = None) -> SlurmJob | None:
    """A run's job as the scheduler sees it now (job.json updated); a job that ended is settled, one that
    a node failure ended is requeued once, as the follower would. None when the run is no Slurm job."""
    job = read_job(root, run_id)
    if not job or job.get("engine") != "slurm" or not job.get("job_id") or job.get("settled"):
        return job if job and job.get("engine") == "slurm" else None
    opts = options_of(job)
    client = SlurmClient(env, min(opts.submit_timeout_s, 30.0))
    info = client.query(str(job["job_id"]))
    if info is None:
        return {**job, "scheduler": "unreachable"}
    update_job(root, run_id, state=info.state, info=info.as_dict(), checked_at=now_iso())
    if info.state != "UNKNOWN":
        advance(root, run_id, info, opts, client, lambda _text: None)
    return read_job(root, run_id)


def cancel(root: Path, run_id: str, env: Mapping[str, str] | None = None, wait_s: float = 30.0) -> Outcome | None:
    """`scancel` the run's job, wait for the scheduler to end it, settle it (job_cancelled, a ledger
    entry). The run's outcome, or None when the job has not ended within `wait_s`."""
    job = read_job(root, run_id)
    if not job or not job.get("job_id"):
        raise LaneError("run_not_found", f"run {run_id} has no scheduler job")
    settled = job.get("outcome")
    if job.get("settled") and settled:
        return Outcome(**settled)
    client = SlurmClient(env, min(options_of(job).submit_timeout_s, 30.0))
    job_id = str(job["job_id"])
    client.cancel(job_id)
    deadline = time.monotonic() + wait_s
    info = client.query(job_id)
    while (info is None or not info.terminal) and time.monotonic() < deadline:
        time.sleep(0.2)
        info = client.query(job_id)
    if info is None or not info.terminal:
        return None
    return settle(root, run_id, info, note="cancelled with lane cancel" if info.state == "CANCELLED" else "")


def last_lines(root: Path, job: Mapping[str, Any], n: int = 10) -> list[str]:
    """The last `n` lines of the job's output."""
    path = root / str(job.get("output") or "")
    return tail_text(path).splitlines()[-n:] if job.get("output") and path.is_file() else []


def describe(job: Mapping[str, Any]) -> str:
    info = job.get("info") or {}
    out = job.get("outcome") or {}
    text = f"job: slurm {job.get('job_id')} {job.get('state')}"
    if info.get("node"):
        text += f" on {info['node']}"
    if info.get("reason") not in (None, "", "None"):
        text += f" ({info['reason']})"
    if info.get("restarts"):
        text += f", restarts {info['restarts']}"
    if info.get("run_time"):
        text += f", run time {info['run_time']}" + (f" of {info['time_limit']}" if info.get("time_limit") else "")
    if out:
        text += f"; outcome {out.get('status')} {out.get('reason')}"
    if job.get("scheduler") == "unreachable":
        text += "; the controller does not answer (state as last seen)"
    return text + f"\nscript: {job.get('script')} (sha256 {str(job.get('script_sha256'))[:12]}); output: {job.get('output')}"


# ------------------------------------------------------------------------------------------ the backend
def run(ctx: RunContext, cfg: Mapping[str, Any]) -> int:
    """managed_job with engine slurm: submit, then follow until the job ends (or return at once with
    --detach). Returns the exit code; the final line is the job's own, or the scheduler's verdict."""
    opts = SlurmOptions.from_config(cfg)
    client = SlurmClient(ctx.env or None, opts.submit_timeout_s)
    job = submit(ctx, opts, client)
    if ctx.detach:
        ctx.log.say(f"detached: run {ctx.run_id} is slurm job {job['job_id']}; `lane status {ctx.run_id}` follows it, "
                    f"`lane cancel {ctx.run_id}` ends it")
        print(f"run_id={ctx.run_id} job_id={job['job_id']} engine=slurm state={job['state']}", flush=True)
        return 0
    return Follower(ctx, opts, client, job).run()
