"""managed_job on a real single-node Slurm (scripts/slurm/cluster.sh, the session fixture in
tests/slurm_cluster.py): the real `lane` CLI submits the fixture notebooks as a Slurm job and follows
it. A passing run, a failing one (its own reason), a time limit (job_timeout: the one 60-90 s test),
memory (job_oom), lane cancel, --detach then lane status, a job that a node failure requeues and that
resumes after the stage that passed, a controller that does not answer, a partition sbatch refuses,
and the job API submitting two jobs.

The job runs `lane run --backend local --resume RUN_ID` with the submitter's Python (the venv), the
workspace's notebooks/ (the fixtures), and PYTHONPATH / LANE_SIGNING_KEY written into the script."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import slurm_cluster
import yaml
from cli_runs import Done, clean_env, run_lane
from lane_runs import STAGES, install_notebooks
from net import free_port
from slurm_cluster import job_info, slurm

slurm_env = slurm_cluster.slurm_env  # the session fixture (a real cluster), made visible here

LANE = "tts_prod_train_nemo"
RUN = ("run", "--backend", "managed_job")
SLEEPS = {"verify": "sleeps"}


def setup_ws(ws: Path, notebooks: Mapping[str, str], code: Mapping[str, str] | None = None,
             **managed: Any) -> Path:
    """The workspace runs `notebooks` (stage -> fixture) through managed_job with engine slurm."""
    install_notebooks(ws, notebooks, code)
    path = ws / "configs" / "lane.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["settings"].update(stages=list(notebooks), audio="data/speech.wav")
    cfg["managed_job"] = {"engine": "slurm", "poll_s": 0.5, **managed}
    cfg["jobs"] = {"backend": "managed_job", "data_root": "data"}
    path.write_text(yaml.safe_dump(cfg))
    return ws


def lane(ws: Path, env: Mapping[str, str], *args: str, timeout: int = 600) -> Done:
    """The real CLI (`timeout` is a hang guard: every run here ends by itself)."""
    return run_lane(ws, *args, env=env, timeout=timeout)


def run_id_of(done: Done) -> str:
    m = re.search(r"run_id=(\S+)", done.out)
    assert m, done.out + done.err
    return m.group(1)


def job_of(ws: Path, run_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ws / "runs" / run_id / "slurm" / "job.json").read_text())
    return data


def ledger(ws: Path, run_id: str) -> list[dict[str, Any]]:
    lines = (ws / "reports" / "ledger.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["runId"] == run_id]


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    """Until `predicate()` (a signal); `timeout` is a hang guard."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------ runs
def test_a_passing_run_through_slurm(ws: Path, slurm_env: dict[str, str]) -> None:
    setup_ws(ws, dict.fromkeys(STAGES, "pass"))
    done = lane(ws, slurm_env, *RUN)
    assert done.rc == 0, done.out + done.err
    run_id = run_id_of(done)
    finals = [x for x in done.out.splitlines() if x.startswith("[tts-prod]")]
    assert finals == [f"[tts-prod] status=completed reason=ok run_id={run_id} lane={LANE}"]  # the job's own, once
    # the job's lines came back live, in order
    out = done.out
    assert out.index("slurm: submitted job") < out.index("PROGRESS stage=verify step=1 total=3") \
        < out.index("ARTIFACT stage=export kind=voice_bundle_manifest") < out.index("PROGRESS stage=validate step=3")
    st = done.train_status()
    job = job_of(ws, run_id)
    script = ws / job["script"]
    assert (st["status"], st["reason"], st["exit_code"]) == ("completed", "ok", 0)
    assert (st["backend"], st["engine"], st["job_id"], st["job_state"]) == ("managed_job", "slurm", job["job_id"], "COMPLETED")
    assert st["job_script_sha256"] == hashlib.sha256(script.read_bytes()).hexdigest() == job["script_sha256"]
    assert all(st["stages"][s]["verdict"] == "PASS" for s in STAGES)
    info = job_info(slurm_env, job["job_id"])
    assert (info["JobState"], info["ExitCode"], info["WorkDir"], info["Command"]) == ("COMPLETED", "0:0", str(ws), str(script))
    entries = ledger(ws, run_id)
    assert [e["stage_id"] for e in entries] == ["job_submit", *STAGES, "job_end"]
    assert entries[0]["job"]["script_sha256"] == job["script_sha256"] and entries[0]["artifacts"][0]["path"] == job["script"]
    assert entries[-1]["reason"] == "ok" and entries[-1]["job"]["job_id"] == job["job_id"]
    assert lane(ws, slurm_env, "ledger", "verify").rc == 0
    report = (ws / st["report_path"]).read_text()
    assert f"| `backend` | managed_job | slurm job {job['job_id']} " in report


