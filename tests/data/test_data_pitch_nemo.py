"""The pyworld pitch cache is what NeMo 3.0's TTSDataset reads, frame for frame, and the text
normaliser's vocabulary is exactly the EnglishCharsTokenizer's. Imports NeMo (~15 s)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lane.data import normalize_text
from lane.data import pitch as pt
from lane.data.text import VOCAB

pytestmark = pytest.mark.nemo


@pytest.fixture(scope="module")
def nemo_tts():
    pytest.importorskip("nemo.collections.tts")
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import EnglishCharsTokenizer
    from nemo.collections.tts.data.dataset import TTSDataset

    return TTSDataset, EnglishCharsTokenizer


def test_tts_dataset_loads_our_pitch_instead_of_running_pyin(nemo_tts, ljspeech, run_prepare, monkeypatch):
    """librosa.pyin is patched to raise inside this test: had TTSDataset missed our cache it would have
    called pyin (its on-the-fly estimator) and failed. Nothing else is mocked."""
    import librosa

    TTSDataset, EnglishCharsTokenizer = nemo_tts
    res, _ = run_prepare(ljspeech)
    s = res.pitch_settings
    assert res.sup_data_dir.name == f"sup_{pt.PitchSettings(**{k: s[k] for k in s}).key()}"

    def no_pyin(*a, **k):
        raise AssertionError("TTSDataset recomputed pitch with librosa.pyin instead of reading the cache")

    monkeypatch.setattr(librosa, "pyin", no_pyin)
    for manifest in (res.train_manifest, res.val_manifest):
        ds = TTSDataset(manifest_filepath=str(manifest), sample_rate=res.sample_rate, text_tokenizer=EnglishCharsTokenizer(),
                        sup_data_path=str(res.sup_data_dir), sup_data_types=["align_prior_matrix", "pitch"],
                        n_fft=s["n_fft"], win_length=s["win_length"], hop_length=s["hop_length"],
                        pitch_fmin=s["fmin"], pitch_fmax=s["fmax"], pitch_mean=res.pitch_stats["pitch_mean"],
                        pitch_std=res.pitch_stats["pitch_std"], pitch_norm=False)
        rows = [json.loads(x) for x in Path(manifest).read_text().splitlines()]
        assert len(ds) == len(rows)
        for i, row in enumerate(rows):
            item = ds[i]
            audio, pitch, pitch_len = item[0], item[8], item[9]
            ours = pt.read_cache(res.sup_data_dir, Path(row["audio_filepath"]))
            assert ours is not None
            np.testing.assert_array_equal(pitch.numpy(), ours)
            # one pitch value per mel frame, as FastPitch needs
            n_mel = ds.get_log_mel(audio).shape[-1]
            assert int(pitch_len) == len(ours) == n_mel == 1 + len(audio) // s["hop_length"]
            assert (ours > 0).mean() > 0.3  # speech is mostly voiced


def test_pyworld_agrees_with_pyin_on_speech(ljspeech, run_prepare):
    """Our estimator and NeMo's default one (pyin) give the same F0 on voiced frames (median within 5%)."""
    import librosa
    import soundfile as sf

    res, _ = run_prepare(ljspeech)
    row = json.loads(res.train_manifest.read_text().splitlines()[0])
    y, sr = sf.read(row["audio_filepath"], dtype="float32")
    s = pt.PitchSettings(sample_rate=sr)
    ours = pt.estimate(y, s)
    f0, _, _ = librosa.pyin(y, fmin=s.fmin, fmax=s.fmax, frame_length=s.win_length, sr=sr, fill_na=0.0)
    assert len(f0) == len(ours)
    both = (ours > 0) & (f0 > 0)
    assert both.mean() > 0.3
    ratio = np.median(ours[both] / f0[both])
    assert 0.95 < ratio < 1.05, ratio


def test_changed_pitch_setting_never_reuses_the_cache(ljspeech, run_prepare, tmp_path):
    res_a, _ = run_prepare(ljspeech)
    res_b, _ = run_prepare(ljspeech, data={"pitch": {"fmin": 70.0, "fmax": 800.0}})
    assert res_a.sup_data_dir != res_b.sup_data_dir
    assert res_b.pitch_settings["fmin"] == 70.0
    assert sorted(p.name for p in (res_a.sup_data_dir / "pitch").iterdir()) == \
        sorted(p.name for p in (res_b.sup_data_dir / "pitch").iterdir())
    # the same audio and settings: the second run reads the cache (keyed by content hash)
    res_c, st = run_prepare(ljspeech, data={"pitch": {"fmin": 70.0, "fmax": 800.0}})
    assert st.stats_["pitch_cached"] == res_c.n_kept and st.stats_["pitch_computed"] == 0


def test_normaliser_vocabulary_is_the_tokenizers(nemo_tts):
    _, EnglishCharsTokenizer = nemo_tts
    tok = EnglishCharsTokenizer()
    specials = {t for t in tok.tokens if t.startswith("<")}
    assert set(tok.tokens) - specials == set(VOCAB)
    text = normalize_text("In 1984 Zoë paid \u00a35.50 \u2014 \u201cquite\u201d a lot \u2026 for 3 caf\u00e9s & 2nd-hand books!")
    assert set(text) <= VOCAB
    assert "nineteen eighty-four" in text and "three" in text and "second" in text
    ids = tok(text)
    assert tok.decode(ids).replace(" ", "") == text.replace(" ", "")
