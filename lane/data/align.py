"""Align a transcript to segmented audio: ASR word hypotheses are anchors, and a word-level
edit-distance alignment (global, Levenshtein) maps every transcript word to a segment.

Each segment's confidence is the number of its hypothesis words that align to an identical
transcript word, divided by the larger of its hypothesis and transcript word counts.
The DP runs row by row in numpy (the insertion chain is a running minimum), so 5,000 x 5,000 words
takes well under a second and 25 MB of back-pointers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .text import words as text_words

_MATCH, _SUB, _DEL, _INS = 0, 1, 2, 3  # DEL: hyp word without ref; INS: ref word without hyp


def edit_alignment(hyp: list[str], ref: list[str]) -> list[tuple[int | None, int | None]]:
    """Minimal-edit alignment as (hyp_index | None, ref_index | None) pairs, in order."""
    n, m = len(hyp), len(ref)
    if n == 0 or m == 0:
        return [(i, None) for i in range(n)] + [(None, j) for j in range(m)]
    vocab: dict[str, int] = {}
    h = np.array([vocab.setdefault(w, len(vocab)) for w in hyp])
    r = np.array([vocab.setdefault(w, len(vocab)) for w in ref])
    back = np.zeros((n + 1, m + 1), np.int8)
    back[0, 1:] = _INS
    back[1:, 0] = _DEL
    prev = np.arange(m + 1, dtype=np.int64)
    idx = np.arange(m + 1, dtype=np.int64)
    for i in range(1, n + 1):
        sub = prev[:-1] + (r != h[i - 1])
        dele = prev[1:] + 1
        row = np.empty(m + 1, np.int64)
        row[0] = i
        best = np.minimum(sub, dele)
        row[1:] = best
        # insertion chain: row[j] = min_k<=j row[k] + (j - k)
        chained = np.minimum.accumulate(row - idx) + idx
        ptr = np.where(sub <= dele, np.where(r == h[i - 1], _MATCH, _SUB), _DEL).astype(np.int8)
        ins = chained[1:] < row[1:]
        ptr[ins] = _INS
        back[i, 1:] = ptr
        row = chained
        prev = row
    out: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        p = back[i, j]
        if p in (_MATCH, _SUB):
            out.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif p == _DEL:
            out.append((i - 1, None))
            i -= 1
        else:
            out.append((None, j - 1))
            j -= 1
    out.reverse()
    return out


@dataclass
class SegmentText:
    text: str          # transcript text (original spelling and punctuation) assigned to the segment
    confidence: float  # 0..1
    n_hyp: int
    n_ref: int
    n_match: int


_TOKEN = re.compile(r"\S+")
_ENDS = re.compile(r"[.!?;:]['\")\]]*$")


def align_transcript(transcript: str, hyps: list[list[str]]) -> list[SegmentText]:
    """Assign transcript words to segments given each segment's ASR words (in recording order)."""
    tokens = _TOKEN.findall(transcript)
    keys: list[str] = []
    tok_of_key: list[int] = []
    for ti, tok in enumerate(tokens):
        for w in text_words(tok):
            keys.append(w)
            tok_of_key.append(ti)
    flat: list[str] = []
    seg_of_hyp: list[int] = []
    for s, ws in enumerate(hyps):
        flat.extend(ws)
        seg_of_hyp.extend([s] * len(ws))
    pairs = edit_alignment(flat, keys)
    seg_of_key: list[int | None] = [None] * len(keys)
    match = [0] * len(hyps)
    heard = [False] * len(keys)  # a content word of the transcript matched an identical ASR word
    for hi, rj in pairs:
        if hi is not None and rj is not None:
            seg_of_key[rj] = seg_of_hyp[hi]
            if flat[hi] == keys[rj]:
                match[seg_of_hyp[hi]] += 1
                heard[rj] = len(keys[rj]) >= 4  # content words only: "the", "a", "of" are heard everywhere
    # unaligned transcript words: join the previous segment unless a sentence ends in the gap
    last: int | None = None
    j = 0
    while j < len(keys):
        if seg_of_key[j] is not None:
            last = seg_of_key[j]
            j += 1
            continue
        k = j
        while k < len(keys) and seg_of_key[k] is None:
            k += 1
        nxt = seg_of_key[k] if k < len(keys) else None
        split = k
        if j > 0 and _ENDS.search(tokens[tok_of_key[j - 1]]):
            split = j
        for q in range(j, k if split == k else j):
            if _ENDS.search(tokens[tok_of_key[q]]):
                split = q + 1
                break
        for q in range(j, k):
            target = last if (q < split or nxt is None) else nxt
            seg_of_key[q] = target if target is not None else nxt
        j = k
    _snap_to_sentences(seg_of_key, tokens, tok_of_key, len(hyps), heard)
    seg_tokens: list[list[int]] = [[] for _ in hyps]
    for q, sk in enumerate(seg_of_key):
        if sk is not None and (not seg_tokens[sk] or seg_tokens[sk][-1] != tok_of_key[q]):
            seg_tokens[sk].append(tok_of_key[q])
    out: list[SegmentText] = []
    for s, ws in enumerate(hyps):
        ref_n = sum(1 for q in seg_of_key if q == s)
        denom = max(len(ws), ref_n)
        out.append(SegmentText(" ".join(tokens[t] for t in seg_tokens[s]), match[s] / denom if denom else 0.0,
                               len(ws), ref_n, match[s]))
    return out


def _snap_to_sentences(seg_of_key: list[int | None], tokens: list[str], tok_of_key: list[int], n_segs: int,
                       heard: list[bool], reach: int = 6) -> None:
    """Move a boundary between two segments to a sentence end at most `reach` words away, when no
    content word moved was heard (matched by the ASR) in the segment it leaves.

    Segments are cut at pauses, and in read speech the pauses that end clips are mostly sentence
    ends; misrecognised words next to a boundary often land on the wrong side of it."""
    keys_of: list[list[int]] = [[] for _ in range(n_segs)]
    for q, sk in enumerate(seg_of_key):
        if sk is not None:
            keys_of[sk].append(q)

    def ends_sentence(q: int) -> bool:
        last_of_token = q + 1 >= len(tok_of_key) or tok_of_key[q + 1] != tok_of_key[q]
        return last_of_token and bool(_ENDS.search(tokens[tok_of_key[q]]))

    for s in range(n_segs - 1):
        a, b = keys_of[s], keys_of[s + 1]
        if not a or not b or ends_sentence(a[-1]):
            continue
        back = next((i for i in range(len(a) - 2, max(len(a) - 2 - reach, -1), -1) if ends_sentence(a[i])), None)
        if back is not None and not any(heard[q] for q in a[back + 1:]):
            # "... blue. A cold" | "wind blew ...": move "A cold" forward
            moved, keys_of[s] = a[back + 1:], a[: back + 1]
            keys_of[s + 1] = moved + b
            for q in moved:
                seg_of_key[q] = s + 1
            continue
        fwd = next((i for i in range(min(reach, len(b) - 1)) if ends_sentence(b[i])), None)
        if fwd is not None and not any(heard[q] for q in b[: fwd + 1]):
            # "... the old" | "days. We shared ...": move "days." back
            moved, keys_of[s + 1] = b[: fwd + 1], b[fwd + 1:]
            keys_of[s] = a + moved
            for q in moved:
                seg_of_key[q] = s
