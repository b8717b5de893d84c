"""Runner overhead per stage: papermill + kernel start + HTML render + result validation + gate +
ledger + report, against calling the same stage function in-process.

    .venv/bin/python bench/bench_runner.py [--runs 5] [--inproc 50]

Writes bench/results/runner_overhead.json. On a shared CPU the numbers are noisy; the machine block
records what it ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchlib import machine

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STAGES = ["verify", "train", "export", "validate"]


def stage_body(st, root: str) -> None:
    """The work of one stage: what both the notebook and the in-process call run."""
    for i in range(1, 4):
        st.progress(i, 3, f"step {i}")
    out = st.stage_dir / "out.txt"
    out.write_text(f"{st.stage}:{st.run_id}\n", encoding="utf-8")
    st.artifact("stage_output", out)
    st.stats(items=3, rate=1.5)
    st.check("output_written", out.exists(), out.name)


def _notebook(path: Path) -> Path:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    p = new_code_cell('root = "."\nrun_id = None\nrun_dir = None\nstage = "verify"\nlane = None')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, new_code_cell(
        f"import sys\nsys.path.insert(0, {str(BENCH)!r})\nfrom bench_runner import stage_body\n"
        "from lane.core.stage import StageRun\n"
        "st = StageRun.open(stage, root=root, run_id=run_id, run_dir=run_dir, lane=lane)\n"
        "stage_body(st, root)\nst.finish()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5, help="single-stage runner runs")
    ap.add_argument("--inproc", type=int, default=50, help="in-process calls")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "runner_overhead.json")
    args = ap.parse_args()

    import papermill

    from lane.core.config import Settings
    from lane.core.stage import StageRun
    from lane.core.status import OrchestratorLog
    from lane.runner import execute_run

    info = machine(papermill=papermill.__version__)
    work = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    try:
        shutil.copytree(REPO / "configs", work / "configs")
        nb = _notebook(work / "bench_stage.ipynb")

        # in-process: the same function, plus writing the result (what the notebook does)
        inproc = []
        for i in range(args.inproc):
            t0 = time.perf_counter()
            st = StageRun.open("verify", root=work, run_id=f"inproc-{i}")
            import contextlib
            import io

            with contextlib.redirect_stdout(io.StringIO()):
                stage_body(st, str(work))
                st.finish()
            inproc.append(time.perf_counter() - t0)

        # runner, one stage per run (kernel start paid every run)
        single, executed = [], []
        log = OrchestratorLog(work)
        try:
            for _ in range(args.runs):
                t0 = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    out = execute_run(Settings(stages=["verify"]), work, notebooks={"verify": nb}, log=log)
                single.append(time.perf_counter() - t0)
                executed.append(out.stages[0]["duration_s"])
                assert out.status == "completed", out
            # runner, four stages in one run
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                out4 = execute_run(Settings(stages=STAGES), work, notebooks=dict.fromkeys(STAGES, nb), log=log)
            four = time.perf_counter() - t0
            assert out4.status == "completed", out4
        finally:
            log.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    inproc_s = statistics.median(inproc)
    single_s = statistics.median(single)
    papermill_s = statistics.median(executed)
    per_stage_4 = four / len(STAGES)
    result = {
        "name": "runner_overhead",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "command": "python bench/bench_runner.py " + " ".join(sys.argv[1:]),
        "runs": {"single_stage_runs": args.runs, "inprocess_calls": args.inproc},
        "seconds": {
            "inprocess_stage_median": round(inproc_s, 6),
            "runner_single_stage_run_median": round(single_s, 3),
            "runner_single_stage_run_min": round(min(single), 3),
            "papermill_execute_median": round(papermill_s, 3),
            "runner_bookkeeping_median": round(single_s - papermill_s, 3),
            "runner_four_stage_run": round(four, 3),
            "runner_per_stage_in_four_stage_run": round(per_stage_4, 3),
            "overhead_per_stage": round(per_stage_4 - inproc_s, 3),
        },
        "ratios": {
            "runner_single_stage_vs_inprocess": round(single_s / inproc_s, 1),
            "runner_per_stage_vs_inprocess": round(per_stage_4 / inproc_s, 1),
        },
        "explain": ("papermill_execute = kernel start + cells + notebook writes; bookkeeping = HTML render, "
                    "schema validation, gate, ledger append, train_status, readiness report"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["seconds"], indent=2))
    print(json.dumps(result["ratios"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
