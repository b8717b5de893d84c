"""The train stage: the speaker's recordings become a checked NeMo dataset (`prepare`), then FastPitch
(+ HiFi-GAN) are trained on it (`fit`). notebooks/train.ipynb calls the two in turn, showing the
dataset before the training starts.

    ds = train.prepare(st, p)      # lane.data.prepare_dataset + report media (plots, clips, rejections)
    tr = train.fit(st, p, ds)      # lane.nemo.train.train_voice + the training_finished check
"""

from __future__ import annotations

from typing import Any

from ..core.stage import StageRun
from .params import StageParams


def prepare(st: StageRun, p: StageParams) -> Any:
    """The dataset (lane.data.DatasetResult), with its plots, example clips and rejection table as
    report media. A LaneError (dataset_empty, dataset_too_small, ...) is written as the result."""
    from ..data import plots, prepare_dataset

    with st.guard():
        prof = p.profile_config()
        ds = prepare_dataset(st, prof, audio=str(p.audio or ""), transcript=p.transcript or None,
                             input_format=p.input_format, out_dir=st.stage_dir / "data",
                             weights_manifest=p.weights_manifest, lane=p.lane)
        plots.save_media(st.stage_dir, ds, p.root_path)
    print(f"{ds.n_kept} clips kept ({ds.kept_s / 60:.1f} min), {ds.n_rejected} rejected {ds.rejected_by_reason}")
    print(f"input format: {ds.input_format}; transcription engine: {ds.asr_engine or 'none (texts given)'}")
    return ds


def fit(st: StageRun, p: StageParams, ds: Any) -> Any:
    """Train the models on `ds` (lane.nemo.train.TrainResult) and record `training_finished`."""
    from ..nemo.train import train_voice

    with st.guard():
        prof = p.profile_config()
        tr = train_voice(st, prof, ds, out_dir=st.stage_dir / "model", weights_manifest=p.weights_manifest or None,
                         allow_from_scratch=bool(p.allow_from_scratch), resume=bool(p.resume))
        st.check("training_finished", tr.steps > 0,
                 f"FastPitch {tr.steps} steps; vocoder {tr.vocoder if tr.vocoder == 'griffin_lim' else 'HiFi-GAN'}"
                 + ("" if tr.promotable else f"; not promotable: {tr.not_promotable_because}"))
        st.artifact("train_outputs", tr.outputs_json)
    print(f"FastPitch: {tr.fastpitch_nemo}\nvocoder: {tr.vocoder}\npromotable: {tr.promotable}")
    return tr
