"""What the speaker reads: one fixed sentence in plain words, then a few one-time words.

    I, Jane Doe, agree that voice lane may make a synthetic voice named acme reader from my
    recordings, for commercial use. My one-time words are: tiger, october, basket, piano.

The one-time words are drawn at random (`secrets`) from `POOL`: everyday words that pocketsphinx's
en-us dictionary knows, with no two that sound alike and none that sounds like a word of the fixed
sentence (no four/forty beside "for"). It was narrowed from 125 candidates by how often pocketsphinx
heard each one in statements read by eight synthetic voices (espeak-ng en-us, en-us+m3, en-us+f2,
en-gb, en-gb-scotland+m1; flite awb, rms; Festival kal): every word missed by a US-English-like
voice was dropped (kitten/kitchen, paper/pepper, thirty/thursday, seven, eleven ...). The British
voices are heard far worse whatever the word (about 1 in 2): pocketsphinx's model is US English.
bench/bench_consent.py measures the pool as shipped.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence

_POOL_TEXT = """
apple banana lemon cherry carrot butter coffee sugar pepper pizza cookie sandwich orange
river mountain garden forest island ocean desert valley village
candle telephone basket pillow mirror ladder bucket bottle pencil umbrella jacket
horse tiger rabbit chicken turkey dolphin eagle lion zebra puppy elephant
sailor pilot farmer teacher guitar piano
summer winter autumn market office hotel hospital station airport library museum theatre
football baseball tennis hockey rocket engine wagon bicycle tractor radio computer helicopter
monday tuesday wednesday friday saturday sunday
january february june july august september october november december
twelve hundred silver golden
"""
POOL: tuple[str, ...] = tuple(_POOL_TEXT.split())

USES = {"commercial": "commercial", "non-commercial": "non commercial"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z .'-]{0,79}$")


def spoken_voice(voice_profile_id: str) -> str:
    """How a voice id is read out: `acme_reader-2` -> `acme reader 2`."""
    return " ".join(re.split(r"[_\-.]+", voice_profile_id)).strip()


def check_speaker_name(name: str) -> str:
    """The speaker's name as it goes into the statement: letters, spaces, . ' - (ValueError otherwise)."""
    name = " ".join(name.split())
    if not _NAME.match(name):
        raise ValueError(f"speaker name {name!r}: use letters, spaces and . ' - only (at most 80 characters)")
    return name


def fixed_sentence(speaker: str, voice_profile_id: str, use: str) -> str:
    if use not in USES:
        raise ValueError(f"use must be one of {sorted(USES)}, not {use!r}")
    return (f"I, {speaker}, agree that voice lane may make a synthetic voice named {spoken_voice(voice_profile_id)} "
            f"from my recordings, for {USES[use]} use.")


def statement(speaker: str, voice_profile_id: str, use: str, words: Sequence[str]) -> str:
    return f"{fixed_sentence(speaker, voice_profile_id, use)} My one-time words are: {', '.join(words)}."


def draw_words(n: int) -> list[str]:
    """`n` distinct one-time words, drawn with a cryptographic random source."""
    pool = list(POOL)
    out: list[str] = []
    for _ in range(n):
        out.append(pool.pop(secrets.randbelow(len(pool))))
    return out
