"""The Slurm path's overhead against the local backend, for the fixture lane (the four fixture `pass`
notebooks, about a second of work per stage), measured side by side: the same `lane run` CLI in one
workspace, local and managed_job (Slurm) interleaved, seconds from launching the command (the
submission) to its final [tts-prod] line.

    .venv/bin/python bench/bench_slurm.py [--runs 5] [--poll-s 5]

It starts a single-node Slurm with scripts/slurm/cluster.sh in a fresh /tmp directory (or uses the
one in $LANE_SLURM_DIR, left running) and stops it by its pids at the end. Writes
bench/results/slurm_overhead.json. The Slurm rows also split the time: launch -> sbatch accepted
(the CLI's own start, settings, preflight, script, sbatch), accepted -> the job's first line
(scheduling and launch), and the job's first line -> the final line (the runner inside, plus the
follower noticing the end).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import machine

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STAGES = ["verify", "train", "export", "validate"]
sys.path.insert(0, str(REPO / "tests"))


def workspace(path: Path, poll_s: float) -> Path:
    """configs/ and the fixture notebooks as the workspace's own; a few seconds of espeak speech."""
    import yaml

    from lane.data.espeak import speak

    shutil.copytree(REPO / "configs", path / "configs")
    (path / "notebooks").mkdir()
    for stage in STAGES:
        shutil.copy(REPO / "tests" / "fixtures" / "notebooks" / "pass.ipynb", path / "notebooks" / f"{stage}.ipynb")
    (path / "data").mkdir()
    speak("The quick brown fox jumps over the lazy dog, and then it rests.", path / "data" / "speech.wav")
    cfg_path = path / "configs" / "lane.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["settings"].update(audio="data/speech.wav", stages=STAGES)
    cfg["managed_job"] = {"engine": "slurm", "poll_s": poll_s}
    cfg_path.write_text(yaml.safe_dump(cfg))
    return path


def timed_run(ws: Path, backend: str, env: dict[str, str]) -> dict[str, Any]:
    """One `lane run`, its stdout read line by line with arrival times."""
    cmd = [sys.executable, "-m", "lane", "run", "--backend", backend, "--root", str(ws)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    marks: dict[str, float] = {}
    final = ""
    for line in proc.stdout:
        now = time.perf_counter() - t0
        if line.startswith("slurm: submitted job"):
            marks.setdefault("submitted", now)
        elif line.startswith("slurm: job ") and "(restart " in line:  # the job script's first line
            marks.setdefault("job_first_line", now)
        elif line.startswith("[tts-prod]"):
            marks["final_line"] = now
            final = line.strip()
    rc = proc.wait()
    assert rc == 0 and "status=completed reason=ok" in final, (backend, rc, final)
    row: dict[str, Any] = {"backend": backend, "to_final_line_s": round(marks["final_line"], 3),
                           "to_exit_s": round(time.perf_counter() - t0, 3)}
    if backend == "managed_job":
        row.update(launch_to_sbatch_s=round(marks["submitted"], 3),
                   sbatch_to_job_start_s=round(marks["job_first_line"] - marks["submitted"], 3),
                   job_start_to_final_line_s=round(marks["final_line"] - marks["job_first_line"], 3))
    return row


def summary(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    xs = [r[key] for r in rows]
    return {"median": round(statistics.median(xs), 3), "mean": round(statistics.fmean(xs), 3),
            "min": round(min(xs), 3), "max": round(max(xs), 3)}


def slurm_version(env: dict[str, str]) -> str:
    try:
        return subprocess.run(["sbatch", "--version"], capture_output=True, text=True, timeout=10,
                              env=env).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5, help="runs per backend (interleaved)")
    ap.add_argument("--poll-s", type=float, default=5.0, help="managed_job.poll_s (the default is 5)")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "slurm_overhead.json")
    args = ap.parse_args()

    import slurm_cluster

    given = os.environ.get("LANE_SLURM_DIR")
    state = Path(given) if given else Path(tempfile.mkdtemp(prefix="lane-slurm-", dir="/tmp"))
    owned = not given or not slurm_cluster.cluster_running(state)
    work = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    info = machine()
    try:
        env = {**os.environ, **slurm_cluster.start_cluster(state), "PYTHONUNBUFFERED": "1"}
        info["slurm"] = slurm_version(env)
        env.setdefault("LANE_SIGNING_KEY", str(work / "signing-ed25519.pem"))
        ws = workspace(work / "ws", args.poll_s)
        timed_run(ws, "local", env)  # warm-up: page cache, kernelspec, first imports
        rows = [timed_run(ws, backend, env) for _ in range(args.runs) for backend in ("local", "managed_job")]
    finally:
        if owned:
            slurm_cluster.stop_cluster(state)
            if not given:
                shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    local = [r for r in rows if r["backend"] == "local"]
    managed = [r for r in rows if r["backend"] == "managed_job"]
    result = {
        "name": "slurm_overhead",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "command": "python bench/bench_slurm.py " + " ".join(sys.argv[1:]),
        "lane": "the four fixture `pass` notebooks (tests/fixtures/notebooks/pass.ipynb), demo profile",
        "cluster": "scripts/slurm/cluster.sh: single node on this machine, sched_interval=2, cred_expire=10",
        "poll_s": args.poll_s,
        "runs": args.runs,
        "seconds_to_final_line": {"local": summary(local, "to_final_line_s"), "slurm": summary(managed, "to_final_line_s")},
        "slurm_split_median_s": {k: summary(managed, k)["median"] for k in
                                 ("launch_to_sbatch_s", "sbatch_to_job_start_s", "job_start_to_final_line_s")},
        "overhead_median_s": round(statistics.median(r["to_final_line_s"] for r in managed)
                                   - statistics.median(r["to_final_line_s"] for r in local), 3),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("seconds_to_final_line", "slurm_split_median_s", "overhead_median_s")},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
