"""The Lightning side of training shared by FastPitch and HiFi-GAN: the lane's progress callback
(PROGRESS/STATS lines, loss log, NaN detection, atomic step checkpoints), the Trainer factory, and
the loss log's helpers (truncate on resume, plot for the report).

Imports lightning at module level: import this module only where training happens.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from ..core.fsutil import atomic_write_json, atomic_write_text
from ..core.reasons import LaneError
from ..core.stage import StageRun
from .runtime import memory_stats


class LaneProgressCallback(pl.Callback):
    """PROGRESS/STATS lines, a per-step loss log, NaN detection and atomic step checkpoints."""

    def __init__(self, st: StageRun, total: int, ckpt_dir: Path, every: int, stats_every: int,
                 progress_every: int, loss_log: Path, step_div: int = 1, prefix: str = "") -> None:
        self.st, self.total, self.ckpt_dir, self.every = st, total, ckpt_dir, every
        self.stats_every, self.loss_log, self.step_div, self.prefix = stats_every, loss_log, step_div, prefix
        self.progress_every = progress_every or max(1, total // 50)
        self.step_times: list[float] = []
        self.first_step: int | None = None
        self._t_batch = 0.0
        self._t_stats = 0.0
        self._step_stats = 0
        self._samples = 0
        self._fh: Any = None

    def _step(self, trainer: Any) -> int:
        return int(trainer.global_step) // self.step_div

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._t_stats = time.perf_counter()
        self._step_stats = self._step(trainer)
        self.first_step = self._step(trainer)
        self.loss_log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.loss_log, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._t_batch = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        now = time.perf_counter()
        self.step_times.append(now - self._t_batch)
        step = self._step(trainer)
        with contextlib.suppress(Exception):
            self._samples += int(batch[0].shape[0]) if isinstance(batch, (list, tuple)) else \
                int(next(iter(batch.values())).shape[0])
        metrics = trainer.callback_metrics
        loss = None
        if isinstance(outputs, dict) and "loss" in outputs:
            loss = float(outputs["loss"].detach())
        else:
            for key in ("g_loss", "t_loss", "loss"):
                if key in metrics:
                    loss = float(metrics[key])
                    break
        if loss is not None and not math.isfinite(loss):
            self._flush()
            raise LaneError("training_diverged", f"{self.prefix}loss became {loss} at step {step}")
        terms = {k.replace("/", "_"): float(v) for k, v in metrics.items()
                 if getattr(v, "numel", lambda: 1)() == 1 and not k.startswith("val")}
        if self._fh is not None and trainer.is_global_zero:
            self._fh.write(json.dumps({"model": self.prefix.rstrip("_") or "fastpitch", "step": step,
                                       "loss": loss, **terms}) + "\n")
        if trainer.is_global_zero and (step % self.stats_every == 0 or step >= self.total):
            dt = max(now - self._t_stats, 1e-9)
            steps = max(step - self._step_stats, 0)
            lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else 0.0
            vals: dict[str, Any] = {f"{self.prefix}{k}": v for k, v in terms.items()}
            vals.update({
                f"{self.prefix}step": step, f"{self.prefix}lr": lr,
                f"{self.prefix}steps_per_s": round(steps / dt, 4),
                f"{self.prefix}samples_per_s": round(self._samples / dt, 3),
            })
            vals.update(memory_stats())
            self.st.stats(**{k: v for k, v in vals.items() if isinstance(v, (int, float))})
            self._t_stats, self._step_stats, self._samples = now, step, 0
            self._flush()
        if trainer.is_global_zero and (step % self.progress_every == 0 or step >= self.total):
            self.st.progress(step, self.total, f"{self.prefix}training" if self.prefix else "training")
        if self.every > 0 and (step % self.every == 0 or step >= self.total):
            self.save(trainer, step)

    def _flush(self) -> None:
        if self._fh is not None:
            self._fh.flush()

    def save(self, trainer: Any, step: int) -> None:
        """Write the checkpoint beside the old one, then rename: a kill -9 never leaves a torn file."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.ckpt_dir / f".last.{step}.ckpt.tmp"
        trainer.save_checkpoint(str(tmp))
        if trainer.is_global_zero:
            os.replace(tmp, self.ckpt_dir / "last.ckpt")
            atomic_write_json(self.ckpt_dir / "last.json", {"step": step, "global_step": int(trainer.global_step)})

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self._flush()
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.on_train_end(trainer, pl_module)



def make_trainer(settings: dict[str, Any], max_steps: int, log_dir: Path, callbacks: list[Any],
                 *, logger: bool = True) -> Any:
    val_every = int(settings.get("val_every") or 0)
    kwargs: dict[str, Any] = {
        "max_steps": max_steps,
        "max_epochs": -1,
        "accelerator": settings.get("accelerator", "auto"),
        "devices": settings.get("devices", 1),
        "precision": settings.get("precision", "32-true"),
        "gradient_clip_val": settings.get("grad_clip") or None,
        "callbacks": callbacks,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": max(1, int(settings.get("stats_every", 10))),
        "use_distributed_sampler": True,
    }
    if val_every > 0:
        kwargs.update(check_val_every_n_epoch=None, val_check_interval=val_every,
                      limit_val_batches=settings.get("limit_val_batches", 4))
    else:
        kwargs.update(limit_val_batches=0)
    if logger:
        from lightning.pytorch.loggers import TensorBoardLogger

        kwargs["logger"] = TensorBoardLogger(str(log_dir), name="tensorboard", version=0)
    else:
        kwargs["logger"] = False
    return pl.Trainer(**kwargs)


def truncate_loss_log(path: Path, model: str, step: int) -> None:
    """Drop the rows of `model` after `step`: those steps are redone from the checkpoint."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line torn by the kill
        if row.get("model", "fastpitch") != model or int(row.get("step", 0)) <= step:
            keep.append(line)
    atomic_write_text(path, "".join(x + "\n" for x in keep))


def plot_loss(loss_log: Path, png: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [json.loads(x) for x in loss_log.read_text(encoding="utf-8").splitlines() if x.strip()]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for model in sorted({r.get("model", "fastpitch") for r in rows}):
        pts = [(r["step"], r["loss"]) for r in rows if r.get("model", "fastpitch") == model and r.get("loss") is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], label=model)
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.legend()
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return True
