"""The numbers a spoken consent is judged by, in one place, and where each comes from.

They are code, not configuration: a workspace that could loosen them could accept any voice. Each
is measured by bench/bench_consent.py over the synthetic voices of scripts/consent_voices.py
(results: bench/results/consent_cpu.json), whose false-accept rate on different-speaker pairs must
stay at or below 1 % and whose false-reject rate on same-speaker pairs at or below 5 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Thresholds:
    # the statement (lane.consent.speech)
    words: int = 4                  # one-time words per challenge
    words_min_heard: int = 2        # of them heard, in order (see lane.consent.speech for why not all)
    cer_max: float = 0.6            # character error rate of the heard statement
    # the voice (lane.consent.voice): both must hold
    similarity_min: float = 0.85    # cosine similarity, consent vs the covered recordings (GE2E)
    snorm_min: float = 1.0          # that similarity S-normalised against the cohort (top-k)
    cohort_top_k: int = 20          # adaptive S-norm: the k cohort voices nearest each side
    # freshness (lane.consent.fresh)
    copy_ncc_min: float = 0.9       # a window this correlated with a recording is copied audio
    copy_fraction_max: float = 0.3  # more than this share of windows copied: a training clip, not a consent
    # the challenge (lane.consent.challenge)
    valid_hours_default: float = 24.0
    valid_hours_max: float = 24.0 * 7

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


THRESHOLDS = Thresholds()
