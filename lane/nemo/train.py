"""FastPitch (and optionally HiFi-GAN) training for the train stage, with PROGRESS/STATS lines,
atomic step checkpoints, resume after a crash, and a loss log + curve for the readiness report.

Entry point: `train_voice(st, profile, ds, out_dir=..., weights_manifest=..., allow_from_scratch=...,
resume=...)`. The model config is configs/nemo/fastpitch.yaml with the profile's `train.fastpitch.model`
knobs merged over it; the dataset stage supplies manifests, the pitch cache and pitch statistics.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.fsutil import atomic_write_json, atomic_write_text, sha256_file
from ..core.reasons import LaneError

FASTPITCH_CONFIG = "configs/nemo/fastpitch.yaml"
HIFIGAN_CONFIG = "configs/nemo/hifigan.yaml"
OUTPUTS_SCHEMA = "lane.train_outputs/1"


@dataclass
class TrainResult:
    fastpitch_nemo: str
    vocoder: str  # path of the HiFi-GAN .nemo, or "griffin_lim"
    vocoder_params: dict[str, Any]
    tokenizer: dict[str, Any]
    loss_log: str
    steps: int
    promotable: bool
    outputs_json: str = ""
    audio: dict[str, Any] = field(default_factory=dict)
    base_weights: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------ imports
def import_nemo() -> Any:
    """Import NeMo's TTS models or fail with nemo_runtime_unavailable (the seed's behaviour)."""
    try:
        import nemo.collections.tts.models as tts_models
    except Exception as exc:  # ImportError, or a broken install raising anything else
        raise LaneError("nemo_runtime_unavailable",
                        f"cannot import nemo.collections.tts ({type(exc).__name__}: {exc})") from exc
    return tts_models


def _quiet_nemo() -> None:
    try:
        from nemo.utils import logging as nemo_logging

        nemo_logging.setLevel(os.environ.get("LANE_NEMO_LOG_LEVEL", "ERROR"))
    except Exception:  # logging setup is cosmetic
        pass


# ------------------------------------------------------------------------------------ config
def _ds_get(ds: Any, name: str, default: Any = None) -> Any:
    if isinstance(ds, dict):
        return ds.get(name, default)
    return getattr(ds, name, default)


def train_settings(profile: dict[str, Any]) -> dict[str, Any]:
    """The profile's `train:` section with defaults filled in."""
    t = dict(profile.get("train") or {})
    fp = dict(t.get("fastpitch") or {})
    fp.setdefault("config", FASTPITCH_CONFIG)
    fp.setdefault("init", "base")
    fp.setdefault("max_steps", 1000)
    fp.setdefault("model", {})
    fp.setdefault("tokenizer", "config")
    voc = dict(t.get("vocoder") or {})
    voc.setdefault("type", "griffin_lim")
    voc.setdefault("griffin_lim", {"n_iter": 32, "power": 1.2})
    out = {
        "seed": 1234, "devices": 1, "accelerator": "auto", "precision": "32-true", "grad_clip": 1.0,
        "checkpoint_every": 100, "stats_every": 10, "progress_every": 0, "min_epoch_steps": 40,
        "val_every": 0, "limit_val_batches": 4, "num_workers": 0,
    }
    out.update({k: v for k, v in t.items() if k not in ("fastpitch", "vocoder")})
    out["fastpitch"] = fp
    out["vocoder"] = voc
    return out


def _write_repeated_manifest(src: Path, dst: Path, batch_size: int, min_epoch_steps: int) -> tuple[int, int]:
    """Repeat the training manifest so one epoch has at least `min_epoch_steps` batches.

    Small datasets otherwise end an epoch every few steps, and Lightning's per-epoch overhead
    (dataloader restart, epoch-end hooks) dominated the step time on the H100 (shared/gpu/README.md).
    Returns (rows in the source, repeat factor).
    """
    rows = [ln for ln in src.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not rows:
        raise LaneError("dataset_empty", f"{src} lists no clips")
    steps = max(1, math.ceil(len(rows) / batch_size))
    repeat = max(1, math.ceil(min_epoch_steps / steps)) if min_epoch_steps > 0 else 1
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(rows * repeat) + "\n", encoding="utf-8")
    return len(rows), repeat


