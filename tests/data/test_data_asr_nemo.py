"""The NeMo ASR engine: a `.nemo` listed with role `asr` in the weights manifest is found through
lane.core.weights.resolve_weight (hash and licence checked), restored and used to transcribe.

The model is a tiny, untrained char CTC model the test builds and saves itself (no downloads), so its
transcripts are noise: the test checks the plumbing and that the report names the engine, not accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dataprep_texts import LANE

from lane.core.fsutil import sha256_file
from lane.core.reasons import LaneError

pytestmark = pytest.mark.nemo


@pytest.fixture(scope="module")
def tiny_asr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("nemo.collections.asr")
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    labels = list(" abcdefghijklmnopqrstuvwxyz'")
    cfg = OmegaConf.create({
        "sample_rate": 16000, "labels": labels,
        "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "sample_rate": 16000, "features": 32, "n_fft": 512, "window_size": 0.025,
                         "window_stride": 0.01},
        "encoder": {"_target_": "nemo.collections.asr.modules.ConvASREncoder", "feat_in": 32, "activation": "relu",
                    "conv_mask": True, "jasper": [{"filters": 32, "repeat": 1, "kernel": [11], "stride": [2],
                                                   "dilation": [1], "dropout": 0.0, "residual": False,
                                                   "separable": True}]},
        "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": 32,
                    "num_classes": len(labels), "vocabulary": labels},
    })
    path = tmp_path_factory.mktemp("asr") / "tiny_ctc.nemo"
    EncDecCTCModel(cfg=cfg).save_to(str(path))
    return path


def _manifest(tmp_path: Path, model: Path, licence: str) -> Path:
    wm = tmp_path / "weights.json"
    wm.write_text(json.dumps({"schema": "voice_weights/1", "entries": [{
        "id": "tiny_asr", "role": "asr", "path": str(model), "sha256": sha256_file(model),
        "source": "built by the test", "code_license": "Apache-2.0", "weights_license": licence,
        "notes": "untrained"}]}))
    return wm


def test_nemo_asr_from_weights_manifest_transcribes(tiny_asr, longform, run_prepare, data_root, tmp_path):
    flac, _ = longform
    wm = _manifest(tmp_path, tiny_asr, "Apache-2.0")
    try:
        res, _ = run_prepare(flac, weights_manifest=str(wm), data={"asr_engine": "auto", "min_total_s": 0.1,
                                                                   "cps_min": 0.0, "cps_max": 1000.0})
        engine = res.asr_engine
    except LaneError as err:  # noise transcripts may leave nothing: the manifest still names the engine
        assert err.code in ("dataset_empty", "dataset_too_small")
        engine = None
    man = json.loads((data_root / "artifacts" / f"dataset_manifest.{LANE}.json").read_text())
    assert man["asr_engine"] == "nemo:tiny_ctc.nemo"
    assert engine in (None, "nemo:tiny_ctc.nemo")
    assert any(c["asr_text"] for c in man["clips"]), "the NeMo model transcribed the segments"


def test_nemo_asr_with_blocked_licence_is_not_used(tiny_asr, longform, run_prepare, tmp_path):
    flac, _ = longform
    wm = _manifest(tmp_path, tiny_asr, "CC-BY-NC-4.0")
    with pytest.raises(LaneError) as ei:
        run_prepare(flac, weights_manifest=str(wm), data={"asr_engine": "nemo"})
    assert ei.value.code == "asr_unavailable"
    assert "tiny_asr" in ei.value.detail
