"""Smoke tests of the real single-node Slurm cluster (scripts/slurm/cluster.sh) that the Slurm backend
tests run against: a trivial batch job completes with its output where asked, and a job over its
time limit ends in TIMEOUT. Skipped only when Slurm is not installed outside CI (see slurm_cluster)."""

from __future__ import annotations

import time
from pathlib import Path

import slurm_cluster
from slurm_cluster import sbatch, slurm, wait_for_job

slurm_env = slurm_cluster.slurm_env  # the session fixture (a real cluster), made visible here


def test_trivial_job_completes_with_its_output(slurm_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    t0 = time.monotonic()
    job = sbatch(slurm_env, f"--output={out}", f"--chdir={tmp_path}", "--export=ALL,LANE_SMOKE=slurm-smoke",
                 "--job-name=lane-smoke", "--wrap", 'echo "hello $LANE_SMOKE from $SLURM_JOB_ID in $PWD"')
    info = wait_for_job(slurm_env, job, timeout=60)
    elapsed = time.monotonic() - t0
    assert info["JobState"] == "COMPLETED", info
    assert info["ExitCode"] == "0:0", info
    assert out.read_text() == f"hello slurm-smoke from {job} in {tmp_path}\n"
    assert elapsed < 30, f"submit -> COMPLETED took {elapsed:.1f}s"


def test_job_over_its_time_limit_ends_in_timeout(slurm_env: dict[str, str], tmp_path: Path) -> None:
    # Slurm's time limits have one-minute resolution (--time=1, or 0:01 = 1 s rounded up to 1 min) and
    # slurmctld checks them every 30 s, so this takes 60-90 s: the shortest real TIMEOUT there is.
    out = tmp_path / "timeout.out"
    job = sbatch(slurm_env, "--time=1", f"--output={out}", f"--chdir={tmp_path}",
                 "--wrap", "echo started; exec sleep 300")
    running = wait_for_job(slurm_env, job, states={"RUNNING"}, timeout=60, poll=0.2)
    assert running["TimeLimit"] == "00:01:00", running
    info = wait_for_job(slurm_env, job, timeout=150, poll=0.5)
    assert info["JobState"] == "TIMEOUT", info
    assert info["Reason"] == "TimeLimit", info
    text = out.read_text()
    assert text.startswith("started\n"), text
    assert "DUE TO TIME LIMIT" in text, text
    # the cluster is usable afterwards
    assert slurm(slurm_env, "scontrol", "ping").returncode == 0
