"""External evaluators from local weights, through the weights manifest, with nothing downloaded.

Each test builds a tiny model of the very class a user would place (random weights, saved the way the
real ones are distributed: a NeMo CTC `.nemo`, a TitaNet `.nemo`, an openai-whisper `.pt`, a
CTranslate2 Whisper folder converted from a Hugging Face WhisperForConditionalGeneration, a UTMOS state
dict), lists it with its sha256 in a weights manifest, names it in the profile's `eval.evaluators`,
and runs the validate stage's metric code with it on espeak-ng speech. The models are untrained, so
their numbers are noise: the tests pin the loading and inference path, that a metric comes out, and
that the metric names its evaluator (manifest id, class, sha256). The network is cut for the whole
module (hub variables offline, and any non-loopback socket connection fails the test)."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from validate_runs import SENTENCES

from lane import metrics as ev
from lane.core.weights import HashCache


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub, no download: offline variables, and a socket that refuses anything but loopback/unix."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    real = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise AssertionError(f"an evaluator tried to reach {address}: nothing may be downloaded")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _manifest(root: Path, entry_id: str, role: str, path: Path, cls: str | None = None) -> Path:
    digest = HashCache(root).digest(path)  # a folder is hashed as a tree, as the lane does
    entry = {"id": entry_id, "role": role, "path": str(path), "sha256": digest, "source": "built by the test",
             "code_license": "Apache-2.0", "weights_license": "Apache-2.0", "notes": "tiny, random weights"}
    if cls:
        entry["class"] = cls
    out = root / f"weights-{entry_id}.json"
    out.write_text(json.dumps({"schema": "voice_weights/1", "entries": [entry]}), encoding="utf-8")
    return out


def _metrics(evaluators: ev.Evaluators, clips: dict[str, list[Path]]) -> dict[str, Any]:
    """The validate stage's metric code on one held-out pair: espeak 'us' as the recording, 'us_slow'
    (same voice, other rate) as the synthesis, and the record of who measured what."""
    from lane.stages.validate import Pair, compute_metrics

    ref, ref_sr = ev.load_audio(clips["us"][0])
    syn, sr = ev.load_audio(clips["us_slow"][0])
    pair = Pair(SENTENCES[0], SENTENCES[0], synth=syn, ref=ref, ref_sr=ref_sr)
    m = compute_metrics([pair], sr, evaluators, {"asr_grammar_advisory": True}, (ref, ref_sr))
    return {"metrics": m, "who": ev.metric_evaluators(list(m), evaluators.identities())}


def _load(root: Path, manifest: Path, role: str, entry_id: str) -> ev.Evaluators:
    profile_key = {v: k for k, v in ev.evaluators.PROFILE_KEYS.items()}[role]
    evs = ev.load_evaluators(manifest, root, roles=[role], selection=ev.selection_of({profile_key: entry_id}))
    assert evs.status[role].ok, evs.status[role]
    return evs


def _assert_named(who: dict[str, Any], metric: str, entry_id: str, cls: str, path: Path, root: Path) -> None:
    assert who[metric]["id"] == entry_id and who[metric]["class"] == cls, who[metric]
    assert who[metric]["sha256"] == HashCache(root).digest(path)
    assert ev.evaluator_label(who[metric]).startswith(f"{cls} ({entry_id}, sha256 ")


# ------------------------------------------------------------------------------------------ ASR
@pytest.fixture(scope="module")
def tiny_ctc_nemo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A character CTC model (EncDecCTCModel, the family of Parakeet-CTC) as a `.nemo`."""
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
    path = tmp_path_factory.mktemp("ctc") / "parakeet_like_ctc.nemo"
    EncDecCTCModel(cfg=cfg).save_to(str(path))
    return path


