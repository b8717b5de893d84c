#!/usr/bin/env python3
"""What checkpoint selection (lane.nemo.select) costs on the demo: the demo profile's training (the
project's FastPitch base fine-tuned 300 steps on the demo recording, Griffin-Lim) with selection on
(`train.select.every: 50`, the demo's setting: 6 scorings of 3 sentences) and off (`every: 0`), on the
same prepared dataset, alternating, in one process.

    .venv/bin/python bench/bench_select.py                    # -> bench/results/select_demo_<machine>.json
    .venv/bin/python bench/bench_select.py --steps 100        # quicker, the same share: one scoring per 50 steps

The share depends on how often the model is scored per step (`every`), not on the run's length: 100 steps
scored at 50 and 100 cost what 300 steps scored at 50, 100, ..., 300 cost, per step.

    .venv/bin/python bench/bench_select.py --from-run runs/<run_id>     # a finished `lane run --profile demo`

reads what a real demo run measured about itself (the selector times its own scoring; train_wall_s is
the whole fit) instead of training again: the cheap way on a machine too busy for two more trainings.

Reported: training wall time with and without selection, the selector's own scoring time, and the
overhead as a share of training time (the issue's budget is 15 %), plus the curve it chose from. Run on
a shared 2-core box the absolute times are noisy (loadavg is recorded); the selector's own time is
measured inside the run, so its share does not depend on the other tenants as much.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import machine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prepare(work: Path) -> Any:
    """The demo recording through the data stage (what `lane run --profile demo` trains on)."""
    from lane.core.config import load_profile
    from lane.core.stage import StageRun
    from lane.data import prepare_dataset

    st = StageRun.open("train", root=work, run_id="bench-data")
    prof = load_profile("demo", work)
    ds = prepare_dataset(st, prof, audio=str(work / "data/demo/longform.flac"), out_dir=st.stage_dir / "data",
                         weights_manifest=str(work / "configs/voice/weights-manifest.example.json"),
                         lane="tts_prod_train_nemo")
    return ds


def train_once(work: Path, ds: Any, every: int, steps: int, tag: str) -> dict[str, Any]:
    from lane.core.config import deep_merge, load_profile
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    prof = deep_merge(copy.deepcopy(load_profile("demo", work)),
                      {"train": {"select": {"every": every}, "fastpitch": {"max_steps": steps}}})
    st = StageRun.open("train", root=work, run_id=f"bench-{tag}")
    t0 = time.perf_counter()
    train_voice(st, prof, ds, out_dir=st.stage_dir / "model",
                weights_manifest=str(work / "configs/voice/weights-manifest.example.json"),
                allow_from_scratch=False, resume=False)
    wall = time.perf_counter() - t0
    res = st.finish()
    stats = res.get("stats") or {}
    sel = st.stage_dir / "select.json"
    record = json.loads(sel.read_text()) if sel.exists() else None
    shutil.rmtree(st.stage_dir / "model" / "checkpoints", ignore_errors=True)
    return {"select_every": every, "train_voice_wall_s": round(wall, 2), "fit_wall_s": stats.get("train_wall_s"),
            "select_wall_s": stats.get("select_wall_s"), "select_share": stats.get("select_share"),
            "best_step": stats.get("select_best_step"),
            "curve": [{k: h[k] for k in ("step", "score", "cer", "spk_sim", "kept")} for h in record["history"]]
            if record else None}


def from_run(run_dir: Path) -> dict[str, Any]:
    """The selection cost a finished run measured: its select.json and the train stage's stats."""
    record = json.loads((run_dir / "train" / "select.json").read_text())
    stats = json.loads((run_dir / "train" / "result.json").read_text())["stats"]
    fit = float(stats["train_wall_s"])
    return {"run_id": run_dir.name, "fit_wall_s": fit, "select_wall_s": record["wall_s"],
            "fit_without_select_s": round(fit - record["wall_s"], 2), "select_share": record["share"],
            "scorings": len(record["history"]), "every": record["every"], "n_texts": record["n_texts"],
            "best_step": record["best_step"], "last_step": record["last_step"],
            "curve": [{k: h[k] for k in ("step", "score", "cer", "spk_sim", "kept")} for h in record["history"]]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--from-run", type=Path, help="a finished demo run's directory (runs/<run_id>)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.from_run:
        run = from_run(args.from_run)
        summary = {"select_wall_s": run["select_wall_s"], "select_share_of_training": run["select_share"],
                   "budget_share": 0.15, "within_budget": run["select_share"] <= 0.15}
        result = {"bench": "checkpoint selection cost on the demo (measured inside a demo run)",
                  "date": dt.datetime.now(dt.UTC).isoformat(), "machine": machine(), "summary": summary, "runs": [run]}
        out = args.out or ROOT / "bench" / "results" / f"select_demo_run_cpu{result['machine']['cpu_count']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(summary, indent=2))
        print(f"-> {out}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-select-") as tmp:
        work = Path(tmp)
        for name in ("configs", "data/demo", "data/eval"):
            shutil.copytree(ROOT / name, work / name)
        t0 = time.perf_counter()
        ds = prepare(work)
        prep_s = time.perf_counter() - t0
        runs: list[dict[str, Any]] = []
        for i in range(args.repeats):  # alternate: on, off, on, off ...
            runs.append({"repeat": i, **train_once(work, ds, args.every, args.steps, f"on{i}")})
            runs.append({"repeat": i, **train_once(work, ds, 0, args.steps, f"off{i}")})
    on = [r for r in runs if r["select_every"] > 0]
    off = [r for r in runs if r["select_every"] == 0]
    med = statistics.median
    fit_on, fit_off = med(r["fit_wall_s"] for r in on), med(r["fit_wall_s"] for r in off)
    summary = {"fit_wall_s_select_on": fit_on, "fit_wall_s_select_off": fit_off,
               "wall_ratio_on_over_off": round(fit_on / fit_off, 4),
               "select_wall_s": med(r["select_wall_s"] for r in on),
               "select_share_of_training": med(r["select_share"] for r in on),
               "budget_share": 0.15}
    summary["within_budget"] = summary["select_share_of_training"] <= 0.15
    result = {"bench": "checkpoint selection cost on the demo", "date": dt.datetime.now(dt.UTC).isoformat(),
              "machine": machine(), "settings": {"profile": "demo", "steps": args.steps, "every": args.every,
                                                 "repeats": args.repeats, "data_prep_s": round(prep_s, 1)},
              "summary": summary, "runs": runs}
    out = args.out or ROOT / "bench" / "results" / f"select_demo_{platform.machine()}_cpu{result['machine']['cpu_count']}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(summary, indent=2))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
