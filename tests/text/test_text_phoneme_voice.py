"""The production shape end to end, the way production uses NGC's FastPitch and HiFi-GAN: a tiny
ARPABET FastPitch (EnglishPhonemesTokenizer + EnglishG2p on the pocketsphinx CMUdict, NGC's tokenizer
layout) and a tiny HiFi-GAN, trained and saved as .nemo files by the test, stand in for
`tts_en_fastpitch.nemo` and `tts_hifigan.nemo` (NGC cannot be downloaded here). Listed in a weights
manifest, both are fine-tuned by the production-shaped profile (FastPitch with the default
`tokenizer: auto`); export writes the G2P's dictionary and heteronyms into the bundle, ONNX synthesises
without NeMo, and validate measures it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from nemo_runs import TINY_HIFIGAN, make_root, tiny_profile, weights_manifest
from net import free_port
from tokcheck_helpers import Dicts

pytestmark = pytest.mark.nemo

PHONEME_CONFIG = "configs/nemo/fastpitch_arpabet.yaml"
HIFIGAN_BASE_STEPS = 12


def _phoneme_config(root: Path, dicts: Dicts) -> Path:
    """The lane's FastPitch config with NGC's ARPABET tokenizer section (phoneme_probability 0.5: words
    are phonemised half of the time in training, always at inference)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(root / "configs/nemo/fastpitch.yaml")
    cfg.model.text_tokenizer = {
        "_target_": "nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers.EnglishPhonemesTokenizer",
        "punct": True, "stresses": True, "chars": True, "apostrophe": True, "pad_with_space": True,
        "g2p": {"_target_": "nemo.collections.tts.g2p.models.en_us_arpabet.EnglishG2p",
                "phoneme_dict": str(dicts.arpabet), "heteronyms": str(dicts.heteronyms),
                "phoneme_probability": 0.5},
    }
    out = root / PHONEME_CONFIG
    OmegaConf.save(cfg, out)
    return out


@pytest.fixture(scope="module")
def phoneme_base(tmp_path_factory: pytest.TempPathFactory, tiny_ds: Any, dicts: Dicts) -> Path:
    """The stand-in for NGC's FastPitch: trained from scratch by the lane for a few steps, saved as .nemo
    (its dictionary and heteronym list become artifacts inside it, as in NGC's)."""
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    root = make_root(tmp_path_factory.mktemp("phoneme_base"))
    _phoneme_config(root, dicts)
    prof = tiny_profile(4)
    prof["train"]["fastpitch"]["config"] = PHONEME_CONFIG
    st = StageRun.open("train", root=root, run_id="phoneme-base")
    result = train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model", weights_manifest=None,
                         allow_from_scratch=True, resume=False)
    st.finish()
    assert result.tokenizer["class"] == "EnglishPhonemesTokenizer"
    return Path(result.fastpitch_nemo)


@pytest.fixture(scope="module")
def hifigan_base(tmp_path_factory: pytest.TempPathFactory, tiny_ds: Any, phoneme_base: Path) -> dict[str, Any]:
    """The stand-in for NGC's HiFi-GAN: a tiny generator trained from scratch on the base's mels."""
    from nemo.collections.tts.models import FastPitchModel

    from lane.core.stage import StageRun
    from lane.nemo.fastpitch import train_settings
    from lane.nemo.hifigan import train_hifigan

    root = make_root(tmp_path_factory.mktemp("hifigan_base"))
    prof = tiny_profile()
    prof["train"]["vocoder"] = {"type": "hifigan", "hifigan": {"init": "scratch", "max_steps": HIFIGAN_BASE_STEPS,
                                                               "model": dict(TINY_HIFIGAN)}}
    fp = FastPitchModel.restore_from(str(phoneme_base), map_location="cpu")
    st = StageRun.open("train", root=root, run_id="hifigan-base")
    out = st.stage_dir / "model"
    path = train_hifigan(st, train_settings(prof), fp, fp.cfg, tiny_ds, out_dir=out, base=None, resume=False)
    st.finish()
    return {"path": path, "log": _vocoder_log(out / "loss_log.jsonl")}


def _vocoder_log(path: Path) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines()) if r.get("model") == "hifigan"]


