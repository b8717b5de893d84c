"""Thresholds that turn metrics into checks: `eval.thresholds` of a profile, in order."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.reasons import LaneError


@dataclass(frozen=True)
class Threshold:
    metric: str
    min: float | None = None
    max: float | None = None
    optional: bool = False
    evaluator: str | None = None  # role whose absence makes the check "not evaluated"

    def judge(self, value: float | None) -> bool | None:
        """True/False against the bounds; None when there is no value (not evaluated)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if self.min is not None and value < self.min:
            return False
        return not (self.max is not None and value > self.max)

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            return f"[{self.min:g}, {self.max:g}]"
        if self.min is not None:
            return f">= {self.min:g}"
        if self.max is not None:
            return f"<= {self.max:g}"
        return "recorded"



# metric -> evaluator role needed to compute it
METRIC_EVALUATOR = {
    "cer_ratio": "asr", "wer_ratio": "asr", "cer_synth": "asr",
    "spk_sim": "speaker_encoder", "spk_margin": "speaker_encoder",
    "dnsmos_ratio": "mos_estimator", "dnsmos_ovrl": "mos_estimator",
}



def load_thresholds(eval_cfg: Mapping[str, Any]) -> list[Threshold]:
    """`eval.thresholds` (an ordered mapping metric -> {min, max, optional}) as Thresholds, in order.
    The order is the order of the checks, so it decides which failure is `first_fail`."""
    raw = eval_cfg.get("thresholds") or {}
    if not isinstance(raw, Mapping):
        raise LaneError("config_invalid", "eval.thresholds must be a mapping metric -> {min, max, optional}")
    out = []
    for metric, spec in raw.items():
        spec = spec or {}
        if not isinstance(spec, Mapping) or set(spec) - {"min", "max", "optional"}:
            raise LaneError("config_invalid", f"eval.thresholds.{metric}: use keys min, max, optional")
        try:
            lo = None if spec.get("min") is None else float(spec["min"])
            hi = None if spec.get("max") is None else float(spec["max"])
        except (TypeError, ValueError):
            raise LaneError("config_invalid", f"eval.thresholds.{metric}: min/max must be numbers") from None
        out.append(Threshold(str(metric), lo, hi, bool(spec.get("optional", False)), METRIC_EVALUATOR.get(str(metric))))
    return out
