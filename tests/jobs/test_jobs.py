"""The job API (lane/jobs.py) with the local backend: a persistent queue under artifacts/jobs/ whose
worker starts `lane run --resume RUN_ID` subprocesses, at most `jobs.concurrency` at a time. The runs
are the fixture notebooks installed as the workspace's own (tests/lane_runs.install_notebooks)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from lane_runs import install_notebooks

from lane.core.reasons import LaneError
from lane.jobs import Jobs, pid_runs
from lane.jobs.store import JOBS_DIR as JOBS


def setup_ws(ws: Path, sleep_s: float, until: str | None = None, **jobs: Any) -> Path:
    """The verify stage sleeps `sleep_s`, or (`until`, formatted with the run id) waits for that file."""
    code = f"sleep_s = {sleep_s}" + (f"\nuntil = f{until!r}" if until else "")
    install_notebooks(ws, {"verify": "sleeps"}, {"verify": code})
    path = ws / "configs" / "lane.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["jobs"] = {"concurrency": 1, "data_root": "data", **jobs}
    path.write_text(yaml.safe_dump(cfg))
    return ws


def ledger_ends(ws: Path, run_id: str) -> list[str]:
    lines = (ws / "reports" / "ledger.jsonl").read_text().splitlines()
    return [e["reason"] for e in map(json.loads, lines) if e["runId"] == run_id and e["stage_id"] == "job_end"]


def wait_state(jobs: Jobs, run_id: str, states: tuple[str, ...], timeout: float = 600) -> dict[str, Any]:
    """Poll until the job is in one of `states` (`timeout` is a hang guard, not an expectation)."""
    deadline = time.monotonic() + timeout
    while True:
        out = jobs.status(run_id)
        if out["state"] in states:
            return out
        assert time.monotonic() < deadline, f"{run_id} still {out['state']}"
        time.sleep(0.1)


def waiting(ws: Path, job: dict[str, Any]) -> None:
    """Until the run's stage says it is inside its waiting cell (its PROGRESS line in the job log)."""
    log = ws / JOBS / f"{job['run_id']}.log"
    wait_for(lambda: "PROGRESS stage=verify" in (log.read_text() if log.is_file() else ""), f"{job['run_id']} to wait")


def wait_for(predicate: Callable[[], bool], what: str, guard_s: float = 600) -> None:
    deadline = time.monotonic() + guard_s  # a hang guard only
    while not predicate():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


def test_two_jobs_with_concurrency_1_run_one_after_the_other(ws: Path) -> None:
    """Each run waits in its stage until the test releases it (release-<run_id>), so every state the
    test looks for lasts until it has been seen."""
    setup_ws(ws, 600, until="release-{run_id}")
    seen: list[tuple[str, str]] = []

    def states(a_id: str, b_id: str, jobs: Jobs) -> tuple[str, str]:
        a, b = jobs.status(a_id), jobs.status(b_id)
        seen.append((a["state"], b["state"]))
        if a["state"] == "running":
            assert b["state"] == "queued" and b["queue_position"] == 1
        return a["state"], b["state"]

    with Jobs(ws) as jobs:
        first = jobs.submit("tts_prod_train", "data/speech.wav", stages="verify")
        second = jobs.submit("train", "data/speech.wav", stages="verify")
        assert (first["engine"], first["job_id"], second["state"]) == ("local", None, "queued")
        assert second["queue_position"] in (1, 2)
        waiting(ws, first)
        assert states(first["run_id"], second["run_id"], jobs) == ("running", "queued")
        (ws / f"release-{first['run_id']}").write_text("go\n")
        wait_for(lambda: states(first["run_id"], second["run_id"], jobs)[0] != "running", "the first run to end")
        waiting(ws, second)
        assert states(first["run_id"], second["run_id"], jobs) == ("completed", "running")
        (ws / f"release-{second['run_id']}").write_text("go\n")
        wait_state(jobs, second["run_id"], ("completed", "failed", "blocked", "cancelled"))
        ends = [jobs.status(j["run_id"]) for j in (first, second)]
    assert ("running", "queued") in seen and ("completed", "running") in seen, seen
    assert not any(s == ("running", "running") for s in seen)
    assert [e["state"] for e in ends] == ["completed", "completed"], ends
    assert all(e["train_status"]["reason"] == "ok" and e["train_status"]["run_id"] == e["run_id"] for e in ends)
    assert ends[0]["finished_at"] <= ends[1]["started_at"]
    for e in ends:  # each run is `lane run --resume RUN_ID` with its output beside the queue record
        assert f"voice-lane run {e['run_id']}: root={ws} (resume {e['run_id']})" in (ws / e["log"]).read_text()


def test_the_queue_survives_a_restart_and_a_queued_job_can_be_cancelled(ws: Path) -> None:
    setup_ws(ws, 0)
    with Jobs(ws, start=False) as server:  # a server that stops before its worker ran anything
        a = server.submit("tts_prod_train", "data/speech.wav", stages="verify")
        b = server.submit("tts_prod_train", "data/speech.wav", stages="verify")
    records = sorted((ws / "artifacts" / "jobs").glob("*.json"))
    assert len(records) == 2 and all(json.loads(p.read_text())["state"] == "queued" for p in records)
    with Jobs(ws, start=False) as cli:  # what `lane cancel` does
        out = cli.cancel(b["run_id"])
    assert (out["state"], out["reason"], out["train_status"]["reason"]) == ("cancelled", "job_cancelled", "job_cancelled")
    assert ledger_ends(ws, b["run_id"]) == ["job_cancelled"]
    with Jobs(ws) as restarted:
        done = wait_state(restarted, a["run_id"], ("completed", "failed", "blocked"))
        assert done["state"] == "completed" and done["train_status"]["reason"] == "ok"
        assert restarted.status(b["run_id"])["state"] == "cancelled"
        assert [j["run_id"] for j in restarted.list()] == [a["run_id"], b["run_id"]]
    assert json.loads((ws / "artifacts" / "jobs" / f"{b['run_id']}.json").read_text())["pid"] is None  # never started