@pytest.fixture(scope="module")
def phoneme_voice(tmp_path_factory: pytest.TempPathFactory, tiny_ds: Any, phoneme_base: Path,
                  hifigan_base: dict[str, Any]) -> dict[str, Any]:
    """Fine-tune both bases with the production shape (init: base for FastPitch and HiFi-GAN, promotable,
    the lane's character config left as it is: `tokenizer: auto` must pick the checkpoint's), then export."""
    from lane.bundle import build_bundle
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    root = make_root(tmp_path_factory.mktemp("phoneme_ft"))
    wm = weights_manifest(root, {"base_spectrogram": phoneme_base, "base_vocoder": hifigan_base["path"]})
    prof = tiny_profile(2, init="base", promotable=True)
    prof["train"]["vocoder"] = {"type": "hifigan", "hifigan": {"init": "base", "max_steps": 2,
                                                               "model": {**TINY_HIFIGAN, "lr": 1.0e-5}}}
    assert "tokenizer" not in prof["train"]["fastpitch"] or prof["train"]["fastpitch"]["tokenizer"] == "auto"
    st = StageRun.open("train", root=root, run_id="phoneme-ft")
    result = train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model", weights_manifest=str(wm),
                         allow_from_scratch=False, resume=False)
    train_res = st.finish()
    ex = StageRun.open("export", root=root, run_id="phoneme-ft")
    path = build_bundle(ex, prof, run_dir=ex.run_dir, root=root, voice_profile_id="phoneme")
    return {"root": root, "result": result, "train": train_res, "bundle": path, "export": ex.finish(),
            "profile": prof, "wm": wm}


def test_phoneme_base_fine_tunes_with_its_own_tokenizer(phoneme_voice: dict[str, Any], phoneme_base: Path) -> None:
    from nemo.collections.tts.models import FastPitchModel

    r = phoneme_voice["result"]
    assert r.promotable and r.base_weights[0]["role"] == "base_spectrogram"
    assert r.tokenizer["class"] == "EnglishPhonemesTokenizer" and r.tokenizer["type"] == "arpabet"
    tuned = FastPitchModel.restore_from(r.fastpitch_nemo, map_location="cpu")
    base = FastPitchModel.restore_from(str(phoneme_base), map_location="cpu")
    assert list(tuned.vocab.tokens) == list(base.vocab.tokens)
    assert tuned.vocab.g2p.phoneme_dict == base.vocab.g2p.phoneme_dict


def _mel_l1(generator: Any, mels: list[Any], to_mel: Any) -> float:
    """Mean |log-mel(generator(mel)) - mel| over `mels`: the generator's reconstruction error, measured
    deterministically (the training log's GAN losses are too noisy at batch 2 to compare)."""
    import numpy as np
    import torch

    errors = []
    with torch.no_grad():
        for mel in mels:
            audio = generator(x=mel).squeeze(1)
            again, _ = to_mel(audio, torch.tensor([audio.shape[1]]))
            n = min(again.shape[2], mel.shape[2])
            errors.append(float((again[:, :, :n] - mel[:, :, :n]).abs().mean()))
    return float(np.mean(errors))


def test_vocoder_fine_tunes_from_its_base(phoneme_voice: dict[str, Any], hifigan_base: dict[str, Any]) -> None:
    """The HiFi-GAN really started from the base: its generator is within a hair of the base's and far
    from a fresh initialisation of the same architecture, and it starts where the base left off (its
    reconstruction error on this run's mels is the base's, well below a fresh generator's)."""
    import numpy as np
    import torch
    from hydra.utils import instantiate
    from nemo.collections.tts.models import HifiGanModel

    r = phoneme_voice["result"]
    assert [b["role"] for b in r.base_weights] == ["base_spectrogram", "base_vocoder"]
    base = HifiGanModel.restore_from(str(hifigan_base["path"]), map_location="cpu").eval()
    tuned = HifiGanModel.restore_from(r.vocoder, map_location="cpu").eval()
    torch.manual_seed(0)
    fresh = instantiate(base.cfg.generator).eval()

    def distance(a: Any, b: Any) -> float:
        return float(sum(((x - y) ** 2).sum() for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)))

    assert distance(tuned.generator, base.generator) < 0.01 * distance(fresh, base.generator)
    mel_dir = Path(r.vocoder).parent / "vocoder" / "train" / "mels"
    mels = [torch.from_numpy(np.load(p)).float()[None] for p in sorted(mel_dir.glob("*.npy"))]
    assert mels
    to_mel = base.audio_to_melspec_precessor
    err_fresh, err_base, err_tuned = (_mel_l1(g, mels, to_mel) for g in (fresh, base.generator, tuned.generator))
    assert err_tuned < 1.05 * err_base and err_tuned < 0.8 * err_fresh, (err_fresh, err_base, err_tuned)
    assert hifigan_base["log"] and _vocoder_log(Path(r.loss_log))  # both trainings logged their steps