@pytest.mark.nemo
def test_nemo_asr_from_manifest_gives_a_free_decoding_cer(tiny_ctc_nemo, espeak_clips, tmp_path):
    wm = _manifest(tmp_path, "tiny_parakeet", "asr", tiny_ctc_nemo)  # class inferred from .nemo
    evs = _load(tmp_path, wm, "asr", "tiny_parakeet")
    assert isinstance(evs.asr, ev.NemoAsr) and evs.status["asr"].eval_class == "nemo_asr"
    out = _metrics(evs, espeak_clips)
    m = out["metrics"]
    assert m["cer_synth"] >= 0.0 and m["cer_ref"] >= 0.0 and m["cer_ratio"] > 0
    assert "cer_synth_jsgf" not in m  # the grammar row is pocketsphinx's alone
    _assert_named(out["who"], "cer_synth", "tiny_parakeet", "nemo_asr", tiny_ctc_nemo, tmp_path)


@pytest.fixture(scope="module")
def tiny_whisper_pt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An openai-whisper checkpoint: {"dims", "model_state_dict"}, as whisper's own files are."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=16, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51865, n_text_ctx=64, n_text_state=16, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("whisper") / "tiny-random.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": Whisper(dims).state_dict()}, path)
    return path


def test_openai_whisper_from_manifest_gives_a_cer(tiny_whisper_pt, espeak_clips, tmp_path):
    wm = _manifest(tmp_path, "tiny_whisper", "asr", tiny_whisper_pt, "whisper")
    evs = _load(tmp_path, wm, "asr", "tiny_whisper")
    assert isinstance(evs.asr, ev.WhisperAsr)
    out = _metrics(evs, espeak_clips)
    assert out["metrics"]["cer_synth"] >= 0.0 and out["metrics"]["wer_synth"] >= 0.0
    _assert_named(out["who"], "cer_ratio", "tiny_whisper", "whisper", tiny_whisper_pt, tmp_path)


def _tiny_hf_whisper(out: Path) -> None:
    """A Hugging Face WhisperForConditionalGeneration (random weights) with a byte-level tokenizer that
    has Whisper's special tokens: the input of CTranslate2's converter, as for openai/whisper-*."""
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    from transformers.convert_slow_tokenizer import bytes_to_unicode
    from transformers.models.whisper.tokenization_whisper import WhisperTokenizer

    specials = ["<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>",
                "<|nospeech|>", "<|notimestamps|>"]
    tok = WhisperTokenizer(vocab={c: i for i, c in enumerate(bytes_to_unicode().values())}, merges=[])
    tok.add_special_tokens({"additional_special_tokens": specials})
    tok.save_pretrained(str(out))
    eot, sot = tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|startoftranscript|>")
    cfg = WhisperConfig(vocab_size=len(tok) + 1501, num_mel_bins=80, encoder_layers=1, encoder_attention_heads=2,
                        decoder_layers=1, decoder_attention_heads=2, d_model=16, encoder_ffn_dim=32,
                        decoder_ffn_dim=32, max_source_positions=1500, max_target_positions=448, pad_token_id=eot,
                        bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot, suppress_tokens=[],
                        begin_suppress_tokens=[eot])
    torch.manual_seed(0)
    WhisperForConditionalGeneration(cfg).save_pretrained(str(out))


