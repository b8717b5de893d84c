"""HiFi-GAN fine-tuning on mels that the trained FastPitch generates with ground-truth alignment
(teacher forcing through the aligner: NeMo's documented way to adapt a vocoder to a FastPitch).

HiFi-GAN trains with manual optimization and two optimizers, so Lightning's `global_step` advances by
2 per batch: the trainer's max_steps is 2x the batch count and the progress callback divides by 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.reasons import LaneError
from ..core.stage import StageRun
from ..core.weights import BaseWeight
from .fastpitch import HIFIGAN_CONFIG, ds_get
from .runtime import import_nemo, quiet_nemo


def generate_gta_mels(fastpitch: Any, fp_cfg: Any, manifest: Path, out_dir: Path) -> Path:
    """Run FastPitch teacher-forced on every clip of `manifest`; write <out_dir>/mels/*.npy and a
    vocoder manifest (audio_filepath, duration, mel_filepath). Returns the manifest path."""
    import numpy as np
    import torch
    from nemo.collections.tts.parts.utils.helpers import process_batch
    from nemo.core.classes.common import safe_instantiate
    from omegaconf import OmegaConf

    ds_cfg = OmegaConf.create(OmegaConf.to_container(fp_cfg.validation_ds.dataset, resolve=True))
    ds_cfg.manifest_filepath = str(manifest)
    dataset = safe_instantiate(ds_cfg, text_tokenizer=fastpitch.vocab)
    loader = torch.utils.data.DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=dataset.collate_fn)
    mel_dir = out_dir / "mels"
    mel_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    fastpitch.eval()
    with torch.no_grad():
        for i, batch in enumerate(loader):
            b = process_batch(batch, dataset.sup_data_types_set)
            spec, spec_len = fastpitch.preprocessor(input_signal=b["audio"], length=b["audio_lens"])
            out = fastpitch(text=b["text"], durs=None, pitch=b.get("pitch"), speaker=None, pace=1.0, spec=spec,
                            attn_prior=b.get("align_prior_matrix"), mel_lens=spec_len, input_lens=b["text_lens"])
            mel = out[0][0, :, : int(spec_len[0])].cpu().numpy().astype(np.float32)
            item = dataset.data[i]
            path = mel_dir / f"{i:05d}.npy"
            np.save(path, mel)
            rows.append({"audio_filepath": item["audio_filepath"], "duration": item.get("duration"),
                         "mel_filepath": str(path)})
    out_manifest = out_dir / "vocoder_manifest.json"
    out_manifest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out_manifest


def hifigan_config(settings: dict[str, Any], root: Path, sample_rate: int, train_manifest: Path,
                   val_manifest: Path) -> Any:
    from omegaconf import OmegaConf

    h = dict(settings["vocoder"].get("hifigan") or {})
    cfg_path = Path(h.get("config", HIFIGAN_CONFIG))
    if not cfg_path.is_absolute():
        cfg_path = root / cfg_path
    base = OmegaConf.load(cfg_path)
    knobs = dict(h.get("model") or {})
    knobs["sample_rate"] = int(sample_rate)
    unknown = [k for k in knobs if k not in base or k == "model"]
    if unknown:
        raise LaneError("config_invalid", f"unknown HiFi-GAN knob(s) {unknown} in train.vocoder.hifigan.model")
    merged = OmegaConf.merge(base, knobs)
    full: Any = OmegaConf.create(OmegaConf.to_container(merged, resolve=False))
    model: Any = full.model
    model.max_steps = int(h.get("max_steps", 1000))
    model.train_ds.dataset.manifest_filepath = str(train_manifest)
    model.validation_ds.dataset.manifest_filepath = str(val_manifest)
    full.model = model
    resolved: Any = OmegaConf.create(OmegaConf.to_container(full, resolve=True))
    return resolved.model


GENERATOR_ARCH = ("upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock",
                  "resblock_kernel_sizes", "resblock_dilation_sizes")


def generator_differences(base_cfg: Any, cfg: Any) -> list[str]:
    """The generator architecture keys in which a base model's config and the profile's differ ([] when
    a base config has no resolvable generator section: restoring its weights then decides)."""
    from omegaconf import OmegaConf

    try:
        base_gen, want = (OmegaConf.to_container(c.generator, resolve=True) for c in (base_cfg, cfg))
    except Exception:
        return []
    if not isinstance(base_gen, dict) or not isinstance(want, dict):
        return []
    return [k for k in GENERATOR_ARCH if k in base_gen and str(base_gen[k]) != str(want.get(k))]


def _from_base(tts: Any, path: str, cfg: Any, fp_cfg: Any, trainer: Any) -> Any:
    """HiFi-GAN restored from a base .nemo, with this run's data, optimiser and steps."""
    from omegaconf import OmegaConf, open_dict

    try:
        base_cfg = tts.HifiGanModel.restore_from(path, return_config=True, map_location="cpu")
    except Exception as exc:
        raise LaneError("base_checkpoint_incompatible", f"{path} is not a loadable HiFi-GAN .nemo ({exc})") from exc
    merged: Any = OmegaConf.create(OmegaConf.to_container(base_cfg, resolve=False))
    if int(merged.preprocessor.get("nfilt", 80)) != int(fp_cfg.n_mel_channels):
        raise LaneError("base_checkpoint_incompatible",
                        f"{path}: HiFi-GAN expects {merged.preprocessor.nfilt} mel bands, FastPitch makes "
                        f"{fp_cfg.n_mel_channels}")
    differs = generator_differences(merged, cfg)
    if differs:  # e.g. the profile picked configs/nemo/hifigan_v2.yaml and the base is a v1 generator
        raise LaneError("base_checkpoint_incompatible",
                        f"{path}: its generator differs from the profile's HiFi-GAN config in {differs}; "
                        "train that generator with init: scratch, or pick the config the base was trained with")
    with open_dict(merged):
        for key in ("train_ds", "validation_ds", "optim", "max_steps"):
            merged[key] = cfg[key]
        merged.pop("log_config", None)
    try:
        model = tts.HifiGanModel.restore_from(path, override_config_path=merged, trainer=trainer,
                                              map_location="cpu", strict=True)
    except RuntimeError as exc:
        raise LaneError("base_checkpoint_incompatible",
                        f"{path}: weights do not fit the config ({str(exc).splitlines()[0][:300]})") from exc
    model.setup_training_data(model.cfg.train_ds)
    model.setup_validation_data(model.cfg.validation_ds)
    model.input_as_mel = True
    return model


def train_hifigan(st: StageRun, settings: dict[str, Any], fastpitch: Any, fp_cfg: Any, ds: Any, *, out_dir: Path,
                  base: BaseWeight | None, resume: bool) -> Path:
    """Fine-tune (or, for the demo, train a tiny) HiFi-GAN; returns the path of hifigan.nemo."""
    import lightning.pytorch as pl

    tts = import_nemo()
    quiet_nemo()
    from .trainer import LaneProgressCallback, make_trainer, truncate_loss_log

    root = Path(st.root)
    voc_dir = out_dir / "vocoder"
    voc_dir.mkdir(parents=True, exist_ok=True)
    st.progress(0, 1, "generating ground-truth-aligned mels for HiFi-GAN")
    train_m = generate_gta_mels(fastpitch, fp_cfg, Path(ds_get(ds, "train_manifest")), voc_dir / "train")
    val_src = ds_get(ds, "val_manifest")
    val_m = generate_gta_mels(fastpitch, fp_cfg, Path(val_src), voc_dir / "val") if val_src else train_m
    cfg = hifigan_config(settings, root, int(fp_cfg.sample_rate), train_m, val_m)
    batches = int(cfg.max_steps)
    pl.seed_everything(int(settings["seed"]), workers=True, verbose=False)
    ckpt_dir = out_dir / "checkpoints" / "hifigan"
    cb = LaneProgressCallback(st, batches, ckpt_dir, int(settings["checkpoint_every"]),
                              int(settings["stats_every"]), int(settings.get("progress_every") or 0),
                              out_dir / "loss_log.jsonl", step_div=2, prefix="hifigan_")
    vsettings = dict(settings)
    vsettings["grad_clip"] = None  # manual optimization: Lightning's clipping does not apply
    trainer = make_trainer(vsettings, 2 * batches, out_dir, [cb])
    model = tts.HifiGanModel(cfg=cfg, trainer=trainer) if base is None else \
        _from_base(tts, str(base["path"]), cfg, fp_cfg, trainer)
    ckpt = ckpt_dir / "last.ckpt"
    ckpt_path = None
    if resume and ckpt.exists():
        ckpt_path = str(ckpt)
        meta = json.loads((ckpt_dir / "last.json").read_text(encoding="utf-8"))
        print(f"resuming HiFi-GAN from {ckpt} ({meta})", flush=True)
        truncate_loss_log(out_dir / "loss_log.jsonl", "hifigan", int(meta["step"]))
    trainer.fit(model, ckpt_path=ckpt_path)
    st.stats(hifigan_steps=int(trainer.global_step) // 2)
    path_out = out_dir / "hifigan.nemo"
    model.save_to(str(path_out))
    return path_out