def test_cancelling_a_running_job_with_lane_cancel(ws: Path, lane_cli: Callable[..., Any]) -> None:
    """The server's queue runs it; an operator cancels it from another process."""
    setup_ws(ws, 600)
    with Jobs(ws) as jobs:
        job = jobs.submit("tts_prod_train", "data/speech.wav", stages="verify")
        running = wait_state(jobs, job["run_id"], ("running",))
        waiting(ws, job)
        done = lane_cli(ws, "cancel", job["run_id"])
        assert done.rc == 0, done.out + done.err
        assert done.out.strip().splitlines()[-1] == \
            f"[tts-prod] status=failed reason=job_cancelled run_id={job['run_id']} lane=tts_prod_train"
        out = jobs.status(job["run_id"])
    assert (out["state"], out["reason"]) == ("cancelled", "job_cancelled")
    st = out["train_status"]
    assert (st["status"], st["reason"]) == ("failed", "job_cancelled") and "interrupted" in st["detail"]
    assert not pid_runs(running["pid"], job["run_id"])  # the runner has ended
    assert ledger_ends(ws, job["run_id"]) == ["job_cancelled"]


def test_a_killed_run_reads_lost_until_a_worker_resumes_it(ws: Path) -> None:
    """kill -9 of a queued run's process while no worker watches: the job API says `lost` (the run's
    train_status too); the next worker re-queues it once with --resume and it completes."""
    import os
    import signal

    import psutil

    setup_ws(ws, 600, until="release-{run_id}")
    with Jobs(ws) as server:
        job = server.submit("tts_prod_train", "data/speech.wav", stages="verify")
        waiting(ws, job)
    run_id = job["run_id"]
    with Jobs(ws, start=False) as cli:  # the server has stopped; the run goes on without a worker
        pid = cli.status(run_id)["pid"]
        kernels = psutil.Process(pid).children(recursive=True)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not pid_runs(pid, run_id), "the run's process to be gone")
        lost = cli.status(run_id)
        for k in kernels:
            k.kill()
    assert (lost["state"], lost["reason"]) == ("lost", "lost"), lost
    assert (lost["train_status"]["status"], lost["train_status"]["reason"]) == ("failed", "lost")
    (ws / f"release-{run_id}").write_text("go\n")
    with Jobs(ws) as restarted:
        done = wait_state(restarted, run_id, ("completed", "failed", "blocked", "cancelled"))
    assert (done["state"], done["train_status"]["reason"]) == ("completed", "ok"), done
    assert f"(resume {run_id})" in (ws / done["log"]).read_text()


@pytest.mark.parametrize(("job_type", "audio", "options", "code"), [
    ("tts_prod_train", "/etc/passwd", {}, "config_invalid"),
    ("tts_prod_train", "configs/lane.yaml", {}, "config_invalid"),
    ("tts_prod_train", "data/../configs/lane.yaml", {}, "config_invalid"),
    ("tts_prod_train", "data/link/lane.yaml", {}, "config_invalid"),  # a symlink out of the data root
    ("tts_prod_train", "data/speech.wav", {"transcript": "/etc/hostname"}, "config_invalid"),
    ("tts_prod_train", "data/speech.wav", {"profile": "../x"}, "config_invalid"),
    ("tts_prod_train", "data/speech.wav", {"voice_profile_id": "../../etc"}, "config_invalid"),
    ("tts_prod_train", "data/speech.wav", {"voice_profile_id": "voice\u2215x"}, "config_invalid"),  # a slash look-alike
    ("tts_prod_train", "data/speech.wav", {"voice_profile_id": "\uff0e\uff0e"}, "config_invalid"),  # fullwidth dots
    ("tts_prod_train", "data/speech.wav", {"weights_manifest": "x.json"}, "config_invalid"),
    ("tts_prod_train", "data/speech.wav", {"stages": "verify,deploy"}, "config_invalid"),
    ("tts_prod_train", "data/missing.wav", {}, "missing_audio_path"),
    ("tts_prod_train_pytorch", "data/speech.wav", {}, "unknown_lane"),
    ("../tts_prod_train", "data/speech.wav", {}, "unknown_lane"),
])
def test_requests_are_checked_before_anything_is_queued(ws: Path, job_type: str, audio: str,
                                                        options: Mapping[str, Any], code: str) -> None:
    setup_ws(ws, 0)
    (ws / "data" / "link").symlink_to(ws / "configs")
    with Jobs(ws, start=False) as jobs:
        with pytest.raises(LaneError) as err:
            jobs.submit(job_type, audio, **options)
        assert err.value.code == code
        assert jobs.list() == []
        for call in (jobs.status, jobs.cancel):
            with pytest.raises(LaneError) as missing:
                call("20261130T000000Z-abcdef")
            assert missing.value.code == "run_not_found"
    assert not (ws / "runs").exists()
