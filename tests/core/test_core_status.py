"""Run status (lane/core/status.py): one typed record per run, written only through `update`, mirrored
into the lane-wide file by one rule, and a running record whose owner is gone reads `lost`.

The end-to-end case is real: `lane run` on a fixture notebook that waits for a file, `kill -9` once it
says (a PROGRESS line) that it is inside its waiting cell, then `lane status` and `lane run --resume`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil
from cli_runs import clean_env, run_lane
from lane_runs import install_notebooks

from lane.core import status
from lane.core.reasons import exit_code

LANE = "tts_prod_train_nemo"
RUNNER_OK = {"run_id": "R", "status": "completed", "reason": "ok", "detail": "", "exit_code": 0}


def dead_owner() -> dict[str, Any]:
    """This machine, a process that has ended (its pid reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return {**status.this_owner(), "pid": proc.pid, "started": started}


def test_runner_status_must_be_this_runs_and_final() -> None:
    assert status.final(RUNNER_OK, "R") is RUNNER_OK
    assert status.final(RUNNER_OK, "other") is None
    assert status.final({**RUNNER_OK, "status": "running", "exit_code": None}, "R") is None
    assert {"completed", "blocked", "failed"} == status.TERMINAL


def test_a_new_run_starts_a_fresh_record_and_keeps_its_own_copy(tmp_path: Path) -> None:
    (tmp_path / "runs" / "A").mkdir(parents=True)
    status.update(tmp_path, LANE, "A", status="running", detail="first", owner=status.this_owner())
    status.update(tmp_path, LANE, "A", last_stats={"n": 1})
    a = json.loads((tmp_path / "runs" / "A" / "train_status.json").read_text())
    assert (a["run_id"], a["lane"], a["status"], a["detail"], a["last_stats"]) == ("A", LANE, "running", "first", {"n": 1})
    assert a["schema"] == status.STATUS_SCHEMA_ID
    # no run directory (an early failure): the lane's file is its only record
    status.update(tmp_path, "other_lane", "B", status="failed", reason="missing_audio_path", exit_code=3)
    b = status.read(tmp_path, "B", "other_lane")
    assert b is not None and (b["status"], b["detail"], b["stages"]) == ("failed", "", {})
    assert not (tmp_path / "runs" / "B").exists()


def test_a_running_run_holds_the_lane_file_until_it_ends_or_is_lost(tmp_path: Path) -> None:
    for run in ("A", "B", "C"):
        (tmp_path / "runs" / run).mkdir(parents=True)
    lane_file = status.train_status_path(tmp_path, LANE)
    status.update(tmp_path, LANE, "A", status="running", owner=status.this_owner())  # alive: this process
    status.update(tmp_path, LANE, "B", status="running", owner=status.this_owner())
    assert json.loads(lane_file.read_text())["run_id"] == "A"
    assert status.read(tmp_path, "B")["status"] == "running"
    status.update(tmp_path, LANE, "A", status="completed", reason="ok", exit_code=0)
    status.update(tmp_path, LANE, "B", detail="still going")
    assert json.loads(lane_file.read_text())["run_id"] == "B"
    status.update(tmp_path, LANE, "C", status="queued")  # a queued run is never mirrored
    assert json.loads(lane_file.read_text())["run_id"] == "B"
    status.update(tmp_path, LANE, "B", owner=dead_owner())  # B's process is gone: C takes the file over
    status.update(tmp_path, LANE, "C", status="running", owner=status.this_owner())
    assert json.loads(lane_file.read_text())["run_id"] == "C"


def test_observed_reads_lost_only_when_the_owner_is_gone() -> None:
    now = dt.datetime(2026, 12, 1, 12, 0, 0, tzinfo=dt.UTC)
    base: Any = {"run_id": "R", "status": "running", "reason": None, "exit_code": None, "heartbeat_s": 10.0}
    assert status.observed({**base, "owner": status.this_owner()})["status"] == "running"
    lost = status.observed({**base, "owner": dead_owner(), "heartbeat_at": "2026-12-01T11:59:55Z"})
    assert (lost["status"], lost["reason"], lost["exit_code"], lost["lost"]) == ("failed", "lost", exit_code("lost"), True)
    assert "lane run --resume R" in lost["detail"]
    # another machine (a container, a node): the heartbeat decides, after LOST_AFTER_BEATS intervals
    elsewhere = {**base, "owner": {"host": "elsewhere", "boot": 1.0, "pid": 1, "started": 1.0}}
    limit = status.LOST_AFTER_BEATS * 10
    fresh = (now - dt.timedelta(seconds=limit - 1)).isoformat().replace("+00:00", "Z")
    stale = (now - dt.timedelta(seconds=limit + 1)).isoformat().replace("+00:00", "Z")
    assert status.observed({**elsewhere, "heartbeat_at": fresh}, now)["status"] == "running"
    assert status.observed({**elsewhere, "heartbeat_at": stale}, now)["reason"] == "lost"
    # a Slurm job answers through its scheduler; a record without an owner yet cannot be judged
    slurm_owned = {**base, "owner": {**dead_owner(), "slurm_job_id": "42"}, "heartbeat_at": stale}
    assert status.observed(slurm_owned, now)["status"] == "running"
    assert status.observed(base, now)["status"] == "running"
    final = {**base, "status": "completed", "reason": "ok", "exit_code": 0, "owner": dead_owner()}
    assert status.observed(final) == final


def test_concurrent_updates_lose_nothing(tmp_path: Path) -> None:
    """The runner writes from its main, stream and heartbeat threads: each read-merge-write happens
    under the lock, so no thread's last field is overwritten by another's stale copy."""
    (tmp_path / "runs" / "R").mkdir(parents=True)

    def writer(field: str) -> None:
        for step in range(25):
            status.update(tmp_path, LANE, "R", **{field: f"{field}:{step}"})

    threads = [threading.Thread(target=writer, args=(f,)) for f in ("detail", "heartbeat_at", "started_at")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rec = status.read(tmp_path, "R")
    assert rec is not None
    assert (rec["detail"], rec["heartbeat_at"], rec["started_at"]) == ("detail:24", "heartbeat_at:24", "started_at:24")
    assert json.loads((tmp_path / "runs" / "R" / "train_status.json").read_text()) == \
        json.loads(status.train_status_path(tmp_path, LANE).read_text())


def test_kill_9_reads_lost_and_resume_picks_it_up(ws: Path) -> None:
    install_notebooks(ws, {"verify": "sleeps"}, {"verify": "sleep_s = 600\nuntil = 'release'"})
    cmd = [sys.executable, "-m", "lane", "run", "--root", str(ws), "--stages", "verify", "--audio", "data/speech.wav"]
    proc = subprocess.Popen(cmd, cwd=ws, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    kernels: list[psutil.Process] = []
    try:
        for line in proc.stdout:  # the readiness signal: the stage says it is inside its waiting cell
            lines.append(line.rstrip("\n"))
            if line.startswith("PROGRESS stage=verify step=1 total=2"):
                break
        assert lines and lines[-1].startswith("PROGRESS stage=verify"), lines[-20:]
        run_id = next(m.group(1) for ln in lines if (m := re.match(r"runner: run (\S+) ", ln)))
        kernels = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        shown = run_lane(ws, "status", run_id)
        assert shown.rc == 0, shown.out + shown.err
        assert f"run {run_id} lane {LANE}: status=failed reason=lost exit=4" in shown.out
        assert f"pid {proc.pid} on " in " ".join(shown.out.split())
        raw = json.loads(run_lane(ws, "status", "--json").out)
        assert (raw["run_id"], raw["status"], raw["reason"], raw["lost"]) == (run_id, "failed", "lost", True)
        assert json.loads((ws / "runs" / run_id / "train_status.json").read_text())["status"] == "running"  # as written
    finally:
        for p in [proc, *kernels]:
            if p.poll() is None if isinstance(p, subprocess.Popen) else p.is_running():
                p.kill()
    (ws / "release").write_text("go\n")
    resumed = run_lane(ws, "run", "--stages", "verify", "--audio", "data/speech.wav", "--resume", run_id)
    assert resumed.rc == 0, resumed.out + resumed.err
    assert resumed.last_status == f"[tts-prod] status=completed reason=ok run_id={run_id} lane={LANE}"
    assert run_lane(ws, "status", run_id).out.count("status=completed reason=ok") == 1
