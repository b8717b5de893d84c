"""Training for the train stage: the spectrogram model (`fastpitch`) and, when the profile asks for
it, the vocoder (`hifigan`), from base weights or from scratch, with what the export stage needs
written to `runs/<id>/train/outputs.json`.

Entry point: `train_voice(st, profile, ds, out_dir=..., weights_manifest=..., allow_from_scratch=...,
resume=...)`. The model config is configs/nemo/fastpitch.yaml with the profile's `train.fastpitch.model`
knobs merged over it; the dataset stage supplies manifests, the pitch cache and pitch statistics.
Imports torch, Lightning and NeMo only inside functions.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.fsutil import atomic_write_json, sha256_file
from ..core.griffin_lim import MelSettings
from ..core.reasons import REASONS, LaneError
from ..core.stage import StageRun
from ..core.weights import BaseWeight
from .fastpitch import ds_get, train_settings
from .runtime import import_nemo

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
    audio: MelSettings = field(default_factory=MelSettings)
    base_weights: list[BaseWeight] = field(default_factory=list)
    not_promotable_because: str = ""  # "; "-joined reasons, empty when promotable

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_base(weights_manifest: str | None, root: Path, role: str,
                 base_id: str | None = None) -> BaseWeight | None:
    """The usable base weight entry for `role` (the entry `base_id` when the profile names one, else the
    manifest's first usable one) as {role, id, path, sha256, license, ...}; None when there is none. An
    entry that is present but unusable (licence, hash, missing file) raises its code."""
    if not weights_manifest:
        return None
    from ..core.weights import resolve_weight

    entries = resolve_weight(weights_manifest, root, role)
    if base_id is not None:
        named = [e for e in entries if e.id == base_id]
        if not named:
            raise LaneError("base_weights_missing", f"the profile names {role} weights {base_id!r}, which the weights "
                            f"manifest does not list (it lists {[e.id for e in entries] or 'none'} for {role})")
        entries = named
    for e in entries:
        if e.usable and e.path is not None:
            return BaseWeight(role=role, id=e.id, path=str(e.path), sha256=e.actual_sha256 or e.sha256,
                              license=e.weights_license, code_license=e.code_license, source=e.source,
                              promotable=e.promotable is True)
    for e in entries:
        if not e.optional and e.state in REASONS and e.state != "ok":
            raise LaneError(e.state, f"{role} weights {e.id}: " + ("; ".join(e.problems) or e.state))
    return None


def dataset_summary(ds: Any) -> dict[str, Any]:
    """Hash of the dataset manifest (the data stage's, else the training manifest) and a short summary."""
    src = ds_get(ds, "manifest_path") or ds_get(ds, "train_manifest")
    out: dict[str, Any] = {"manifest": str(src), "sha256": ds_get(ds, "dataset_sha256") or sha256_file(src),
                           "train_manifest": str(ds_get(ds, "train_manifest"))}
    for key in ("n_kept", "kept_s", "n_rejected", "sample_rate", "pitch_stats"):
        if ds_get(ds, key) is not None:
            out[key] = ds_get(ds, key)
    return out


def _same_dataset(out_dir: Path, outputs_path: Path, dataset_sha: str) -> bool:
    """On resume: do the checkpoints and outputs in `out_dir` belong to this dataset? When they do
    not (the recordings changed since), they are removed, so training starts over on the new data."""
    import shutil

    marker = out_dir / "dataset.json"
    earlier = json.loads(marker.read_text(encoding="utf-8")).get("sha256") if marker.exists() else None
    if earlier in (None, dataset_sha):
        return True
    print(f"resume: the dataset changed since the checkpoints were written ({str(earlier)[:12]} -> "
          f"{dataset_sha[:12]}); training starts over on the new data", flush=True)
    shutil.rmtree(out_dir / "checkpoints", ignore_errors=True)
    outputs_path.unlink(missing_ok=True)
    (out_dir / "loss_log.jsonl").unlink(missing_ok=True)
    return False


def _finished_earlier(outputs_path: Path) -> TrainResult | None:
    """On resume, the outputs of a train stage that already finished in this run (on the same data)."""
    if not outputs_path.exists():
        return None
    prev = json.loads(outputs_path.read_text(encoding="utf-8"))
    if not Path(prev.get("fastpitch_nemo", "")).exists():
        return None
    print(f"train already finished in this run ({outputs_path}); reusing it", flush=True)
    return TrainResult(**{k: prev[k] for k in TrainResult.__dataclass_fields__ if k in prev})


def _base_or_scratch(role: str, section: dict[str, Any], weights_manifest: str | None, root: Path,
                     allow_from_scratch: bool) -> BaseWeight | None:
    """The base entry for `role` when the profile section fine-tunes (init: base, optionally `base:` an
    entry id); None means from scratch, which needs --allow-from-scratch (base_weights_missing otherwise)."""
    if str(section.get("init", "base")) != "base":
        return None
    base_id = section.get("base")
    base = resolve_base(weights_manifest, root, role, str(base_id) if base_id else None)
    if base is None and not allow_from_scratch:
        model = "FastPitch" if role == "base_spectrogram" else "HiFi-GAN"
        which = f"weights {base_id!r}" if base_id else f"{role} weights"
        raise LaneError("base_weights_missing",
                        f"the profile fine-tunes {model} from {which}, and the weights manifest has no usable one "
                        "(pass --allow-from-scratch to train from scratch, not promotable)")
    if base is None:
        print(f"no {role} weights: training from scratch (not promotable)", flush=True)
    return base


def _train_vocoder(st: StageRun, settings: dict[str, Any], model: Any, cfg: Any, ds: Any, *, out_dir: Path,
                   weights_manifest: str | None, allow_from_scratch: bool,
                   resume: bool) -> tuple[str, dict[str, Any], BaseWeight | None]:
    """(vocoder: HiFi-GAN .nemo path or "griffin_lim", its parameters, the base entry it started from)."""
    voc = settings["vocoder"]
    if voc["type"] == "griffin_lim":
        return "griffin_lim", dict(voc.get("griffin_lim") or {}), None
    if voc["type"] != "hifigan":
        raise LaneError("config_invalid", f"train.vocoder.type must be griffin_lim or hifigan, not {voc['type']!r}")
    from .hifigan import train_hifigan

    base = _base_or_scratch("base_vocoder", dict(voc.get("hifigan") or {}), weights_manifest, Path(st.root),
                            allow_from_scratch)
    path = train_hifigan(st, settings, model, cfg, ds, out_dir=out_dir, base=base, resume=resume)
    return str(path), {}, base


def _report_training(st: StageRun, out_dir: Path, step_times: list[float], wall: float) -> None:
    """Step-time stats and the loss curve for the report."""
    if step_times:
        med = sorted(step_times)[len(step_times) // 2]
        st.stats(fastpitch_median_step_s=round(med, 5),
                 fastpitch_effective_steps_per_s=round(len(step_times) / max(wall, 1e-9), 4),
                 fastpitch_median_steps_per_s=round(1.0 / max(med, 1e-9), 4))
    from ..core.media import MediaItem, write_index
    from .trainer import plot_loss

    loss_log = out_dir / "loss_log.jsonl"
    if loss_log.exists() and plot_loss(loss_log, st.stage_dir / "media" / "loss.png"):
        write_index(st.stage_dir, "training", [MediaItem("image", "media/loss.png", "Training loss per step",
                                                         "Training")])


def _fit_best(st: StageRun, settings: dict[str, Any], cfg: Any, ds: Any, *, out_dir: Path, base: BaseWeight | None,
              resume: bool, weights_manifest: str | None) -> tuple[Any, int, list[float], float]:
    """Fit FastPitch with checkpoint selection (lane.nemo.select) when the profile asks for it; the model
    comes back holding the best kept weights, not the last. Records the curve (train/select.json, an
    artifact; the plot) and the choice in the stage stats."""
    from .fastpitch import run_fastpitch
    from .select import make_selector, plot_selection

    selector = make_selector(st, settings, ds, out_dir, weights_manifest, Path(st.root))
    t0 = time.monotonic()
    model, steps, step_times = run_fastpitch(st, settings, cfg, out_dir=out_dir, base=base, resume=resume,
                                             extra_callbacks=[selector] if selector else None)
    wall = time.monotonic() - t0
    if selector is not None:
        record = selector.finish(model, wall)
        path = st.stage_dir / "select.json"
        atomic_write_json(path, record)
        plot_selection(record, st.stage_dir / "media" / "selection.png")
        st.artifact("checkpoint_selection", path)
        st.stats(select_best_step=record["best_step"], select_best_score=record["best_score"],
                 select_last_step=record["last_step"], select_evals=len(record["history"]),
                 select_wall_s=record["wall_s"], select_share=record["share"])
        print(f"checkpoint selection: exporting step {record['best_step']} (score {record['best_score']}; "
              f"last step {record['last_step']}); {record['wall_s']} s of scoring", flush=True)
    return model, steps, step_times, wall


def _not_promotable(profile: dict[str, Any], settings: dict[str, Any], init: str, base_fp: Any) -> list[str]:
    """Why the models this run trains cannot be released ([]: they can, as far as training goes)."""
    why = [] if profile.get("promotable", True) else ["the profile is not promotable"]
    if init == "base" and base_fp is None:
        why.append("FastPitch trained from scratch (its base is missing)")
    elif init == "scratch" and not settings.get("promotable_from_scratch", False):
        why.append("FastPitch trained from scratch")
    if settings["vocoder"]["type"] == "griffin_lim":
        why.append("the vocoder is Griffin-Lim")
    if base_fp is not None and not base_fp.get("promotable"):
        why.append(f"its base {base_fp['id']} is not promotable (weights manifest)")
    return why


def train_voice(st: StageRun, profile: dict[str, Any], ds: Any, *, out_dir: Path, weights_manifest: str | None,
                allow_from_scratch: bool, resume: bool) -> TrainResult:
    """Train the spectrogram model (and the vocoder when the profile asks for HiFi-GAN)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = Path(st.root)
    settings = train_settings(profile)
    outputs_path = st.stage_dir / "outputs.json"
    dataset = dataset_summary(ds)
    if resume and not _same_dataset(out_dir, outputs_path, str(dataset["sha256"])):
        resume = False
    earlier = _finished_earlier(outputs_path) if resume else None
    if earlier is not None:
        return earlier
    atomic_write_json(out_dir / "dataset.json", {"sha256": dataset["sha256"]})

    import_nemo()  # nemo_runtime_unavailable before anything else
    from .fastpitch import audio_settings, fastpitch_config
    from .tokenizer import describe_tokenizer

    init = settings["fastpitch"]["init"]
    base_fp = _base_or_scratch("base_spectrogram", settings["fastpitch"], weights_manifest, root, allow_from_scratch)
    why_not = _not_promotable(profile, settings, init, base_fp)
    promotable = not why_not
    cfg, epoch = fastpitch_config(settings, ds, root, out_dir)
    st.stats(promotable=promotable, precision=str(settings["precision"]), epoch_repeat=epoch["repeat"],
             batch_size=epoch["batch_size"], fastpitch_init="base" if base_fp else "scratch")
    model, steps, step_times, wall = _fit_best(st, settings, cfg, ds, out_dir=out_dir, base=base_fp, resume=resume,
                                               weights_manifest=weights_manifest)
    fp_nemo = out_dir / "fastpitch.nemo"
    model.eval()
    model.save_to(str(fp_nemo))
    vocoder, vparams, base_voc = _train_vocoder(st, settings, model, cfg, ds, out_dir=out_dir,
                                                weights_manifest=weights_manifest,
                                                allow_from_scratch=allow_from_scratch, resume=resume)
    if settings["vocoder"]["type"] == "hifigan" and base_voc is None \
            and (settings["vocoder"].get("hifigan") or {}).get("init", "base") == "base":
        why_not.append("HiFi-GAN trained from scratch (its base is missing)")
    if base_voc is not None and not base_voc.get("promotable"):
        why_not.append(f"its vocoder base {base_voc['id']} is not promotable (weights manifest)")
    promotable = not why_not
    _report_training(st, out_dir, step_times, wall)
    result = TrainResult(fastpitch_nemo=str(fp_nemo), vocoder=vocoder, vocoder_params=vparams,
                         tokenizer=describe_tokenizer(model.vocab), loss_log=str(out_dir / "loss_log.jsonl"),
                         steps=steps, promotable=promotable, outputs_json=str(outputs_path),
                         audio=audio_settings(model.cfg), base_weights=[b for b in (base_fp, base_voc) if b],
                         not_promotable_because="; ".join(why_not))
    data = {"schema": OUTPUTS_SCHEMA, **result.as_dict(), "dataset": dataset,
            "settings": settings, "run_id": st.run_id}
    atomic_write_json(outputs_path, json.loads(json.dumps(data, default=str)))
    st.stats(promotable=promotable, train_wall_s=round(wall, 2), not_promotable_because="; ".join(why_not))
    st.artifact("fastpitch_nemo", fp_nemo)
    return result
