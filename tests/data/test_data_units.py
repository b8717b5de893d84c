"""Unit behaviour of the data-preparation parts: text normalisation, edit-distance alignment,
VAD batching, segmentation bounds, loudness, clip checks, decoding and the demo data."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import editdistance
import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as hs

from lane.data import audio as au
from lane.data import checks as ck
from lane.data import segment as sg
from lane.data.align import align_transcript, edit_alignment
from lane.data.text import normalize_text, number_to_words, out_of_vocabulary


# ------------------------------------------------------------------------------------------- text
@pytest.mark.parametrize("raw,expected", [
    ("In 1984 we met.", "in nineteen eighty-four we met."),
    ("It costs $5, or 12.5%.", "it costs five dollars, or twelve point five percent."),
    ("The 21st and 3rd floors", "the twenty-first and third floors"),
    ("1,000,000 people", "one million people"),
    ("Call 007 now", "call zero zero seven now"),
    ("\u201cQuoted\u201d \u2014 it\u2019s caf\u00e9 na\u00efve\u2026", '"quoted" - it\'s cafe naive...'),
    ("Tom & Jerry   went\thome", "tom and jerry went home"),
    ("2000 and 2024", "two thousand and two thousand twenty-four"),
])
def test_normalize_text_examples(raw, expected):
    assert normalize_text(raw) == expected


def test_number_words():
    assert number_to_words(0) == "zero"
    assert number_to_words(115) == "one hundred fifteen"
    assert number_to_words(90210) == "ninety thousand two hundred ten"
    assert number_to_words(-3) == "minus three"


def test_out_of_vocabulary_names_unmappable_characters():
    assert out_of_vocabulary(normalize_text("Привет, world")) == ["п", "р", "и", "в", "е", "т"]
    assert out_of_vocabulary(normalize_text("plain words, fine!")) == []


_LATIN = "".join(chr(c) for c in range(0xC0, 0x100) if chr(c) not in "\u00d7\u00f7")
_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()&%\u2019\u201c\u201d\u2014"


@settings(max_examples=300, deadline=None)
@given(hs.text(alphabet=_ASCII + _LATIN, max_size=60))
def test_normalized_latin_text_is_in_vocabulary_and_idempotent(text):
    """Latin letters with accents, digits and common punctuation always map into the vocabulary."""
    norm = normalize_text(text)
    assert out_of_vocabulary(norm) == []
    assert norm == norm.strip() and "  " not in norm
    assert normalize_text(norm) == norm


# -------------------------------------------------------------------------------------- alignment
@settings(max_examples=300, deadline=None)
@given(hs.lists(hs.sampled_from("abcd"), max_size=12), hs.lists(hs.sampled_from("abcd"), max_size=12))
def test_edit_alignment_is_minimal_and_complete(hyp, ref):
    pairs = edit_alignment(hyp, ref)
    assert [i for i, _ in pairs if i is not None] == list(range(len(hyp)))
    assert [j for _, j in pairs if j is not None] == list(range(len(ref)))
    cost = sum(1 for i, j in pairs if i is None or j is None or hyp[i] != ref[j])
    assert cost == editdistance.eval(hyp, ref)


def test_align_transcript_assigns_sentences_to_segments():
    text = "The cat sat down. A dog barked twice! Birds sang in the morning."
    hyps = [["the", "cat", "sad", "down"], ["dog", "barked", "twice"], ["birds", "sang", "in", "the", "morning"]]
    out = align_transcript(text, hyps)
    assert [o.text for o in out] == ["The cat sat down.", "A dog barked twice!", "Birds sang in the morning."]
    assert out[0].confidence == pytest.approx(0.75)
    assert out[2].confidence == 1.0
    garbage = align_transcript(text, [["zebra", "quantum"], ["violin"], ["ocean", "tax"]])
    assert all(o.confidence == 0.0 for o in garbage)


# ----------------------------------------------------------------------------------- VAD/segments
@pytest.fixture(scope="module")
def demo16k(repo_root: Path) -> np.ndarray:
    y, sr = sf.read(repo_root / "data" / "demo" / "longform.flac", dtype="float32")
    assert sr == 16000
    return y[: 16000 * 60]


def test_batched_vad_regions_match_a_single_pass(demo16k):
    vad = sg.SileroVad()
    one = sg.speech_regions(vad.probabilities(demo16k, max_streams=1))
    many = sg.speech_regions(vad.probabilities(demo16k, max_streams=16, min_stream_windows=60))
    assert len(one) == len(many) > 5
    for (a0, a1), (b0, b1) in zip(one, many, strict=True):
        assert abs(a0 - b0) <= 0.065 and abs(a1 - b1) <= 0.065


def test_segments_respect_bounds_and_split_long_speech():
    sr = 16000
    rng = np.random.default_rng(0)
    y = (rng.standard_normal(sr * 40) * 0.1).astype(np.float32)
    y[sr * 20: sr * 20 + 3200] = 0.0  # a quiet 0.2 s inside a 40 s "speech" region
    segs = sg.segment(y, sr, [(0.0, 40.0), (40.5, 40.7)], min_clip_s=1.0, max_clip_s=15.0, pad_s=0.1)
    assert all(s.duration <= 15.0 + 1e-6 for s in segs)
    assert any(abs(s.speech_end - 20.1) < 0.2 for s in segs), "the long region is cut at its quiet point"
    assert segs[-1].end == pytest.approx(40.0, abs=0.01) or segs[-1].speech_end == pytest.approx(40.7)
    assert all(b.start >= a.end - 1e-6 for a, b in itertools.pairwise(segs))


# --------------------------------------------------------------------------------- audio + checks
def test_loudness_gain_reaches_target_and_caps_peaks():
    sr = 22050
    t = np.arange(sr * 3) / sr
    y = (0.05 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    g = au.loudness_gain(y, sr, -23.0)
    assert au.loudness_lufs(y * g, sr) == pytest.approx(-23.0, abs=0.1)
    loud = au.loudness_gain(y, sr, 0.0)  # would need a peak > 1: capped at 0.97
    assert np.max(np.abs(y * loud)) == pytest.approx(0.97, abs=1e-3)


def test_streamed_loudness_equals_pyloudnorm(repo_root):
    import pyloudnorm

    y, sr = sf.read(repo_root / "data" / "demo" / "longform.flac", dtype="float32")
    y = y[: sr * 70]
    exact = pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64))
    assert au.loudness_lufs(y, sr, exact_below_s=1.0) == pytest.approx(exact, abs=0.01)
    assert au.loudness_lufs(np.zeros(sr * 70, np.float32), sr, exact_below_s=1.0) == float("-inf")


def test_write_clip_is_content_addressed(tmp_path):
    y = np.linspace(-0.5, 0.5, 22050, dtype=np.float32)
    p1, h1 = au.write_clip(y, 22050, tmp_path)
    p2, h2 = au.write_clip(y.copy(), 22050, tmp_path / "other")
    assert h1 == h2 == hashlib.sha256(p1.read_bytes()).hexdigest() and p1.name == p2.name
    assert sf.info(str(p1)).subtype == "PCM_16"


def test_decode_mp3_and_ogg(tmp_path):
    sr = 44100
    t = np.arange(sr * 2) / sr
    y = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    stereo = np.stack([y, y], axis=1)
    for fmt, ext in (("MP3", "mp3"), ("OGG", "ogg")):
        p = tmp_path / f"tone.{ext}"
        sf.write(str(p), stereo, sr, format=fmt)
        d = au.decode(p, 22050)
        assert d.channels == 2 and d.source_rate == sr and d.sample_rate == 22050
        assert abs(d.duration - 2.0) < 0.1


def test_clip_checks_values_and_reasons():
    sr = 22050
    rng = np.random.default_rng(1)
    t = np.arange(sr * 3) / sr
    speechy = (0.3 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32)
    lim = ck.Limits()
    v = ck.measure(speechy, speechy, sr, "a short sentence of text")
    assert ck.first_failure(v, "a short sentence of text", lim) == (None, "")
    clipped = np.clip(speechy * 10, -1, 1)
    v = ck.measure(clipped, clipped, sr, "x y")
    assert v["clipping_ratio"] > 0.1 and ck.first_failure(v, "x y", lim)[0] == "clipping"
    noise = (rng.standard_normal(sr * 3) * 0.2).astype(np.float32)
    assert ck.first_failure(ck.measure(noise, noise, sr, "text"), "text", lim)[0] == "low_snr"
    quiet = np.zeros(sr * 3, np.float32)
    assert ck.first_failure(ck.measure(quiet, quiet, sr, "text"), "text", lim)[0] == "silent"
    padded = np.concatenate([np.zeros(sr * 2, np.float32), speechy])
    v = ck.measure(padded, padded, sr, "some words here")
    assert v["lead_silence_s"] == pytest.approx(2.0, abs=0.05)
    assert ck.first_failure(v, "some words here", lim)[0] == "excess_silence"
    assert ck.rate_outliers([9.0, 10.0, 11.0] * 4 + [40.0], 5.0) == [False] * 12 + [True]


def test_demo_data_is_reproducible_and_small(repo_root, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_demo_data", repo_root / "scripts" / "make_demo_data.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    mod.make(tmp_path)
    for rel in ("data/demo/longform.flac", "data/demo/longform.txt", "data/demo/ljspeech/metadata.csv",
                "data/demo/ljspeech/wavs/demo_0001.wav", "data/eval/impostor.flac"):
        assert (tmp_path / rel).read_bytes() == (repo_root / rel).read_bytes(), rel
    total = sum(p.stat().st_size for d in ("data/demo", "data/eval") for p in (repo_root / d).rglob("*") if p.is_file())
    assert total < 5_000_000
    info = sf.info(str(repo_root / "data" / "demo" / "longform.flac"))
    assert 120 < info.duration < 300 and info.channels == 1
