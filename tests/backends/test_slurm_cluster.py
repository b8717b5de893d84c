"""Smoke test of the real single-node Slurm cluster (scripts/slurm/cluster.sh) that the Slurm backend
tests run against: a trivial batch job completes with its output where asked. (A job over its time
limit is the lane's own job_timeout test in test_backends_slurm.py: the one 60-90 s TIMEOUT of the
suite.) Skipped only when Slurm is not installed outside CI (see slurm_cluster)."""

from __future__ import annotations

from pathlib import Path

import slurm_cluster
from slurm_cluster import sbatch, wait_for_job

slurm_env = slurm_cluster.slurm_env  # the session fixture (a real cluster), made visible here


def test_trivial_job_completes_with_its_output(slurm_env: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "job.out"
    job = sbatch(slurm_env, f"--output={out}", f"--chdir={tmp_path}", "--export=ALL,LANE_SMOKE=slurm-smoke",
                 "--job-name=lane-smoke", "--wrap", 'echo "hello $LANE_SMOKE from $SLURM_JOB_ID in $PWD"')
    info = wait_for_job(slurm_env, job, timeout=600)  # a hang guard; how fast it is belongs in bench/bench_slurm.py
    assert info["JobState"] == "COMPLETED", info
    assert info["ExitCode"] == "0:0", info
    assert out.read_text() == f"hello slurm-smoke from {job} in {tmp_path}\n"