def fastpitch_config(settings: dict[str, Any], ds: Any, root: Path, out_dir: Path) -> Any:
    """The FastPitch model DictConfig: base yaml + profile knobs + dataset paths and pitch settings."""
    from omegaconf import OmegaConf

    fp = settings["fastpitch"]
    cfg_path = Path(fp["config"])
    if not cfg_path.is_absolute():
        cfg_path = root / cfg_path
    if not cfg_path.exists():
        raise LaneError("config_invalid", f"FastPitch config {cfg_path} does not exist")
    base = OmegaConf.load(cfg_path)
    knobs: dict[str, Any] = dict(fp.get("model") or {})
    knobs["num_workers"] = int(settings.get("num_workers", 0))
    ps = _ds_get(ds, "pitch_settings") or {}
    stats = _ds_get(ds, "pitch_stats") or {}
    sr = _ds_get(ds, "sample_rate") or ps.get("sample_rate")
    if sr:
        knobs["sample_rate"] = int(sr)
    for src, dst in (("fmin", "pitch_fmin"), ("fmax", "pitch_fmax"), ("hop_length", "hop_length"),
                     ("win_length", "win_length"), ("n_fft", "n_fft")):
        if ps.get(src) is not None:
            knobs[dst] = ps[src]
    for key in ("pitch_mean", "pitch_std"):
        if stats.get(key) is not None:
            knobs[key] = float(stats[key])
    unknown = [k for k in knobs if k not in base or k == "model"]
    if unknown:
        raise LaneError("config_invalid", f"unknown FastPitch knob(s) {unknown} in train.fastpitch.model")
    merged = OmegaConf.merge(base, knobs)
    batch_size = int(merged.batch_size)
    train_manifest = Path(_ds_get(ds, "train_manifest"))
    val_manifest = Path(_ds_get(ds, "val_manifest") or train_manifest)
    rep_manifest = out_dir / "train_manifest.epoch.json"
    n_rows, repeat = _write_repeated_manifest(train_manifest, rep_manifest, batch_size,
                                              int(settings.get("min_epoch_steps", 0)))
    sup = _ds_get(ds, "sup_data_dir") or (out_dir / "sup_data")
    full: Any = OmegaConf.create(OmegaConf.to_container(merged, resolve=True))
    model: Any = full["model"]
    for part, manifest in (("train_ds", rep_manifest), ("validation_ds", val_manifest)):
        model[part]["dataset"]["manifest_filepath"] = str(manifest)
        model[part]["dataset"]["sup_data_path"] = str(sup)
    if int(settings.get("num_workers", 0)) > 0:
        model.train_ds.dataloader_params.persistent_workers = True
    model.train_ds.dataloader_params.batch_size = batch_size
    return model, {"rows": n_rows, "repeat": repeat, "batch_size": batch_size}


