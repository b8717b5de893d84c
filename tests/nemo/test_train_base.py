"""scripts/train_base.py and the base it shipped (lane/assets/base_fastpitch/): held-out speakers and texts stay out of
the corpus, the tiny end-to-end run makes a .nemo the lane can fine-tune, and the shipped file matches
the weights manifest."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import base_text  # noqa: E402
import train_base  # noqa: E402

SHIPPED = ROOT / "lane" / "assets" / "base_fastpitch" / "lane-base-fastpitch.nemo"
MANIFEST = ROOT / "configs" / "voice" / "weights-manifest.example.json"


def test_recipe_never_uses_the_held_out_speakers() -> None:
    assert "en-us" not in train_base.VOICES and "f3" not in train_base.VARIANTS
    recipes = [train_base.clip_recipe(20261130, i) for i in range(3000)]
    assert not [r for r in recipes if r["voice"] == "en-us" or r["variant"] == "f3"]
    assert not [r for r in recipes if r["espeak_voice"].split("+")[0] in train_base.HELD_OUT_VOICES]
    # en-gb is spelled "en": espeak-ng ignores +variant on the alias en-gb
    assert "en-gb" not in train_base.VOICES
    assert len({r["espeak_voice"] for r in recipes}) > 300
    assert recipes[:5] == [train_base.clip_recipe(20261130, i) for i in range(5)]  # seeded per clip


def test_natural_share_mixes_in_the_natural_voices_but_never_the_bench_or_independent_check_speakers() -> None:
    assert not set(train_base.NATURAL_VOICES) & set(train_base.HELD_OUT_NATURAL)
    assert {"flite:rms", "flite:slt", "festival:cmu_us_slt_arctic_hts"} <= set(train_base.HELD_OUT_NATURAL)
    recipes = [train_base.clip_recipe(20261205, i, natural_share=0.5) for i in range(2000)]
    natural = [r for r in recipes if ":" in r["espeak_voice"]]
    assert 0.4 < len(natural) / len(recipes) < 0.6
    assert {r["voice"] for r in natural} == set(train_base.NATURAL_VOICES)
    assert not [r for r in natural if r["voice"] in train_base.HELD_OUT_NATURAL or "slt" in r["voice"]]
    # the espeak part keeps its own hold-outs, and a share of 0 is the shipped recipe, clip for clip
    assert not [r for r in recipes if r["voice"] == "en-us" or r["variant"] == "f3"]
    assert [train_base.clip_recipe(20261130, i, natural_share=0.0) for i in range(50)] == \
        [train_base.clip_recipe(20261130, i) for i in range(50)]


def test_sentences_exclude_every_evaluation_text_and_fit_the_tokenizer() -> None:
    from lane.data.text import out_of_vocabulary

    forbidden = base_text.forbidden_texts(ROOT)
    assert len(forbidden) >= 60  # demo 44 + 6 LJSpeech + impostor 5 + eval 12 + tiny + test texts
    gen = base_text.SentenceGenerator(7, forbidden, lm_words=base_text.lm_vocabulary(5000))
    sents = gen.sentences(1500)
    assert len(set(sents)) == 1500
    keys = {gen._key(t) for t in forbidden}
    assert not [s for s in sents if gen._key(s) in keys]
    grams = gen.forbidden_5grams
    for s in sents:
        w = gen._key(s).split()
        assert not any(tuple(w[i:i + 5]) in grams for i in range(len(w) - 4)), s
        assert not out_of_vocabulary(s), s
    assert any("?" in s for s in sents) and any("!" in s for s in sents) and any("'" in s for s in sents)
    assert sents[:20] == base_text.SentenceGenerator(7, forbidden, lm_words=base_text.lm_vocabulary(5000)).sentences(20)


@pytest.mark.slow
@pytest.mark.nemo
def test_tiny_run_makes_a_base_the_lane_can_fine_tune(tmp_path: Path) -> None:
    import nemo.collections.tts.models as tts
    import torch
    from omegaconf import OmegaConf

    out = tmp_path / "base.nemo"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train_base.py"), "all", "--tiny", "--work",
                    str(tmp_path / "work"), "--out", str(out), "--jobs", "1"], check=True, cwd=ROOT, timeout=600)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest() and meta["dtype"] == "float16"
    assert meta["step"] == train_base.TINY["max_steps"]
    model = tts.FastPitchModel.restore_from(str(out), map_location="cpu")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert model.cfg.learn_alignment
    cfg = OmegaConf.load(ROOT / "configs" / "nemo" / "fastpitch.yaml")
    assert OmegaConf.to_container(model.cfg.text_tokenizer) == OmegaConf.to_container(cfg.model.text_tokenizer)


@pytest.mark.nemo
@pytest.mark.skipif(not SHIPPED.exists(), reason="no shipped base yet")
def test_shipped_base_matches_the_manifest_and_the_config() -> None:
    import nemo.collections.tts.models as tts
    from omegaconf import OmegaConf

    entries = [e for e in json.loads(MANIFEST.read_text())["entries"] if e["role"] == "base_spectrogram"]
    ours = entries[0]
    assert ours["id"] == train_base.MANIFEST_ID and ours["path"] == "pkg://lane/assets/base_fastpitch/lane-base-fastpitch.nemo"
    assert ours["sha256"] == hashlib.sha256(SHIPPED.read_bytes()).hexdigest()
    assert ours["code_license"] == ours["weights_license"] == "Apache-2.0"
    total = sum(p.stat().st_size for p in SHIPPED.parent.iterdir() if p.is_file())
    assert total <= 40e6
    cfg = tts.FastPitchModel.restore_from(str(SHIPPED), return_config=True, map_location="cpu")
    base = OmegaConf.load(ROOT / "configs" / "nemo" / "fastpitch.yaml")
    assert cfg.learn_alignment and int(cfg.sample_rate) == 22050 and int(cfg.n_mel_channels) == 80
    assert float(cfg.preprocessor.highfreq) == 8000.0
    assert OmegaConf.to_container(cfg.text_tokenizer) == OmegaConf.to_container(base.model.text_tokenizer)
    assert (SHIPPED.parent / "MODEL_CARD.md").exists()
