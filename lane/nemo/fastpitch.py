"""FastPitch for the lane: the model config (configs/nemo/fastpitch.yaml + the profile's knobs + the
dataset's manifests, pitch cache and statistics), building it from scratch or from a base .nemo,
and fitting it with the lane's callback, checkpoints and resume.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..core.griffin_lim import DEFAULTS as GRIFFIN_LIM_DEFAULTS
from ..core.griffin_lim import MelSettings
from ..core.reasons import LaneError
from ..core.stage import StageRun
from ..core.weights import BaseWeight
from .runtime import import_nemo, quiet_nemo

FASTPITCH_CONFIG = "configs/nemo/fastpitch.yaml"
HIFIGAN_CONFIG = "configs/nemo/hifigan.yaml"


def ds_get(ds: Any, name: str, default: Any = None) -> Any:
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
    fp.setdefault("tokenizer", "auto")
    voc = dict(t.get("vocoder") or {})
    voc.setdefault("type", "griffin_lim")
    voc.setdefault("griffin_lim", GRIFFIN_LIM_DEFAULTS.as_dict())
    out = {
        "seed": 1234, "devices": 1, "accelerator": "auto", "precision": "32-true", "grad_clip": 1.0,
        "checkpoint_every": 100, "stats_every": 10, "progress_every": 0, "min_epoch_steps": 40,
        "val_every": 0, "limit_val_batches": 4, "num_workers": 0,
    }
    out.update({k: v for k, v in t.items() if k not in ("fastpitch", "vocoder")})
    out["select"] = {"every": 100, "n_texts": 3, "keep": 3, "n_refs": 4,
                     "texts": "configs/eval/selection_sentences.txt", **dict(t.get("select") or {})}
    out["fastpitch"] = fp
    out["vocoder"] = voc
    return out


def _yaml_keys(path: Path) -> set[str] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    return set(data) if isinstance(data, dict) else None


def settings_problems(profile: dict[str, Any], root: Path) -> list[str]:
    """What in the profile's `train:` section would fail only once training starts: unknown choices,
    missing model configs, knobs the NeMo configs do not have. Read from YAML alone (no NeMo), so
    preflight can refuse them before any stage runs."""
    t = train_settings(profile)
    fp, voc = t["fastpitch"], t["vocoder"]
    out: list[str] = []
    choices = (("train.fastpitch.init", fp.get("init"), ("base", "scratch")),
               ("train.fastpitch.tokenizer", fp.get("tokenizer"), ("auto", "config", "checkpoint")),
               ("train.vocoder.type", voc.get("type"), ("griffin_lim", "hifigan")),
               ("train.vocoder.hifigan.init", (voc.get("hifigan") or {}).get("init", "base"), ("base", "scratch")))
    out += [f"{name} must be one of {', '.join(ok)}, not {value!r}" for name, value, ok in choices if value not in ok]
    for name, sec in (("train.fastpitch.base", fp), ("train.vocoder.hifigan.base", voc.get("hifigan") or {})):
        if sec.get("base") is not None and not isinstance(sec.get("base"), str):
            out.append(f"{name} names a weights-manifest entry id, not {sec.get('base')!r}")
    sel = t["select"]
    unknown_sel = sorted(set(sel) - {"every", "n_texts", "keep", "n_refs", "texts"})
    if unknown_sel:
        out.append(f"unknown train.select key(s) {unknown_sel} (every, n_texts, keep, n_refs, texts)")
    for key in ("every", "n_texts", "keep", "n_refs"):
        if not isinstance(sel.get(key), int) or sel[key] < (0 if key == "every" else 1):
            out.append(f"train.select.{key} must be a {'non-negative' if key == 'every' else 'positive'} integer, "
                       f"not {sel.get(key)!r}")
    texts = Path(str(sel.get("texts")))
    if int(sel.get("every") or 0) > 0 and not (texts if texts.is_absolute() else root / texts).is_file():
        out.append(f"train.select.texts {texts} does not exist")
    if not isinstance(fp.get("max_steps"), int) or fp["max_steps"] < 1:
        out.append(f"train.fastpitch.max_steps must be a positive integer, not {fp.get('max_steps')!r}")
    parts = [("train.fastpitch", fp.get("config"), fp.get("model"))]
    if voc.get("type") == "hifigan":
        h = voc.get("hifigan") or {}
        parts.append(("train.vocoder.hifigan", h.get("config", HIFIGAN_CONFIG), h.get("model")))
    for name, config, knobs in parts:
        path = Path(str(config))
        keys = _yaml_keys(path if path.is_absolute() else root / path)
        if keys is None:
            out.append(f"{name}.config {config} is not a readable YAML mapping")
            continue
        unknown = sorted(k for k in dict(knobs or {}) if k not in keys or k == "model")
        if unknown:
            out.append(f"unknown knob(s) {unknown} in {name}.model (not in {config})")
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
    ps = ds_get(ds, "pitch_settings") or {}
    stats = ds_get(ds, "pitch_stats") or {}
    sr = ds_get(ds, "sample_rate") or ps.get("sample_rate")
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
    train_manifest = Path(ds_get(ds, "train_manifest"))
    val_manifest = Path(ds_get(ds, "val_manifest") or train_manifest)
    rep_manifest = out_dir / "train_manifest.epoch.json"
    n_rows, repeat = _write_repeated_manifest(train_manifest, rep_manifest, batch_size,
                                              int(settings.get("min_epoch_steps", 0)))
    sup = ds_get(ds, "sup_data_dir") or (out_dir / "sup_data")
    full: Any = OmegaConf.create(OmegaConf.to_container(merged, resolve=True))
    model: Any = full["model"]
    for part, manifest in (("train_ds", rep_manifest), ("validation_ds", val_manifest)):
        model[part]["dataset"]["manifest_filepath"] = str(manifest)
        model[part]["dataset"]["sup_data_path"] = str(sup)
    if int(settings.get("num_workers", 0)) > 0:
        model.train_ds.dataloader_params.persistent_workers = True
    model.train_ds.dataloader_params.batch_size = batch_size
    return model, {"rows": n_rows, "repeat": repeat, "batch_size": batch_size}


def _tokens_of(cfg_tokenizer: Any) -> list[str]:
    from nemo.core.classes.common import safe_instantiate

    return list(safe_instantiate(cfg_tokenizer).tokens)


def resolve_tokenizer_mode(mode: str, base_cfg: Any) -> str:
    """`train.fastpitch.tokenizer` against the base's own tokenizer: "auto" keeps a phoneme base's
    tokenizer (NGC's FastPitch: ARPABET or IPA with its G2P; the lane's character config cannot fit it)
    and holds a character base to the config's; "config" and "checkpoint" are taken as written."""
    if mode not in ("auto", "config", "checkpoint"):
        raise LaneError("config_invalid", f"train.fastpitch.tokenizer must be auto, config or checkpoint, not {mode!r}")
    if mode != "auto":
        return mode
    target = str(base_cfg.text_tokenizer.get("_target_", ""))
    return "config" if target.endswith("CharsTokenizer") else "checkpoint"