# --------------------------------------------------------------------------------- callback
def _lane_callback_class() -> Any:
    import lightning.pytorch as pl

    class LaneProgressCallback(pl.Callback):
        """PROGRESS/STATS lines, a per-step loss log, NaN detection and atomic step checkpoints."""

        def __init__(self, st: Any, total: int, ckpt_dir: Path, every: int, stats_every: int,
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
                vals.update(_memory_stats())
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

    return LaneProgressCallback


def _memory_stats() -> dict[str, float]:
    out: dict[str, float] = {}
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu_mem_peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    except Exception:
        pass
    try:
        import resource

        out["rss_peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    except Exception:
        pass
    return out


def make_trainer(settings: dict[str, Any], max_steps: int, log_dir: Path, callbacks: list[Any],
                 *, logger: bool = True) -> Any:
    import lightning.pytorch as pl

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


# ---------------------------------------------------------------------------------- weights
def _resolve_base(weights_manifest: str | None, root: Path, role: str) -> dict[str, Any] | None:
    """The usable base weight entry for `role` as {role, id, path, sha256, license, ...}; None when the
    manifest has none. An entry that is present but unusable (licence, hash, missing file) raises its code."""
    if not weights_manifest:
        return None
    from ..core.reasons import REASONS
    from ..core.weights import resolve_weight  # helper B's module

    entries = resolve_weight(weights_manifest, root, role)
    for e in entries:
        if e.usable and e.path is not None:
            return {"role": role, "id": e.id, "path": str(e.path), "sha256": e.actual_sha256 or e.sha256,
                    "license": e.weights_license, "code_license": e.code_license, "source": e.source}
    for e in entries:
        if not e.optional and e.state in REASONS and e.state != "ok":
            raise LaneError(e.state, f"{role} weights {e.id}: " + ("; ".join(e.problems) or e.state))
    return None


# ---------------------------------------------------------------------------------- models
def _tokens_of(cfg_tokenizer: Any) -> list[str]:
    from nemo.core.classes.common import safe_instantiate

    return list(safe_instantiate(cfg_tokenizer).tokens)


def build_fastpitch(cfg: Any, trainer: Any, base: dict[str, Any] | None, tokenizer_mode: str) -> Any:
    """A FastPitchModel from `cfg` (from scratch) or fine-tuned from a base .nemo (architecture and,
    with tokenizer_mode="checkpoint", the tokenizer from the base)."""
    from omegaconf import OmegaConf, open_dict

    tts = import_nemo()
    _quiet_nemo()
    if base is None:
        return tts.FastPitchModel(cfg=cfg, trainer=trainer)
    path = str(base["path"])
    try:
        base_cfg = tts.FastPitchModel.restore_from(path, return_config=True, map_location="cpu")
    except Exception as exc:
        raise LaneError("base_checkpoint_incompatible",
                        f"{path} is not a loadable FastPitch .nemo ({type(exc).__name__}: {exc})") from exc
    if not base_cfg.get("learn_alignment", False):
        raise LaneError("base_checkpoint_incompatible", f"{path}: base FastPitch was not trained with learn_alignment")
    if tokenizer_mode == "config":
        want = _tokens_of(cfg.text_tokenizer)
        base_model = tts.FastPitchModel.restore_from(path, map_location="cpu")
        have = list(base_model.vocab.tokens)
        del base_model
        if want != have:
            diff = sorted(set(want) ^ set(have))
            raise LaneError(
                "base_checkpoint_incompatible",
                f"vocabulary mismatch: config tokenizer {cfg.text_tokenizer._target_.rsplit('.', 1)[-1]} has "
                f"{len(want)} tokens, base checkpoint {path} has {len(have)} "
                f"({base_cfg.text_tokenizer._target_.rsplit('.', 1)[-1]}); differing: {diff[:12]}; "
                "set train.fastpitch.tokenizer: checkpoint to keep the checkpoint's tokenizer")
    merged: Any = OmegaConf.create(OmegaConf.to_container(base_cfg, resolve=False))
    with open_dict(merged):
        for key in ("train_ds", "validation_ds", "optim", "pitch_mean", "pitch_std", "pitch_fmin", "pitch_fmax"):
            merged[key] = cfg[key]
        if tokenizer_mode == "config":
            merged["text_tokenizer"] = cfg.text_tokenizer
        merged.pop("log_config", None)
    try:
        model = tts.FastPitchModel.restore_from(path, override_config_path=merged, trainer=trainer,
                                                map_location="cpu", strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:300]
        raise LaneError("base_checkpoint_incompatible", f"{path}: weights do not fit the config ({first})") from exc
    model.setup_training_data(model.cfg.train_ds)
    model.setup_validation_data(model.cfg.validation_ds)
    return model


# ---------------------------------------------------------------------------------- training
def _plot_loss(loss_log: Path, png: Path) -> bool:
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


def _audio_settings(cfg: Any) -> dict[str, Any]:
    pre = cfg.preprocessor
    return {
        "sample_rate": int(cfg.sample_rate), "n_mels": int(cfg.n_mel_channels), "n_fft": int(pre.n_fft),
        "win_length": int(pre.n_window_size), "hop_length": int(pre.n_window_stride),
        "lowfreq": float(pre.lowfreq or 0), "highfreq": float(pre.highfreq) if pre.highfreq else None,
        "window": str(pre.window), "log_zero_guard_value": float(pre.log_zero_guard_value),
        "mel_norm": "slaney", "mag_power": float(pre.mag_power),
    }


def _truncate_loss_log(path: Path, model: str, step: int) -> None:
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


def run_fastpitch(st: Any, settings: dict[str, Any], cfg: Any, *, out_dir: Path, base: dict[str, Any] | None,
                  resume: bool, extra_callbacks: list[Any] | None = None) -> tuple[Any, int, list[float]]:
    """Fit FastPitch to `settings.fastpitch.max_steps`, resuming from out_dir/checkpoints/last.ckpt."""
    import lightning.pytorch as pl

    pl.seed_everything(int(settings["seed"]), workers=True, verbose=False)
    total = int(settings["fastpitch"]["max_steps"])
    ckpt_dir = out_dir / "checkpoints" / "fastpitch"
    cb_cls = _lane_callback_class()
    cb = cb_cls(st, total, ckpt_dir, int(settings["checkpoint_every"]), int(settings["stats_every"]),
                int(settings.get("progress_every") or 0), out_dir / "loss_log.jsonl")
    trainer = make_trainer(settings, total, out_dir, [cb, *(extra_callbacks or [])])
    model = build_fastpitch(cfg, trainer, base, settings["fastpitch"]["tokenizer"])
    ckpt = ckpt_dir / "last.ckpt"
    ckpt_path = None
    if resume and ckpt.exists():
        ckpt_path = str(ckpt)
        meta = json.loads((ckpt_dir / "last.json").read_text())
        print(f"resuming FastPitch from {ckpt} ({meta})", flush=True)
        _truncate_loss_log(out_dir / "loss_log.jsonl", "fastpitch", int(meta["step"]))
    elif resume:
        print("resume asked for but no FastPitch checkpoint yet: starting at step 0", flush=True)
    try:
        trainer.fit(model, ckpt_path=ckpt_path)
    except LaneError:
        raise
    except (RuntimeError, KeyError, EOFError) as exc:
        if ckpt_path and ("checkpoint" in str(exc).lower() or isinstance(exc, (EOFError, KeyError))):
            raise LaneError("checkpoint_missing", f"{ckpt_path} is not usable: {exc}") from exc
        raise
    if int(trainer.global_step) < total:
        raise LaneError("training_diverged", f"training stopped at step {trainer.global_step} of {total}")
    st.stats(fastpitch_start_step=int(cb.first_step or 0), fastpitch_steps=int(trainer.global_step))
    return model, int(trainer.global_step), cb.step_times


def _dataset_summary(ds: Any) -> dict[str, Any]:
    """Hash of the dataset manifest (the data stage's, else the training manifest) and a short summary."""
    src = _ds_get(ds, "manifest_path") or _ds_get(ds, "train_manifest")
    out: dict[str, Any] = {"manifest": str(src), "sha256": _ds_get(ds, "dataset_sha256") or sha256_file(src),
                           "train_manifest": str(_ds_get(ds, "train_manifest"))}
    for key in ("n_kept", "kept_s", "n_rejected", "sample_rate", "pitch_stats"):
        if _ds_get(ds, key) is not None:
            out[key] = _ds_get(ds, key)
    return out


def train_voice(st: Any, profile: dict[str, Any], ds: Any, *, out_dir: Path, weights_manifest: str | None,
                allow_from_scratch: bool, resume: bool) -> TrainResult:
    """Train the spectrogram model (and the vocoder when the profile asks for HiFi-GAN)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(st.root)
    settings = train_settings(profile)
    outputs_path = st.stage_dir / "outputs.json"
    if resume and outputs_path.exists():
        prev = json.loads(outputs_path.read_text(encoding="utf-8"))
        if Path(prev.get("fastpitch_nemo", "")).exists():
            print(f"train already finished in this run ({outputs_path}); reusing it", flush=True)
            return TrainResult(**{k: prev[k] for k in TrainResult.__dataclass_fields__ if k in prev})

    import_nemo()  # nemo_runtime_unavailable before anything else
    promotable = bool(profile.get("promotable", True))
    init = settings["fastpitch"]["init"]
    base_fp = _resolve_base(weights_manifest, root, "base_spectrogram") if init == "base" else None
    if init == "base" and base_fp is None:
        if not allow_from_scratch:
            raise LaneError("base_weights_missing",
                            "the profile fine-tunes FastPitch from base_spectrogram weights, and the weights "
                            "manifest has none (pass --allow-from-scratch to train from scratch, not promotable)")
        promotable = False
        print("no base_spectrogram weights: training FastPitch from scratch (not promotable)", flush=True)
    elif init == "scratch":
        promotable = promotable and bool(settings.get("promotable_from_scratch", False))
    cfg, epoch = fastpitch_config(settings, ds, root, out_dir)
    st.stats(promotable=promotable, precision=str(settings["precision"]), epoch_repeat=epoch["repeat"],
             batch_size=epoch["batch_size"], fastpitch_init="base" if base_fp else "scratch")
    t0 = time.monotonic()
    model, steps, step_times = run_fastpitch(st, settings, cfg, out_dir=out_dir, base=base_fp, resume=resume)
    wall = time.monotonic() - t0
    fp_nemo = out_dir / "fastpitch.nemo"
    model.eval()
    model.save_to(str(fp_nemo))
    from .tokenizer import describe_tokenizer

    tok = describe_tokenizer(model.vocab)
    audio = _audio_settings(model.cfg)
    if step_times:
        med = sorted(step_times)[len(step_times) // 2]
        st.stats(fastpitch_median_step_s=round(med, 5),
                 fastpitch_effective_steps_per_s=round(len(step_times) / max(wall, 1e-9), 4),
                 fastpitch_median_steps_per_s=round(1.0 / max(med, 1e-9), 4))

    voc = settings["vocoder"]
    vocoder: str = "griffin_lim"
    vparams: dict[str, Any] = dict(voc.get("griffin_lim") or {})
    bases = [b for b in (base_fp,) if b]
    if voc["type"] == "hifigan":
        from .hifigan import train_hifigan

        base_voc = _resolve_base(weights_manifest, root, "base_vocoder") if voc.get("hifigan", {}).get(
            "init", "base") == "base" else None
        if base_voc is None and voc.get("hifigan", {}).get("init", "base") == "base":
            if not allow_from_scratch:
                raise LaneError("base_weights_missing", "the profile fine-tunes HiFi-GAN from base_vocoder weights, "
                                "and the weights manifest has none (--allow-from-scratch: not promotable)")
            promotable = False
        vocoder = str(train_hifigan(st, settings, model, cfg, ds, out_dir=out_dir, base=base_voc, resume=resume))
        vparams = {}
        if base_voc:
            bases.append(base_voc)
    elif voc["type"] != "griffin_lim":
        raise LaneError("config_invalid", f"train.vocoder.type must be griffin_lim or hifigan, not {voc['type']!r}")

    loss_log = out_dir / "loss_log.jsonl"
    png = st.stage_dir / "media" / "loss.png"
    if loss_log.exists() and _plot_loss(loss_log, png):
        from ..core.media import MediaItem, write_index

        write_index(st.stage_dir, "training", [MediaItem("image", "media/loss.png", "Training loss per step",
                                                         "Training")])
    result = TrainResult(fastpitch_nemo=str(fp_nemo), vocoder=vocoder, vocoder_params=vparams, tokenizer=tok,
                         loss_log=str(loss_log), steps=steps, promotable=promotable, outputs_json=str(outputs_path),
                         audio=audio, base_weights=bases)
    data = {"schema": OUTPUTS_SCHEMA, **result.as_dict(),
            "dataset": _dataset_summary(ds),
            "settings": settings, "run_id": st.run_id}
    atomic_write_json(outputs_path, json.loads(json.dumps(data, default=str)))
    st.stats(promotable=promotable, train_wall_s=round(wall, 2))
    st.artifact("fastpitch_nemo", fp_nemo)
    return result