@pytest.fixture(scope="module")
def tiny_ct2_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A faster-whisper model folder, converted by CTranslate2's own converter (as `ct2-transformers-converter
    --copy_files tokenizer.json` does for the published faster-whisper models)."""
    from ctranslate2.converters import TransformersConverter

    base = tmp_path_factory.mktemp("ct2")
    _tiny_hf_whisper(base / "hf")
    TransformersConverter(str(base / "hf"), copy_files=["tokenizer.json"]).convert(str(base / "ct2"),
                                                                                    quantization="float32")
    return base / "ct2"


def test_faster_whisper_from_manifest_gives_a_cer(tiny_ct2_whisper, espeak_clips, tmp_path):
    wm = _manifest(tmp_path, "tiny_faster_whisper", "asr", tiny_ct2_whisper)  # inferred: a folder with model.bin
    evs = _load(tmp_path, wm, "asr", "tiny_faster_whisper")
    assert isinstance(evs.asr, ev.FasterWhisperAsr)
    out = _metrics(evs, espeak_clips)
    assert out["metrics"]["cer_synth"] >= 0.0
    _assert_named(out["who"], "cer_synth", "tiny_faster_whisper", "faster_whisper", tiny_ct2_whisper, tmp_path)


def test_faster_whisper_folder_without_its_tokenizer_is_refused_not_completed(tiny_ct2_whisper, tmp_path):
    """faster-whisper would fetch a missing tokenizer.json from a hub: the lane refuses the folder."""
    import shutil

    folder = tmp_path / "no_tokenizer"
    shutil.copytree(tiny_ct2_whisper, folder)
    (folder / "tokenizer.json").unlink()
    wm = _manifest(tmp_path, "partial", "asr", folder, "faster_whisper")
    evs = ev.load_evaluators(wm, tmp_path, roles=["asr"], selection={"asr": "partial"})
    assert evs.asr is None and evs.status["asr"].state == "evaluator_unavailable"
    assert "tokenizer.json" in evs.status["asr"].detail


# ------------------------------------------------------------------------------------------ speaker
@pytest.fixture(scope="module")
def tiny_titanet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """NeMo's speaker-verification class (EncDecSpeakerLabelModel: TitaNet's) with TitaNet's decoder
    (attentive statistics pooling, angular softmax), tiny, as a `.nemo`."""
    pytest.importorskip("nemo.collections.asr")
    from nemo.collections.asr.models import EncDecSpeakerLabelModel
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({
        "sample_rate": 16000,
        "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                         "sample_rate": 16000, "features": 32, "n_fft": 512, "window_size": 0.025,
                         "window_stride": 0.01},
        "encoder": {"_target_": "nemo.collections.asr.modules.ConvASREncoder", "feat_in": 32, "activation": "relu",
                    "conv_mask": True, "jasper": [{"filters": 32, "repeat": 1, "kernel": [3], "stride": [1],
                                                   "dilation": [1], "dropout": 0.0, "residual": False,
                                                   "separable": True, "se": True, "se_context_size": -1}]},
        "decoder": {"_target_": "nemo.collections.asr.modules.SpeakerDecoder", "feat_in": 32, "num_classes": 4,
                    "pool_mode": "attention", "emb_sizes": 16, "attention_channels": 16},
        "loss": {"_target_": "nemo.collections.asr.losses.angularloss.AngularSoftmaxLoss", "scale": 30, "margin": 0.2},
    })
    path = tmp_path_factory.mktemp("titanet") / "titanet_tiny.nemo"
    EncDecSpeakerLabelModel(cfg=cfg).save_to(str(path))
    return path


@pytest.mark.nemo
def test_titanet_from_manifest_gives_speaker_similarity(tiny_titanet, espeak_clips, tmp_path):
    wm = _manifest(tmp_path, "tiny_titanet", "speaker_encoder", tiny_titanet)  # inferred from .nemo
    evs = _load(tmp_path, wm, "speaker_encoder", "tiny_titanet")
    assert isinstance(evs.speaker, ev.TitaNet)
    a, sr = ev.load_audio(espeak_clips["us"][1])
    e = evs.speaker.embed(a, sr)
    assert e.shape == (16,) and abs(float((e**2).sum()) - 1.0) < 1e-4
    out = _metrics(evs, espeak_clips)
    assert -1.0 <= out["metrics"]["spk_sim"] <= 1.0 and "spk_margin" in out["metrics"]
    _assert_named(out["who"], "spk_sim", "tiny_titanet", "titanet", tiny_titanet, tmp_path)


# ------------------------------------------------------------------------------------------ MOS
@pytest.fixture(scope="module")
def utmos_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A UTMOS22 strong-learner state dict of utmos-pytorch's model class (its architecture is fixed:
    wav2vec 2.0 base, so this one is full size, ~400 MB, with random weights)."""
    import torch
    from utmos_pytorch.utmos_torch import UTMOSModel

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("utmos") / "utmos_state_dict.pt"
    torch.save(UTMOSModel().state_dict(), path)
    return path


def test_utmos_from_manifest_gives_a_naturalness_ratio(utmos_state, espeak_clips, tmp_path):
    wm = _manifest(tmp_path, "utmos22", "mos_estimator", utmos_state, "utmos")
    evs = _load(tmp_path, wm, "mos_estimator", "utmos22")
    assert isinstance(evs.mos, ev.Utmos)
    out = _metrics(evs, espeak_clips)
    m = out["metrics"]
    assert m["utmos_ratio"] > 0 and "dnsmos_ratio" not in m  # one estimator's scale is never read as another's
    _assert_named(out["who"], "utmos_ratio", "utmos22", "utmos", utmos_state, tmp_path)


def test_utmos_refuses_a_file_that_is_not_its_state_dict(tmp_path):
    """utmos-pytorch loads with strict=False; the lane checks the tensor names first, so a wrong file
    never scores with random weights."""
    import torch

    bad = tmp_path / "not_utmos.pt"
    torch.save({"linear.weight": torch.zeros(2, 2)}, bad)
    wm = _manifest(tmp_path, "bad", "mos_estimator", bad, "utmos")
    evs = ev.load_evaluators(wm, tmp_path, roles=["mos_estimator"], selection={"mos_estimator": "bad"})
    assert evs.mos is None and "not a UTMOS state dict" in evs.status["mos_estimator"].detail


# ------------------------------------------------------------------------------------------ selection
def test_selection_names_an_entry_or_falls_back_to_the_defaults(tmp_path):
    from lane.core.reasons import LaneError

    manifest = Path(__file__).resolve().parents[2] / "configs/voice/weights-manifest.example.json"
    root = Path(__file__).resolve().parents[2]
    default = ev.evaluator_status(manifest, root, "asr")
    assert default.ok and default.eval_class == "pocketsphinx" and default.ids == ["pocketsphinx_en_us"]
    assert default.sha256 == [json.loads(manifest.read_text())["entries"][1]["sha256"]]
    mos = ev.evaluator_status(manifest, root, "mos_estimator", "dnsmos_sig_bak_ovr")
    assert mos.ok and mos.ids == ["dnsmos_sig_bak_ovr", "dnsmos_p808"]  # one DNSMOS evaluator, two files
    missing = ev.evaluator_status(manifest, root, "asr", "whisper_large_v3")
    assert missing.state == "evaluator_unavailable" and "whisper_large_v3" in missing.detail
    wrong_role = ev.evaluator_status(manifest, root, "asr", "resemblyzer_voice_encoder")
    assert wrong_role.state == "evaluator_unavailable"
    with pytest.raises(LaneError) as ei:
        ev.selection_of({"vocoder": "x"})
    assert ei.value.code == "config_invalid"


def test_floors_are_per_evaluator():
    from lane.promotion import FLOORS, floors_for

    assert floors_for() == FLOORS and FLOORS["cer_synth"] == (None, 0.5)
    whisper = floors_for({"asr": "whisper", "speaker_encoder": "titanet", "mos_estimator": "utmos"})
    assert whisper["cer_synth"] == (None, 0.1) and whisper["spk_sim"] == (0.6, None)
    assert "utmos_ratio" in whisper and "dnsmos_ratio" not in whisper
    assert floors_for({"asr": "made_up"})["cer_synth"] == (None, 0.5)  # unknown class: the defaults' floors


def test_a_whisper_run_is_held_to_whispers_floor(tmp_path):
    """A promotable profile that gates cer_synth at pocketsphinx's 0.5 is enough for a pocketsphinx run
    and not for a run whose validate recorded Whisper as the ASR: thresholds_below_floor."""
    from lane.core.config import load_profile
    from lane.promotion import Evidence, rule_thresholds_floor

    root = Path(__file__).resolve().parents[2]
    prof = load_profile("production", root)

    def rule(evaluators: dict[str, Any]) -> Any:
        ev_ = Evidence(root, "r", tmp_path, {"profile": "production"}, {}, {}, {}, {}, {}, profile=prof,
                       evaluators=evaluators)
        return rule_thresholds_floor(ev_)

    assert rule({"asr": {"class": "pocketsphinx", "id": "pocketsphinx_en_us"}}).state == "ok"
    item = rule({"asr": {"class": "whisper", "id": "whisper_large_v3"}})
    assert item.state == "failed" and item.reason == "thresholds_below_floor" and "cer_synth" in item.evidence
    titanet = rule({"speaker_encoder": {"class": "titanet"}})
    assert titanet.state == "failed" and "spk_margin" in titanet.evidence  # 0.05 < TitaNet's 0.15