def _check_same_vocabulary(tts: Any, cfg: Any, base_cfg: Any, path: str) -> None:
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
            "set train.fastpitch.tokenizer: checkpoint (or auto) to keep the checkpoint's tokenizer")


def _merged_config(cfg: Any, base_cfg: Any, mode: str) -> Any:
    """The base's architecture (and, in checkpoint mode, its tokenizer) with the lane's data, optimiser
    and the speaker's pitch statistics. The base's `text_normalizer` (nemo_text_processing, which needs
    pynini) is dropped: the lane normalises text itself, the same way for training, validate and serving."""
    from omegaconf import OmegaConf, open_dict

    merged: Any = OmegaConf.create(OmegaConf.to_container(base_cfg, resolve=False))
    with open_dict(merged):
        for key in ("train_ds", "validation_ds", "optim", "pitch_mean", "pitch_std", "pitch_fmin", "pitch_fmax"):
            merged[key] = cfg[key]
        if mode == "config":
            merged["text_tokenizer"] = cfg.text_tokenizer
        for key in ("log_config", "text_normalizer", "text_normalizer_call_kwargs"):
            merged.pop(key, None)
    return merged


def build_fastpitch(cfg: Any, trainer: Any, base: BaseWeight | None, tokenizer_mode: str) -> Any:
    """A FastPitchModel from `cfg` (from scratch) or fine-tuned from a base .nemo (architecture and,
    when resolve_tokenizer_mode says "checkpoint", the tokenizer and its G2P from the base)."""
    tts = import_nemo()
    quiet_nemo()
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
    mode = resolve_tokenizer_mode(tokenizer_mode, base_cfg)
    target = str(base_cfg.text_tokenizer.get("_target_", "?")).rsplit(".", 1)[-1]
    print(f"tokenizer: {mode} (setting {tokenizer_mode}; the base uses {target})", flush=True)
    if mode == "config":
        _check_same_vocabulary(tts, cfg, base_cfg, path)
    try:
        model = tts.FastPitchModel.restore_from(path, override_config_path=_merged_config(cfg, base_cfg, mode),
                                                trainer=trainer, map_location="cpu", strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0][:300]
        raise LaneError("base_checkpoint_incompatible", f"{path}: weights do not fit the config ({first})") from exc
    model.setup_training_data(model.cfg.train_ds)
    model.setup_validation_data(model.cfg.validation_ds)
    return model


