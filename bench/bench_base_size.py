#!/usr/bin/env python3
"""Seconds per FastPitch training step for candidate base sizes, on this CPU, at the demo's batch size.

Chooses the size of the project-trained base (scripts/train_base.py): the demo fine-tunes it for a few
hundred steps inside ~3 minutes on 2 cores, so the base can be no larger than what runs that fast.
Each candidate is configs/nemo/fastpitch.yaml with top-level knob overrides, trained for --steps steps
(Lightning, fp32, grad clip 1.0, as lane.nemo.fastpitch) on a NeMo manifest + pitch cache (the data stage's
runs/<id>/train/data, or lane.nemo.tinydata); the first --warmup steps are not timed.

    .venv/bin/python bench/bench_base_size.py --data runs/<id>/train/data [--steps 25] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

CANDIDATES = {
    "demo_tiny_64x2": dict(d_model=64, n_layer_enc=2, n_layer_dec=2, d_head=32, d_inner=128, predictor_filter=64),
    "d96x3_i384": dict(d_model=96, n_layer_enc=3, n_layer_dec=3, d_head=48, d_inner=384, predictor_filter=96),
    "d128x2_i512": dict(d_model=128, n_layer_enc=2, n_layer_dec=2, d_head=64, d_inner=512, predictor_filter=128),
    "d128x3_i256": dict(d_model=128, n_layer_enc=3, n_layer_dec=3, d_head=64, d_inner=256, predictor_filter=128),
    "d128e4d3_i384": dict(d_model=128, n_layer_enc=4, n_layer_dec=3, d_head=64, d_inner=384, predictor_filter=128),
    "d128x3": dict(d_model=128, n_layer_enc=3, n_layer_dec=3, d_head=64, d_inner=512, predictor_filter=128),
    "d128x4": dict(d_model=128, n_layer_enc=4, n_layer_dec=4, d_head=64, d_inner=512, predictor_filter=128),
    "d192x3": dict(d_model=192, n_layer_enc=3, n_layer_dec=3, d_head=64, d_inner=768, predictor_filter=192),
    "d256x4": dict(d_model=256, n_layer_enc=4, n_layer_dec=4, d_head=64, d_inner=1024, predictor_filter=256),
}


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def micro(name: str, cfg, args) -> dict:
    """Min-of-N wall time of one training step (forward, losses, backward, AdamW step) on a fixed batch,
    plus the min time to load a batch from the dataloader (wav, pitch, alignment prior)."""
    import lightning.pytorch as pl
    import nemo.collections.tts.models as tts
    import torch

    trainer = pl.Trainer(max_steps=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    model = tts.FastPitchModel(cfg=cfg, trainer=trainer)
    dl = model._train_dl
    it = iter(dl)
    load = []
    batches = []
    for _ in range(min(args.micro, 4)):
        t0 = time.perf_counter()
        batches.append(next(it))
        load.append(time.perf_counter() - t0)
    batch = batches[0]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()
    # training_step calls self.log: stub it (outside a Trainer loop)
    model.log = lambda *a, **k: None
    steps = []
    for _ in range(args.micro):
        t0 = time.perf_counter()
        loss = model.training_step(batch, 0)
        loss = loss["loss"] if isinstance(loss, dict) else loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        steps.append(time.perf_counter() - t0)
    return {"name": name, **CANDIDATES[name], "params_m": round(n_params(model) / 1e6, 3),
            "batch_size": args.batch_size, "threads": args.threads, "min_step_s": round(min(steps), 4),
            "median_step_s": round(statistics.median(steps), 4), "min_load_s": round(min(load), 4),
            "loadavg": [round(x, 2) for x in __import__("os").getloadavg()]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with train_manifest.json and sup_* (pitch cache)")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--only", default="", help="comma list of candidate names")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 gives a CPU time per step that a busy "
                    "machine does not inflate: no OpenMP spin-waiting)")
    ap.add_argument("--micro", type=int, default=0, help="instead of a Lightning run: N repeats of forward+backward+"
                    "optimizer step on one fixed batch per candidate, min time (robust on a busy machine)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    import lightning.pytorch as pl
    import nemo.collections.tts.models as tts
    import torch
    from omegaconf import OmegaConf

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    sup = next(p for p in data.iterdir() if p.name.startswith("sup_"))
    stats = json.loads((data / "pitch_stats.json").read_text())
    base = OmegaConf.load(ROOT / "configs/nemo/fastpitch.yaml")
    rows = []
    names = [n for n in CANDIDATES if not args.only or n in args.only.split(",")]
    for name in names:
        knobs = dict(CANDIDATES[name], batch_size=args.batch_size, pitch_mean=stats["pitch_mean"],
                     pitch_std=stats["pitch_std"], warmup_steps=50, lr=2e-3, bin_loss_warmup_epochs=2)
        full = OmegaConf.create(OmegaConf.to_container(OmegaConf.merge(base, knobs), resolve=True))
        cfg = full["model"]
        for part in ("train_ds", "validation_ds"):
            cfg[part]["dataset"]["manifest_filepath"] = str(data / "train_manifest.json")
            cfg[part]["dataset"]["sup_data_path"] = str(sup)
        if args.micro:
            rows.append(micro(name, cfg, args))
            print(json.dumps(rows[-1]), flush=True)
            continue
        times: list[float] = []
        cpu: list[float] = []

        class Timer(pl.Callback):
            t = 0.0
            c = 0.0

            def __init__(self, times: list[float], cpu: list[float]) -> None:
                self.times, self.cpu = times, cpu

            def on_train_batch_start(self, *a):
                self.t = time.perf_counter()
                self.c = time.process_time()

            def on_train_batch_end(self, *a):
                # from the previous step's end: includes loading the batch
                now, cnow = time.perf_counter(), time.process_time()
                self.times.append(now - (self.prev if self.prev else self.t))
                self.cpu.append(cnow - (self.cprev if self.prev else self.c))
                self.prev, self.cprev = now, cnow

            prev = 0.0
            cprev = 0.0

        with tempfile.TemporaryDirectory() as tmp:
            trainer = pl.Trainer(max_steps=args.steps, max_epochs=-1, accelerator="cpu", devices=1,
                                 precision="32-true", gradient_clip_val=1.0, callbacks=[Timer(times, cpu)],
                                 enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                 num_sanity_val_steps=0, limit_val_batches=0, logger=False, default_root_dir=tmp)
            model = tts.FastPitchModel(cfg=cfg, trainer=trainer)
            t0 = time.perf_counter()
            trainer.fit(model)
            wall = time.perf_counter() - t0
        timed = times[args.warmup:]
        ctimed = cpu[args.warmup:]
        row = {"name": name, **CANDIDATES[name], "params_m": round(n_params(model) / 1e6, 3),
               "batch_size": args.batch_size, "median_step_s": round(statistics.median(timed), 4),
               "mean_step_s": round(statistics.mean(timed), 4), "wall_s": round(wall, 1),
               "steps_per_s": round(1 / statistics.median(timed), 3),
               "median_cpu_s_per_step": round(statistics.median(ctimed), 4),
               "loadavg": [round(x, 2) for x in __import__("os").getloadavg()],
               "s_per_300_steps": round(300 * statistics.mean(timed), 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        from benchlib import machine

        Path(args.out).write_text(json.dumps({"rows": rows, "data": str(data), "machine": machine()}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
