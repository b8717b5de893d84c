"""Bad input, each with its reason code: broken files, silence, noise, clipping, odd channel counts
and rates (handled), broken metadata, unknown formats, no ASR engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from dataprep_texts import LANE, SENTENCES

from lane.core.reasons import LaneError
from lane.data import detect_format
from lane.data.espeak import sox, speak


def _manifest(root: Path) -> dict:
    return json.loads((root / "artifacts" / f"dataset_manifest.{LANE}.json").read_text())


@pytest.fixture(scope="module")
def bad(audio_dir: Path, longform) -> dict[str, Path]:
    d = audio_dir / "bad"
    d.mkdir(exist_ok=True)
    flac, _ = longform
    out = {"zero": d / "zero.flac", "text": d / "text.flac", "trunc": d / "trunc.flac"}
    out["zero"].write_bytes(b"")
    out["text"].write_text("this is not audio, just text saved with a .flac name\n" * 40, encoding="utf-8")
    data = flac.read_bytes()
    out["trunc"].write_bytes(data[: len(data) // 3])
    out["silence"] = d / "silence.flac"
    sox(["-n", "-r", "22050", "-c", "1", "-b", "16", str(out["silence"]), "trim", "0", "20"])
    out["noise"] = d / "noise.flac"
    sox(["-n", "-r", "22050", "-c", "1", "-b", "16", str(out["noise"]), "synth", "20", "whitenoise", "vol", "0.5"])
    out["clipped"] = d / "clipped.flac"
    sox([str(flac), str(out["clipped"]), "gain", "30"])  # sox clips at full scale
    out["six"] = d / "six.flac"
    sox([str(flac), str(out["six"]), "remix", "1", "1", "1", "1", "1", "1"])
    out["eight"] = d / "eight.flac"
    sox([str(flac), "-r", "8000", str(out["eight"])])
    return out


@pytest.mark.parametrize("key", ["zero", "text", "trunc"])
def test_undecodable_single_recording_is_missing_audio_path(bad, key, run_prepare):
    with pytest.raises(LaneError) as ei:
        run_prepare(bad[key])
    assert ei.value.code == "missing_audio_path"
    assert bad[key].name in ei.value.detail


def test_truncated_recording_among_good_ones_is_a_rejected_clip(bad, longform, run_prepare, data_root):
    flac, txt = longform
    res, _ = run_prepare(f"{flac},{bad['trunc']}", transcript=txt)
    rows = [c for c in res.clips if c["source"].endswith("trunc.flac")]
    assert [r["reason"] for r in rows] == ["audio_decode_failed"]
    assert res.n_kept >= 6


@pytest.mark.parametrize("key,reason", [("silence", "silent"), ("noise", "low_snr"), ("clipped", "clipping")])
def test_unusable_recording_rejects_every_clip_dataset_empty(bad, key, reason, run_prepare, data_root):
    with pytest.raises(LaneError) as ei:
        run_prepare(bad[key], data={"asr_engine": "pocketsphinx"})
    assert ei.value.code == "dataset_empty"
    man = _manifest(data_root)
    assert man["n_kept"] == 0
    reasons = [c["reason"] for c in man["clips"]]
    assert reasons and reasons.count(reason) >= 0.8 * len(reasons), reasons
    assert f"{reason}=" in ei.value.detail


@pytest.mark.parametrize("key", ["six", "eight"])
def test_six_channel_and_8khz_recordings_are_handled(bad, key, longform, run_prepare):
    """Decoded (mixed down / resampled to the lane rate), segmented and aligned like any recording.
    At 8 kHz pocketsphinx's anchors are weaker, so some clips may fall under the alignment threshold;
    nothing is rejected for the format itself."""
    _, txt = longform
    res, st = run_prepare(bad[key], transcript=txt)
    assert res.sample_rate == 22050
    assert st.stats_["source_channels"] == (6 if key == "six" else 1)
    assert st.stats_["source_rate"] == (8000 if key == "eight" else 22050)
    assert set(res.rejected_by_reason) <= {"alignment_low_confidence"}
    assert len(res.clips) >= 7 and res.n_kept >= 2
    if key == "six":
        assert res.n_kept >= 6


@pytest.mark.parametrize("channels,rate,encoding", [(6, 22050, ["-b", "24"]), (1, 8000, ["-b", "16"]),
                                                    (2, 44100, ["-b", "24"]), (2, 48000, ["-e", "floating-point", "-b", "32"])])
def test_six_channel_and_8khz_clips_are_kept(ljspeech, tmp_path, channels, rate, encoding, run_prepare):
    """Any rate, channel count and sample format (16/24-bit, 32-bit float) is decoded and kept."""
    folder = tmp_path / "lj_odd"
    shutil.copytree(ljspeech, folder)
    for wav in (folder / "wavs").glob("*.wav"):
        tmp = wav.with_suffix(".tmp.wav")
        sox([str(wav), "-r", str(rate), "-c", str(channels), *encoding, str(tmp)])
        tmp.replace(wav)
    res, _ = run_prepare(folder)
    assert res.n_kept == 6 and res.rejected_by_reason == {}
    kept = [c for c in res.clips if c["kept"]]
    assert all(sf.info(str(res.manifest_path.parent.parent / c["path"])).samplerate == 22050 for c in kept)


# --------------------------------------------------------------------------- LJSpeech metadata
@pytest.fixture
def lj(ljspeech: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "lj"
    shutil.copytree(ljspeech, folder)
    return folder


def test_metadata_missing_wavs_and_empty_text_are_rejected_clips(lj, run_prepare):
    meta = (lj / "metadata.csv").read_text().splitlines()
    meta.append("ghost_01|This clip has no audio file.")
    meta[1] = meta[1].split("|")[0] + "|"
    (lj / "metadata.csv").write_text("\n".join(meta) + "\n")
    res, _ = run_prepare(lj)
    assert res.rejected_by_reason == {"empty_text": 1, "missing_file": 1}
    ghost = next(c for c in res.clips if "ghost_01" in c["source"])
    assert ghost["kept"] is False and ghost["reason"] == "missing_file"


@pytest.mark.parametrize("header", ["id|text", "ID|Text|normalized_text", "file|transcript"])
def test_metadata_header_row_is_not_a_clip(lj, header, run_prepare):
    plain, _ = run_prepare(lj)
    meta = lj / "metadata.csv"
    meta.write_text(f"{header}\n" + meta.read_text())
    res, _ = run_prepare(lj)
    assert [c["source"] for c in res.clips] == [c["source"] for c in plain.clips]
    assert not any(c["reason"] == "missing_file" for c in res.clips) and res.n_kept == plain.n_kept


def test_metadata_with_only_a_header_row_is_dataset_empty(lj, run_prepare):
    from lane.data.probe import inspect_audio

    (lj / "metadata.csv").write_text("id|text\n")
    for check in (lambda: run_prepare(lj), lambda: inspect_audio(lj)):  # the train stage, and verify's early check
        with pytest.raises(LaneError) as ei:
            check()
        assert ei.value.code == "dataset_empty"
        assert "lists no clips (only its header row id|text)" in ei.value.detail


def test_a_clip_named_like_a_header_is_still_a_clip(lj):
    from lane.data.inputs import read_ljspeech

    shutil.copy(lj / "wavs" / "c00.wav", lj / "wavs" / "id.wav")
    (lj / "metadata.csv").write_text("id|text\nc01|More text.\n")
    assert [c.id for c in read_ljspeech(lj)] == ["id", "c01"]


@pytest.mark.parametrize("content,needle", [
    ("c00\tThe tab separated text.\nc01\tMore text.\n", "line 1"),
    ("c00,The comma separated text.\n", "line 1"),
    ("c00|text|normalized|extra field\n", "4 field"),
])
def test_metadata_bad_delimiter_is_metadata_invalid(lj, content, needle, run_prepare):
    (lj / "metadata.csv").write_text(content)
    with pytest.raises(LaneError) as ei:
        run_prepare(lj)
    assert ei.value.code == "metadata_invalid"
    assert needle in ei.value.detail


def test_metadata_non_utf8_is_metadata_invalid(lj, run_prepare):
    (lj / "metadata.csv").write_bytes("c00|Caf\u00e9 text\n".encode() + b"c01|Na\xefve latin-1 text\n")
    with pytest.raises(LaneError) as ei:
        run_prepare(lj)
    assert ei.value.code == "metadata_invalid"
    assert "line 2" in ei.value.detail and "UTF-8" in ei.value.detail


def test_metadata_with_undecodable_wav_rejects_that_clip(lj, run_prepare):
    (lj / "wavs" / "c02.wav").write_bytes(b"RIFF\x00\x00garbage")
    res, _ = run_prepare(lj)
    assert res.rejected_by_reason == {"audio_decode_failed": 1}


def test_noise_and_silent_clips_in_a_listed_dataset(lj, run_prepare):
    sox(["-n", "-r", "22050", "-c", "1", "-b", "16", str(lj / "wavs" / "c03.wav"), "synth", "3", "whitenoise",
         "vol", "0.5"])
    sox(["-n", "-r", "22050", "-c", "1", "-b", "16", str(lj / "wavs" / "c04.wav"), "trim", "0", "3"])
    res, _ = run_prepare(lj)
    assert res.rejected_by_reason == {"low_snr": 1, "silent": 1}


def test_text_out_of_vocabulary_is_rejected(lj, run_prepare):
    meta = (lj / "metadata.csv").read_text().splitlines()
    meta[0] = meta[0].split("|")[0] + "|\u041f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440"
    (lj / "metadata.csv").write_text("\n".join(meta) + "\n")
    res, _ = run_prepare(lj)
    assert res.rejected_by_reason == {"text_out_of_vocabulary": 1}


# --------------------------------------------------------------------------- formats and engines
def test_format_autodetection_for_all_four(ljspeech, longform, tmp_path):
    flac, txt = longform
    root = tmp_path
    man = tmp_path / "m.json"
    man.write_text(json.dumps({"audio_filepath": str(flac), "text": "x"}) + "\n")
    assert detect_format(str(flac), None, root) == "longform"
    assert detect_format(str(flac), str(txt), root) == "longform_transcript"
    assert detect_format(str(ljspeech), None, root) == "ljspeech"
    assert detect_format(str(ljspeech / "metadata.csv"), None, root) == "ljspeech"
    assert detect_format(str(man), None, root) == "nemo_manifest"
    folder = tmp_path / "recs"
    folder.mkdir()
    shutil.copy(flac, folder / "a.flac")
    assert detect_format(str(folder), None, root) == "longform"
    assert detect_format(str(flac), None, root, "ljspeech") == "ljspeech"  # named format wins


def test_unknown_format_and_missing_path(tmp_path, data_root, run_prepare):
    junk = tmp_path / "notes.docx"
    junk.write_text("hello")
    empty = tmp_path / "emptydir"
    empty.mkdir()
    for path in (junk, empty):
        with pytest.raises(LaneError) as ei:
            detect_format(str(path), None, tmp_path)
        assert ei.value.code == "input_format_unknown"
    with pytest.raises(LaneError) as ei:
        detect_format(str(tmp_path / "nope.flac"), None, tmp_path)
    assert ei.value.code == "missing_audio_path"
    with pytest.raises(LaneError) as ei:
        detect_format(str(junk), None, tmp_path, "mp4_folder")
    assert ei.value.code == "input_format_unknown"


def test_nemo_manifest_bad_json_is_metadata_invalid(tmp_path, run_prepare):
    man = tmp_path / "bad.jsonl"
    man.write_text('{"audio_filepath": "a.wav", "text": "ok"}\n{not json\n')
    with pytest.raises(LaneError) as ei:
        run_prepare(man)
    assert ei.value.code == "metadata_invalid" and "line 2" in ei.value.detail


def test_nemo_asr_without_weights_is_asr_unavailable(longform, run_prepare, data_root):
    """The example manifest lists pocketsphinx for role asr but no NeMo .nemo: asking for NeMo fails."""
    flac, _ = longform
    wm = data_root / "configs" / "voice" / "weights-manifest.example.json"
    with pytest.raises(LaneError) as ei:
        run_prepare(flac, data={"asr_engine": "nemo"}, weights_manifest=str(wm))
    assert ei.value.code == "asr_unavailable"
    assert ".nemo" in ei.value.detail


def test_longform_without_transcript_uses_pocketsphinx(audio_dir, run_prepare):
    """No transcript: texts come from the ASR engine, and the result says which engine it was."""
    wav = speak(" ".join(SENTENCES[:4]), audio_dir / "asr_only.wav", rate_wpm=150)
    res, _ = run_prepare(wav, data={"min_total_s": 1, "cps_min": 0.1, "cps_max": 100})
    assert res.asr_engine == "pocketsphinx"
    kept = [c for c in res.clips if c["kept"]]
    assert kept and all(c["text"] == c["asr_text"] and c["alignment_confidence"] is None for c in kept)
