"""One reading of `--audio` (lane.core.inputs.AudioInput) for every stage: a comma-separated list of
recordings is accepted by the verify stage's early audio check exactly as by the data stage, and the
paired transcript and consent candidates come from the same parse."""

from __future__ import annotations

from pathlib import Path

import pytest

from lane.consent.record import recordings_of
from lane.core.inputs import AudioInput, find_record, input_paths
from lane.core.reasons import LaneError
from lane.data.espeak import speak
from lane.data.inputs import detect_format, longform_files
from lane.data.probe import inspect_audio


@pytest.fixture(scope="module")
def two_wavs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("two")
    (root / "rec").mkdir()
    speak("The first recording of the list.", root / "rec" / "a.wav")
    speak("And here is the second one.", root / "rec" / "b.wav")
    return root


def test_a_comma_list_is_one_input_in_every_stage(two_wavs: Path) -> None:
    audio = "rec/a.wav, rec/b.wav"
    given = AudioInput.parse(audio, two_wavs)
    assert given.paths == (two_wavs / "rec" / "a.wav", two_wavs / "rec" / "b.wav")
    # the data stage
    assert detect_format(audio, None, two_wavs) == "longform"
    assert longform_files(audio, two_wavs) == list(given.paths)
    # the verify stage's early audio check (it raised missing_audio_path on the list)
    inv = inspect_audio(audio, two_wavs)
    assert inv.kind == "files"
    assert [Path(f.path) for f in inv.files] == list(given.paths)
    assert all(f.duration_s > 0.5 and f.sample_rate == 22050 for f in inv.files)
    assert inspect_audio(audio, two_wavs, max_files=1).summary()["audio_files"] == 1
    # the consent gate's recordings
    assert recordings_of(audio, two_wavs) == list(given.paths)


def test_a_missing_part_of_the_list_is_named(two_wavs: Path) -> None:
    with pytest.raises(LaneError) as err:
        inspect_audio("rec/a.wav,rec/nope.wav", two_wavs)
    assert err.value.code == "missing_audio_path" and "rec/nope.wav" in err.value.detail
    with pytest.raises(LaneError) as err:
        AudioInput.parse(" , ", two_wavs)
    assert err.value.code == "missing_audio_path"


def test_paired_transcript_and_consent_come_from_the_same_parse(two_wavs: Path) -> None:
    (two_wavs / "rec" / "a.txt").write_text("The first recording of the list.\n", encoding="utf-8")
    consent = two_wavs / "rec" / "a.consent.json"
    consent.write_text("{}", encoding="utf-8")
    try:
        single = AudioInput.parse("rec/a.wav", two_wavs)
        assert single.paired_transcript() == two_wavs / "rec" / "a.txt"
        assert AudioInput.parse("rec/a.wav,rec/b.wav", two_wavs).paired_transcript() is None
        assert single.consent_candidates()[0] == consent
        assert find_record("rec/a.wav,rec/b.wav", None, two_wavs) == consent
        roles = [role for role, _ in input_paths(two_wavs, audio="rec/a.wav")]
        assert roles == ["audio", "transcript", "consent"]
        assert [role for role, _ in input_paths(two_wavs, audio="rec/a.wav,rec/b.wav")] == \
            ["audio", "audio", "consent"]
    finally:
        (two_wavs / "rec" / "a.txt").unlink()
        consent.unlink()
