"""Text normalisation to the training tokenizer's vocabulary (NeMo EnglishCharsTokenizer).

The tokenizer accepts lowercase a-z, space, and ``' , . ! ? - : ; / " ( ) [ ] { }``. The words come
from `lane.text.normalize` (the one normaliser shared by training data, validate and serving: numbers,
money, dates, times, abbreviations and symbols spelled out, unicode punctuation folded, accents
stripped). Anything it cannot map is left in place, so `out_of_vocabulary(text)` names it and the clip
is rejected with ``text_out_of_vocabulary``. No nemo_text_processing.
"""

from __future__ import annotations

import re

from ..text.normalize import NORMALIZER_ID, cardinal, normalize

VOCAB = frozenset(" abcdefghijklmnopqrstuvwxyz'" + ',.!?-:;/"()[]{}')

__all__ = ["NORMALIZER_ID", "VOCAB", "normalize_text", "number_to_words", "out_of_vocabulary", "words"]


def number_to_words(n: int) -> str:
    """Spell an integer in English words (``1984`` -> ``one thousand nine hundred eighty-four``)."""
    return cardinal(n)


def normalize_text(text: str) -> str:
    """Normalise `text` for the EnglishCharsTokenizer: lowercase, unicode punctuation folded, accents
    stripped, numbers, money, dates, times, abbreviations and symbols spelled out, whitespace collapsed
    (`lane.text.normalize.normalize`). Characters that cannot be mapped are kept, so
    `out_of_vocabulary()` can reject the clip instead of silently dropping words."""
    return normalize(text)


def out_of_vocabulary(text: str) -> list[str]:
    """Characters of (normalised) `text` the tokenizer cannot represent, in order of appearance."""
    seen: list[str] = []
    for c in text:
        if c not in VOCAB and c not in seen:
            seen.append(c)
    return seen


def words(text: str) -> list[str]:
    """Lowercase word tokens (letters and apostrophes) for alignment and speaking-rate checks."""
    return re.findall(r"[a-z']+", normalize_text(text))
