"""prepare_dataset end to end on espeak-made recordings: long form with and without transcript,
LJSpeech and NeMo manifests, manifests and artifacts, deterministic split, gates."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from dataprep_texts import LANE, OTHER_TEXT, SENTENCES

from lane.core.fsutil import sha256_file
from lane.core.reasons import LaneError


def _words(s: str) -> set[str]:
    import re

    return set(re.findall(r"[a-z']+", s.lower()))


def test_longform_with_transcript_builds_aligned_dataset(longform, run_prepare, data_root, capfd):
    flac, txt = longform
    res, st = run_prepare(flac, transcript=txt)
    out = capfd.readouterr().out
    assert res.input_format == "longform_transcript"
    assert res.asr_engine and res.asr_engine.startswith("pocketsphinx")
    assert res.n_kept >= 6, res.rejected_by_reason
    assert res.kept_s > 15
    clips = res.clips
    kept = [c for c in clips if c["kept"]]
    # every kept clip's text is (most of) one transcript sentence, not the ASR hypothesis
    # every kept clip's text is exactly one transcript sentence (pauses between sentences cut the clips,
    # boundaries snap to sentence ends), not the ASR hypothesis
    for c in kept:
        assert c["text"] in SENTENCES, (c["text"], c["asr_text"])
        assert c["alignment_confidence"] >= 0.5
    # clips: 16-bit WAV at the lane rate, named by content hash, sha256 in the manifest matches
    for c in kept:
        p = data_root / c["path"]
        info = sf.info(str(p))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert p.stem == c["sha256"][:32] == sha256_file(p)[:32]
        assert 1.0 <= c["duration_s"] <= 15.0
        assert set(c["checks"]) >= {"duration_s", "clipping_ratio", "snr_db", "lead_silence_s", "trail_silence_s",
                                   "internal_silence_s", "chars_per_s"}
    # NeMo manifests: absolute paths, normalized text, duration; train and val disjoint, cover the kept clips
    train = [json.loads(x) for x in res.train_manifest.read_text().splitlines()]
    val = [json.loads(x) for x in res.val_manifest.read_text().splitlines()]
    assert train and val
    assert all(Path(x["audio_filepath"]).is_absolute() and Path(x["audio_filepath"]).exists() for x in train + val)
    assert {x["audio_filepath"] for x in train}.isdisjoint({x["audio_filepath"] for x in val})
    assert len(train) + len(val) == res.n_kept
    assert all(x["normalized_text"] == x["normalized_text"].lower() for x in train)
    # ARTIFACT lines and stage artifacts for every output
    kinds = {a["kind"] for a in st.artifacts}
    assert {"dataset_manifest", "train_manifest", "val_manifest", "pitch_stats"} <= kinds
    assert "ARTIFACT stage=train kind=dataset_manifest path=artifacts/dataset_manifest.tts_prod_train_nemo.json" in out
    assert "PROGRESS stage=train" in out
    assert res.manifest_path == data_root / "artifacts" / f"dataset_manifest.{LANE}.json"
    checks = {c.id: c.ok for c in st.checks}
    assert checks == {"dataset_not_empty": True, "dataset_min_duration": True}
    # pitch statistics are plausible for a ~100-130 Hz espeak en-us voice
    assert 70 < res.pitch_stats["pitch_mean"] < 200
    assert res.pitch_stats["pitch_min"] <= res.pitch_stats["pitch_mean"] <= res.pitch_stats["pitch_max"]


def test_transcript_mismatch_rejects_clips_alignment_low_confidence(longform, audio_dir, run_prepare, data_root):
    flac, _ = longform
    wrong = audio_dir / "wrong.txt"
    wrong.write_text("\n".join(OTHER_TEXT) + "\n", encoding="utf-8")
    with pytest.raises(LaneError) as ei:
        run_prepare(flac, transcript=wrong)
    assert ei.value.code == "dataset_empty"
    man = json.loads((data_root / "artifacts" / f"dataset_manifest.{LANE}.json").read_text())
    reasons = [c["reason"] for c in man["clips"]]
    assert reasons.count("alignment_low_confidence") >= 0.8 * len(reasons)
    assert man["n_kept"] == 0


def test_split_is_deterministic_and_seeded(ljspeech, run_prepare, tmp_path):
    a, _ = run_prepare(ljspeech)
    val_a = a.val_manifest.read_text()
    shutil.rmtree(tmp_path / "run")
    b, _ = run_prepare(ljspeech)
    assert b.val_manifest.read_text() == val_a
    names = set()
    for seed in range(1, 12):
        shutil.rmtree(tmp_path / "run")
        c, _ = run_prepare(ljspeech, data={"seed": seed, "validation_fraction": 0.2})
        names.add(c.val_manifest.read_text())
    assert len(names) > 1, "the seed must change the split"


def test_nemo_manifest_input_and_duplicates(ljspeech, audio_dir, run_prepare):
    rows = [line.split("|") for line in (ljspeech / "metadata.csv").read_text().splitlines()]
    man = audio_dir / "in_manifest.jsonl"
    lines = [json.dumps({"audio_filepath": f"lj_clean/wavs/{cid}.wav", "text": text}) for cid, text in rows]
    lines.append(json.dumps({"audio_filepath": f"lj_clean/wavs/{rows[0][0]}.wav", "text": rows[0][1]}))
    man.write_text("\n".join(lines) + "\n", encoding="utf-8")
    res, _ = run_prepare(man)
    assert res.input_format == "nemo_manifest"
    assert res.rejected_by_reason == {"duplicate_audio": 1}
    assert res.n_kept == len(rows)


def test_dataset_too_small_gate(ljspeech, run_prepare, data_root):
    with pytest.raises(LaneError) as ei:
        run_prepare(ljspeech, data={"min_total_s": 600})
    assert ei.value.code == "dataset_too_small"
    assert "600" in ei.value.detail


def test_speaking_rate_and_empty_text(make_ljspeech, run_prepare):
    rows = [(f"r{i}", s) for i, s in enumerate(SENTENCES)]
    folder = make_ljspeech(rows, name="lj_rate")
    meta = (folder / "metadata.csv").read_text().splitlines()
    # clip r0 gets a transcript five times too long (wrong text), r1 an empty one
    meta[0] = "r0|" + " ".join([SENTENCES[0]] * 5)
    meta[1] = "r1|   "
    (folder / "metadata.csv").write_text("\n".join(meta) + "\n")
    res, _ = run_prepare(folder)
    by = {c["source"].split("/")[-1]: c for c in res.clips}
    assert by["r0.wav"]["reason"] == "speaking_rate_outlier"
    assert by["r1.wav"]["reason"] == "empty_text"
    assert res.n_kept == len(rows) - 2