def test_a_failing_run_returns_its_reason(ws: Path, slurm_env: dict[str, str]) -> None:
    setup_ws(ws, {"verify": "lane_error"})
    done = lane(ws, slurm_env, *RUN)
    assert done.rc == 5, done.out + done.err
    assert done.last_status == f"[tts-prod] status=failed reason=weights_license_blocked run_id={run_id_of(done)} lane={LANE}"
    st = done.train_status()
    assert (st["reason"], st["job_state"], st["detail"]) == ("weights_license_blocked", "FAILED", "fixture weights are CC-BY-NC-4.0")
    assert job_info(slurm_env, st["job_id"])["ExitCode"] == "5:0"


def test_a_run_asking_for_a_gpu_ends_gpu_unavailable_on_the_node(ws: Path, slurm_env: dict[str, str]) -> None:
    """The cluster's node has no GPU: the runner in the job checks before its first stage. (A gres=gpu
    request cannot be tested here, this node has no gres: the job would be rejected; job_env's
    LANE_REQUIRE_GPU for it is pinned in test_backends_slurm_rules.py.)"""
    setup_ws(ws, {"verify": "pass"})
    (ws / "configs" / "profiles" / "gpu_demo.yaml").write_text("extends: demo\ntrain:\n  accelerator: gpu\n")
    done = lane(ws, slurm_env, *RUN, "--profile", "gpu_demo")
    assert done.rc == 2, done.out + done.err
    assert done.last_status == f"[tts-prod] status=blocked reason=gpu_unavailable run_id={run_id_of(done)} lane={LANE}"
    st = done.train_status()
    assert st["job_state"] == "FAILED" and "profile gpu_demo (train.accelerator: gpu) asks for a GPU" in st["detail"]
    assert not (ws / "runs" / run_id_of(done) / "verify" / "result.json").exists()


def test_time_limit_ends_the_run_job_timeout(ws: Path, slurm_env: dict[str, str]) -> None:
    """The one TIMEOUT of the suite: Slurm's limits have one-minute resolution and are checked every
    30 s, so a --time=1 job ends 60-90 s after it started."""
    setup_ws(ws, SLEEPS, {"verify": "sleep_s = 600"}, time=1)
    done = lane(ws, slurm_env, *RUN)
    assert done.rc == 4, done.out + done.err
    run_id = run_id_of(done)
    assert done.last_status == f"[tts-prod] status=failed reason=job_timeout run_id={run_id} lane={LANE}"
    assert "PROGRESS stage=verify step=1 total=2" in done.out  # followed live while it slept
    st = done.train_status()
    assert (st["reason"], st["job_state"], st["exit_code"]) == ("job_timeout", "TIMEOUT", 4)
    assert "time limit 00:01:00" in st["detail"]
    info = job_info(slurm_env, st["job_id"])
    assert (info["JobState"], info["Reason"], info["TimeLimit"]) == ("TIMEOUT", "TimeLimit", "00:01:00")
    assert "DUE TO TIME LIMIT" in (ws / job_of(ws, run_id)["output"]).read_text()
    assert ledger(ws, run_id)[-1]["reason"] == "job_timeout"
    assert "`job_timeout`" in (ws / st["report_path"]).read_text()


def test_a_job_over_its_memory_limit_is_job_oom(ws: Path, slurm_env: dict[str, str]) -> None:
    """No cgroups here: slurmstepd samples the step's memory (every second) and kills it over --mem; the
    job ends FAILED and its output says why. The stage holds its allocation until it is killed, so the
    kill does not depend on the sampling catching a short peak."""
    hold = "import time\nblob = b'x' * (1536 << 20)\nwhile True:\n    time.sleep(0.5)\n"
    setup_ws(ws, {"verify": "pass"}, {"verify": hold}, mem="700M")
    done = lane(ws, slurm_env, *RUN)
    assert done.rc == 4, done.out + done.err
    assert "reason=job_oom" in done.last_status
    st = done.train_status()
    assert (st["reason"], st["job_state"]) == ("job_oom", "FAILED")
    assert "memory limit" in (ws / job_of(ws, st["run_id"])["output"]).read_text()


