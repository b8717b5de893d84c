"""Fixtures for the validate tests: espeak-ng speech made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "She sells sea shells by the sea shore on a sunny afternoon.",
    "Is it going to rain tomorrow morning?",
]


@pytest.fixture(scope="session")
def espeak_clips(tmp_path_factory) -> dict[str, list[Path]]:
    """The same sentences in three espeak-ng voices: 'us' (the speaker), 'us_slow' (same voice, other
    rate), 'other' (espeak's female variant en-us+f3: a different voice, the impostor). Male espeak
    voices (en-gb-scotland, en-029) sound too alike to resemblyzer to serve as an impostor (cosine ~0.9)."""
    from lane.data.espeak import speak

    d = tmp_path_factory.mktemp("espeak")
    out: dict[str, list[Path]] = {"us": [], "us_slow": [], "other": []}
    for i, text in enumerate(SENTENCES):
        out["us"].append(speak(text, d / f"us{i}.wav", voice="en-us"))
        out["us_slow"].append(speak(text, d / f"us_slow{i}.wav", voice="en-us", rate_wpm=130))
        out["other"].append(speak(text, d / f"other{i}.wav", voice="en-us+f3"))
    return out
