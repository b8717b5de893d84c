"""Intelligibility scores on text: CER and WER on normalised words."""

from __future__ import annotations

import re

_KEEP = re.compile(r"[^a-z' ]+")



def normalize_words(text: str) -> str:
    """Lower-case words for scoring: the lane's text normaliser when it is there (numbers spelled
    out), then everything but letters and apostrophes dropped."""
    try:
        from ..data import normalize_text

        text = normalize_text(text)
    except Exception:
        pass
    return " ".join(_KEEP.sub(" ", text.lower()).split())


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate (edit distance / reference length) on normalised text."""
    import editdistance

    r, h = normalize_words(reference), normalize_words(hypothesis)
    if not r:
        return 0.0 if not h else 1.0
    return editdistance.eval(r, h) / len(r)


def wer(reference: str, hypothesis: str) -> float:
    import editdistance

    r, h = normalize_words(reference).split(), normalize_words(hypothesis).split()
    if not r:
        return 0.0 if not h else 1.0
    return editdistance.eval(r, h) / len(r)