def test_lane_cancel_ends_the_job_with_a_ledger_entry(ws: Path, slurm_env: dict[str, str]) -> None:
    setup_ws(ws, SLEEPS, {"verify": "sleep_s = 600"})
    sub = lane(ws, slurm_env, *RUN, "--detach")
    assert sub.rc == 0, sub.out + sub.err
    run_id = run_id_of(sub)
    job = job_of(ws, run_id)
    output = ws / job["output"]
    wait_for(lambda: output.is_file() and "PROGRESS stage=verify" in output.read_text(), 600, "the runner to start")
    done = lane(ws, slurm_env, "cancel", run_id)
    assert done.rc == 0, done.out + done.err
    assert done.out.strip().splitlines()[-1] == f"[tts-prod] status=failed reason=job_cancelled run_id={run_id} lane={LANE}"
    assert job_info(slurm_env, job["job_id"])["JobState"] == "CANCELLED"
    st = json.loads((ws / "runs" / run_id / "train_status.json").read_text())
    assert (st["status"], st["reason"], st["job_state"]) == ("failed", "job_cancelled", "CANCELLED")
    assert "cancelled with lane cancel" in st["detail"]
    assert "`job_cancelled`" in (ws / st["report_path"]).read_text()  # re-rendered with the scheduler's verdict
    assert [e["reason"] for e in ledger(ws, run_id) if e["stage_id"] == "job_end"] == ["job_cancelled"]
    again = lane(ws, slurm_env, "cancel", run_id)  # already ended: the same answer, no second entry
    assert again.rc == 0 and "reason=job_cancelled" in again.out
    assert len([e for e in ledger(ws, run_id) if e["stage_id"] == "job_end"]) == 1


def test_detach_then_lane_status(ws: Path, slurm_env: dict[str, str]) -> None:
    setup_ws(ws, {"verify": "pass", "train": "pass"})
    sub = lane(ws, slurm_env, *RUN, "--detach")
    assert sub.rc == 0, sub.out + sub.err
    assert "[tts-prod]" not in sub.out  # nothing has ended yet
    run_id = run_id_of(sub)
    job_id = job_of(ws, run_id)["job_id"]
    assert sub.out.strip().splitlines()[-1] == f"run_id={run_id} job_id={job_id} engine=slurm state=PENDING"
    status: list[Done] = []

    def ended() -> bool:
        status.append(lane(ws, slurm_env, "status", run_id))
        return "status=completed" in status[-1].out and "COMPLETED on" in status[-1].out

    # the runner's final status can be there a moment before the scheduler says COMPLETED
    wait_for(ended, 600, "lane status to show the run and its job completed")
    shown = status[-1]
    assert shown.rc == 0, shown.out + shown.err
    assert f"job: slurm {job_id} COMPLETED on " in shown.out
    assert f"line(s) of runs/{run_id}/slurm/slurm-{job_id}.out" in shown.out
    assert f"  [tts-prod] status=completed reason=ok run_id={run_id}" in shown.out
    raw = json.loads(lane(ws, slurm_env, "status", run_id, "--json").out)
    assert (raw["status"], raw["job"]["state"], raw["job"]["outcome"]["reason"]) == ("completed", "COMPLETED", "ok")
    assert [e["stage_id"] for e in ledger(ws, run_id)] == ["job_submit", "verify", "train", "job_end"]