def audio_settings(cfg: Any) -> MelSettings:
    pre = cfg.preprocessor
    return MelSettings(
        sample_rate=int(cfg.sample_rate), n_mels=int(cfg.n_mel_channels), n_fft=int(pre.n_fft),
        win_length=int(pre.n_window_size), hop_length=int(pre.n_window_stride),
        lowfreq=float(pre.lowfreq or 0), highfreq=float(pre.highfreq) if pre.highfreq else None,
        window=str(pre.window), log_zero_guard_value=float(pre.log_zero_guard_value),
        mel_norm="slaney", mag_power=float(pre.mag_power),
    )


def run_fastpitch(st: StageRun, settings: dict[str, Any], cfg: Any, *, out_dir: Path, base: BaseWeight | None,
                  resume: bool, extra_callbacks: list[Any] | None = None) -> tuple[Any, int, list[float]]:
    """Fit FastPitch to `settings.fastpitch.max_steps`, resuming from out_dir/checkpoints/last.ckpt."""
    import lightning.pytorch as pl

    pl.seed_everything(int(settings["seed"]), workers=True, verbose=False)
    total = int(settings["fastpitch"]["max_steps"])
    ckpt_dir = out_dir / "checkpoints" / "fastpitch"
    from .trainer import LaneProgressCallback, make_trainer, truncate_loss_log

    cb = LaneProgressCallback(st, total, ckpt_dir, int(settings["checkpoint_every"]), int(settings["stats_every"]),
                int(settings.get("progress_every") or 0), out_dir / "loss_log.jsonl")
    trainer = make_trainer(settings, total, out_dir, [cb, *(extra_callbacks or [])])
    model = build_fastpitch(cfg, trainer, base, settings["fastpitch"]["tokenizer"])
    ckpt = ckpt_dir / "last.ckpt"
    ckpt_path = None
    if resume and ckpt.exists():
        ckpt_path = str(ckpt)
        meta = json.loads((ckpt_dir / "last.json").read_text())
        print(f"resuming FastPitch from {ckpt} ({meta})", flush=True)
        truncate_loss_log(out_dir / "loss_log.jsonl", "fastpitch", int(meta["step"]))
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