def test_bundle_carries_the_g2p_and_says_what_it_speaks(phoneme_voice: dict[str, Any]) -> None:
    from lane.bundle import validate_voice_bundle
    from lane.core.fsutil import sha256_file

    bdir = phoneme_voice["bundle"]
    checks = {c["id"]: c["ok"] for c in phoneme_voice["export"]["checks"]}
    assert checks["tokenizer_replay_matches"] is True and phoneme_voice["export"]["status"] == "done"
    manifest = json.loads((bdir / "manifest.json").read_text(encoding="utf-8"))
    speaks = manifest["tokenizer"]["speaks"]
    assert speaks["type"] == "arpabet" and speaks["g2p"] == "EnglishG2p"
    dictionary = speaks["dictionary"]
    assert dictionary["entries"] > 100_000  # the whole CMUdict, as the base carries it
    assert dictionary["sha256"] == sha256_file(bdir / dictionary["path"]) == manifest["files"][dictionary["path"]]["sha256"]
    assert dictionary["licence"] == "Apache-2.0"  # the base's weights licence, from the weights manifest
    assert speaks["heteronyms"]["path"] in manifest["files"]
    assert speaks["normalizer"] and "spelled as graphemes" in speaks["oov_policy"]
    assert validate_voice_bundle(bdir, phoneme_voice["root"]).ok
    card = (bdir / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert "EnglishG2p" in card and dictionary["sha256"][:12] in card


def test_onnx_voice_speaks_phonemes_without_nemo(phoneme_voice: dict[str, Any], repo_root: Path) -> None:
    """The bundle's runtime in a fresh interpreter: normaliser, G2P and tokenizer replayed, FastPitch and
    the vocoder in onnxruntime; torch, NeMo and Lightning are never imported."""
    code = ("import sys, json; from lane.bundle.voice import OnnxVoice; v = OnnxVoice(sys.argv[1]); "
            "a = v.synthesize_batch(['I read the record 42 times.', 'Zyxqu wind, live!']); "
            "bad = [m for m in ('torch', 'nemo', 'lightning') if m in sys.modules]; "
            "print(json.dumps({'n': [len(x) for x in a], 'bad': bad}))")
    out = subprocess.run([sys.executable, "-c", code, str(phoneme_voice["bundle"])], cwd=repo_root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["bad"] == [] and all(n > 0 for n in got["n"])


def test_onnx_tokens_equal_nemo_parse(phoneme_voice: dict[str, Any]) -> None:
    """The served ids equal what NeMo's FastPitchModel.parse feeds the model (phonemes always, at
    inference) for text the lane has normalised."""
    from nemo.collections.tts.models import FastPitchModel

    from lane.bundle.voice import OnnxVoice
    from lane.text.normalize import normalize

    model = FastPitchModel.restore_from(phoneme_voice["result"].fastpitch_nemo, map_location="cpu").eval()
    voice = OnnxVoice(phoneme_voice["bundle"])
    for text in ["Read it again, Dr. Smith!", "They live on 5th Avenue since 1999.", "Qwzx's o'clock-ish?"]:
        assert voice.tokens(text) == model.parse(normalize(text), normalize=False)[0].tolist(), text


def test_validate_measures_the_phoneme_voice(phoneme_voice: dict[str, Any], tiny_ds: Any, repo_root: Path) -> None:
    """The validate stage with the production profile's evaluation: the ONNX voice agrees with NeMo on
    the same text, every gate is measured, and an undertrained voice fails its gates honestly."""
    from lane.core.config import load_profile
    from lane.core.stage import StageRun
    from lane.stages.validate import validate_stage

    root = phoneme_voice["root"]
    tiny_val = tiny_ds.val_manifest
    prof = load_profile("production", root)
    st = StageRun.open("validate", root=root, run_id="phoneme-ft")
    with st.guard():
        summary = validate_stage(st, prof, root=root, run_dir=st.run_dir, voice_profile_id="phoneme",
                                 weights_manifest=str(repo_root / "configs/voice/weights-manifest.example.json"),
                                 val_manifest=tiny_val)
    res = st.finish()
    m = summary["metrics"]
    assert m["nemo_onnx_mcd"] is not None and m["nemo_onnx_mcd"] < 1.0
    assert m["n_sentences"] > 0 and m["cer_synth"] is not None
    assert res["status"] == "failed" and res["reason"] == "gate_failed"


def test_lane_serve_speaks_the_phoneme_voice_without_torch(phoneme_voice: dict[str, Any], tmp_path: Path,
                                                           repo_root: Path) -> None:
    """`lane serve` (the real CLI, a real HTTP server on loopback) made live the way a GO run is, asked
    for speech through the OpenAI-shaped endpoint: it answers with audio, and the server process never
    maps torch's libraries (NeMo and Lightning cannot load without them)."""
    import io
    import time

    import httpx
    import soundfile as sf

    sys.path.insert(0, str(repo_root / "tests" / "serve"))
    from serve_helpers import make_live

    root = make_root(tmp_path / "ws")
    make_live(root, Path(phoneme_voice["bundle"]), "phon", "run-go-1")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lane", "serve", "--root", str(root), "--port", str(port)],
                            cwd=repo_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        resp = httpx.post(f"{url}/v1/audio/speech", timeout=120,
                          json={"voice": "phon", "input": "I read the record 42 times.", "response_format": "wav"})
        assert resp.status_code == 200, resp.text
        audio, sr = sf.read(io.BytesIO(resp.content))
        assert sr == 22050 and audio.size > 0 and abs(audio).max() > 0  # a tiny voice: short, but sound
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "torch" not in maps and "libtorch" not in maps
        assert "onnxruntime" in maps  # the check above looks at the right process
    finally:
        proc.terminate()
        proc.wait(timeout=30)