def test_a_requeued_job_resumes_after_the_stage_that_passed(ws: Path, slurm_env: dict[str, str]) -> None:
    """A node failure while train runs: Slurm requeues the job (--requeue) once; the follower keeps
    following; the second attempt skips verify (it passed, unchanged) and finishes."""
    code = ("import os, pathlib, time\n"
            "if os.environ.get('SLURM_RESTART_COUNT', '0') == '0':\n"
            "    pathlib.Path(root, 'train-started').write_text('1')\n"
            "    time.sleep(600)\n")
    setup_ws(ws, {"verify": "pass", "train": "pass"}, {"train": code})
    cmd = [sys.executable, "-m", "lane", *RUN, "--root", str(ws)]
    proc = subprocess.Popen(cmd, cwd=ws, env=clean_env(**slurm_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    node = ""
    try:
        wait_for(lambda: (ws / "train-started").exists() or proc.poll() is not None, 600, "train to start")
        run_id = next(p.name for p in (ws / "runs").iterdir())
        job_id = job_of(ws, run_id)["job_id"]
        node = job_info(slurm_env, job_id)["BatchHost"]
        assert slurm(slurm_env, "scontrol", "update", f"NodeName={node}", "State=DOWN", "Reason=lane-test").returncode == 0
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
        if node:
            slurm(slurm_env, "scontrol", "update", f"NodeName={node}", "State=RESUME")
    assert proc.returncode == 0, out + err
    assert out.strip().splitlines()[-1] == f"[tts-prod] status=completed reason=ok run_id={run_id} lane={LANE}"
    assert f"slurm: job {job_id} was requeued (restart 1)" in out
    assert "DUE TO NODE FAILURE" in out
    assert "runner: stage verify: skipped (unchanged since PASS" in out.split("was requeued")[1]
    st = json.loads((ws / "runs" / run_id / "train_status.json").read_text())
    assert (st["reason"], st["job_restarts"], st["stages"]["verify"]["skipped"]) == ("ok", 1, True)
    assert job_info(slurm_env, job_id)["Restarts"] == "1"


def test_an_unreachable_controller_is_scheduler_unavailable(ws: Path, slurm_env: dict[str, str], tmp_path: Path) -> None:
    """The cluster's own slurm.conf with the controller on a port nobody listens on."""
    setup_ws(ws, {"verify": "pass"})
    port = free_port()
    conf = Path(slurm_env["SLURM_CONF"]).read_text()
    dead = tmp_path / "slurm.conf"
    dead.write_text(re.sub(r"(?m)^SlurmctldPort=\d+", f"SlurmctldPort={port}", conf))
    done = lane(ws, {**slurm_env, "SLURM_CONF": str(dead)}, *RUN)  # it ends by itself (the client gives up)
    assert done.rc == 2, done.out + done.err
    assert done.last_status == f"[tts-prod] status=blocked reason=scheduler_unavailable lane={LANE}"
    assert "Unable to contact slurm controller" in done.train_status()["detail"]


def test_a_partition_the_cluster_does_not_have_is_job_rejected(ws: Path, slurm_env: dict[str, str]) -> None:
    setup_ws(ws, {"verify": "pass"}, partition="nope")
    done = lane(ws, slurm_env, *RUN)
    assert done.rc == 3, done.out + done.err
    assert done.last_status == f"[tts-prod] status=failed reason=job_rejected lane={LANE}"
    st = done.train_status()
    assert "Invalid partition name specified" in st["detail"] and st["job_state"] == "NOT_SUBMITTED"


def test_the_job_api_submits_through_slurm(ws: Path, slurm_env: dict[str, str]) -> None:
    from lane.core.reasons import LaneError
    from lane.jobs import Jobs

    setup_ws(ws, {"verify": "pass"})
    with Jobs(ws, env={**os.environ, **slurm_env}) as jobs:
        first = jobs.submit("tts_prod_train", "data/speech.wav", stages="verify")
        second = jobs.submit("train", "data/speech.wav", stages=["verify"])
        assert first["engine"] == second["engine"] == "slurm"
        assert first["job_id"] and second["job_id"] and first["job_id"] != second["job_id"]
        assert first["state"] in ("queued", "running")
        with pytest.raises(LaneError) as err:
            jobs.submit("tts_prod_train", "/etc/passwd")
        assert err.value.code == "config_invalid"
        ends = [jobs.wait(j["run_id"], 600) for j in (first, second)]
        assert [e["state"] for e in ends] == ["completed", "completed"], ends
        assert all(e["job"]["state"] == "COMPLETED" and e["train_status"]["reason"] == "ok" for e in ends)
        assert {j["run_id"] for j in jobs.list()} == {first["run_id"], second["run_id"]}
