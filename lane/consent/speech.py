"""Did the recording say the statement? pocketsphinx hears it; the words are checked afterwards.

The decoder is never told the statement. Its language model is a flat unigram over the *consent
vocabulary*: the words of the fixed sentence (who, which voice, what use), `non`, and every word of
the one-time pool (lane.consent.words.POOL, more than a hundred), each equally likely. The one-time
words of this challenge are four of those, so hearing them means picking them out of the whole pool
at every position: a recording of another text, of another challenge's words, or of the fixed
sentence alone comes out with other pool words. (A grammar built from the statement would instead
force its words onto any audio.) The general en-us language model was measured too and does not
work on synthetic speech: on the demo speaker's voice it heard 5 % of the one-time words
(bench/bench_consent.py's `asr_full_lm` row), so a genuine consent would always be refused.

Accepted when at least `words_min_heard` of the one-time words are heard, in order; the use is heard
as issued (`non` before `commercial` for non-commercial, not for commercial); and the character error
rate of the whole heard text against the statement is at most `cer_max`. Not all four: on the demo
speaker's voice pocketsphinx hears about 7 in 10 one-time words, so requiring every one would refuse
most genuine readings (bench/bench_consent.py: the acceptance at each `words_min_heard`). Two of four,
in order, from a pool of more than ninety, still ties the recording to this challenge: a reading made
for another challenge shares two of its words, in that order, less than once in a hundred times, and
must then pass the CER bound and the voice check as well.
"""

from __future__ import annotations

import itertools
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from ..core.reasons import LaneError
from ..metrics.audio import ASR_SR, resample
from ..metrics.text import cer, normalize_words
from .challenge import Challenge
from .policy import THRESHOLDS, Thresholds
from .words import POOL, fixed_sentence


class SpeechRecord(TypedDict):
    """What a consent record keeps of the speech check (SpeechResult.as_dict)."""

    heard: str
    cer: float
    words_heard: list[str]
    words_missing: list[str]
    use_heard: bool
    engine: str


@dataclass
class SpeechResult:
    heard: str
    cer: float
    words_heard: list[str] = field(default_factory=list)
    words_missing: list[str] = field(default_factory=list)
    use_heard: bool = False
    engine: str = "pocketsphinx (consent vocabulary)"

    def problem(self, t: Thresholds = THRESHOLDS) -> str:
        """'' when the statement was said, else what is wrong (the detail of consent_statement_mismatch)."""
        if len(self.words_heard) < t.words_min_heard:
            return (f"one-time words not heard: {len(self.words_heard)} of {len(self.words_heard) + len(self.words_missing)} "
                    f"heard, at least {t.words_min_heard} needed; missing {', '.join(self.words_missing)} "
                    f"(heard: {self.heard!r})")
        if not self.use_heard:
            return f"the permitted use was not heard as issued (heard: {self.heard!r})"
        if self.cer > t.cer_max:
            return f"the heard text is too far from the statement: CER {self.cer:.2f} > {t.cer_max} (heard: {self.heard!r})"
        return ""

    def as_dict(self) -> SpeechRecord:
        return SpeechRecord(heard=self.heard, cer=round(self.cer, 4), words_heard=list(self.words_heard),
                            words_missing=list(self.words_missing), use_heard=self.use_heard, engine=self.engine)


def vocabulary(challenge: Challenge, known: Any) -> list[str]:
    """The decoder's words: the fixed sentence's, the use words, and the whole one-time pool (those
    the dictionary knows: `known(word)` is true)."""
    fixed = normalize_words(fixed_sentence(challenge.speaker, challenge.voice_profile_id, challenge.use))
    words = [*fixed.split(), "my", "one", "time", "words", "are", "non", "commercial", *list(POOL)]
    return [w for w in dict.fromkeys(words) if known(w)]


def _dictionary(path: Path) -> set[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        return {line.split(maxsplit=1)[0].split("(", 1)[0] for line in f if line.strip()}


def _flat_lm(words: list[str], out: Path) -> Path:
    lp = math.log10(1.0 / (len(words) + 1))
    body = "".join(f"{lp:.4f} {w}\n" for w in words)
    out.write_text(f"\\data\\\nngram 1={len(words) + 2}\n\n\\1-grams:\n{lp:.4f} </s>\n-99 <s>\n{body}\n\\end\\\n",
                   encoding="ascii")
    return out


def hear(audio: np.ndarray, sr: int, challenge: Challenge, model_dir: Path | None = None) -> str:
    """What pocketsphinx hears in `audio` with the consent vocabulary (see the module's docstring)."""
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError as exc:
        raise LaneError("evaluator_unavailable", f"pocketsphinx cannot be imported: {exc}") from None
    d = Path(model_dir) if model_dir else Path(get_model_path("en-us"))
    if not (d / "en-us").is_dir() and (d.parent / "cmudict-en-us.dict").is_file():
        d = d.parent  # the manifest may name the acoustic model folder itself
    kw: dict[str, Any] = {"samprate": ASR_SR, "loglevel": "FATAL", "hmm": str(d / "en-us"),
                          "dict": str(d / "cmudict-en-us.dict")}
    with tempfile.TemporaryDirectory(prefix="lane-consent-lm-") as tmp:
        try:
            known = _dictionary(d / "cmudict-en-us.dict")
            words = vocabulary(challenge, known.__contains__)
            dec = Decoder(**kw, lm=str(_flat_lm(words, Path(tmp) / "consent.arpa")))
        except Exception as exc:
            raise LaneError("evaluator_unavailable", f"pocketsphinx could not load {d}: {exc}") from None
        x = np.nan_to_num(resample(audio, sr, ASR_SR))
        pad = np.zeros(ASR_SR * 3 // 10, np.float32)
        pcm = (np.clip(np.concatenate([pad, x, pad]), -1.0, 1.0) * 32767).astype("<i2").tobytes()
        dec.start_utt()
        dec.process_raw(pcm, full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
    return hyp.hypstr if hyp is not None else ""


def _in_order(needles: list[str], hay: list[str]) -> list[str]:
    """The needles found in `hay` in order (each after the previous one found)."""
    found, pos = [], 0
    for w in needles:
        if w in hay[pos:]:
            pos = hay.index(w, pos) + 1
            found.append(w)
    return found


def judge(heard: str, challenge: Challenge) -> SpeechResult:
    """The statement check on what was heard (pure: the bench and the tests call it too)."""
    words = normalize_words(heard).split()
    found = _in_order(list(challenge.words), words)
    non_before = any(a == "non" and b == "commercial" for a, b in itertools.pairwise(words))
    use_heard = non_before if challenge.use == "non-commercial" else ("commercial" in words and not non_before)
    return SpeechResult(heard, cer(challenge.text, heard), found, [w for w in challenge.words if w not in found],
                        use_heard)


def check_statement(audio: np.ndarray, sr: int, challenge: Challenge, model_dir: Path | None = None) -> SpeechResult:
    return judge(hear(audio, sr, challenge, model_dir), challenge)


def asr_model_dir(weights_manifest: str | os.PathLike[str] | None, root: str | os.PathLike[str]) -> Path | None:
    """The pocketsphinx model directory the weights manifest lists (role `asr`, licence checked);
    LaneError(evaluator_unavailable / evaluator_license_blocked) when there is none usable."""
    from ..metrics.evaluators import evaluator_status

    st = evaluator_status(weights_manifest, root, "asr")
    if not st.ok:
        raise LaneError(st.state if st.state != "ok" else "evaluator_unavailable", f"ASR for the consent check: {st.detail}")
    return next((p for p in st.paths if p.is_dir()), None)
