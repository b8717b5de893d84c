"""Thresholds that turn metrics into checks: `eval.thresholds` of a profile, in order."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

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
    **{k: "asr" for k in ("cer_ratio", "wer_ratio", "cer_synth", "cer_ref", "wer_synth", "wer_ref", "cer_sentences",
                          "cer_synth_jsgf", "cer_ref_jsgf", "cer_ratio_jsgf")},
    **{k: "speaker_encoder" for k in ("spk_sim", "spk_margin", "spk_sim_ref", "spk_sim_impostor")},
    **{f"{p}_{k}": "mos_estimator" for p in ("dnsmos", "utmos") for k in ("ratio", "ovrl", "ref", "synth_heldout")},
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


# what computes the metrics that need no weights
METRIC_TOOLS = {
    "sanity_failures": "lane.metrics.sanity", "nemo_onnx_mcd": "mel-cepstral-distance (NeMo vs ONNX)",
    "mcd_db": "mel-cepstral-distance (DTW)", "f0_corr": "pyworld harvest (DTW-aligned)",
    "f0_rmse_hz": "pyworld harvest (DTW-aligned)", "vuv_error": "pyworld harvest (DTW-aligned)",
    "duration_ratio": "lane.metrics (trimmed speech)", "rtf_cpu": "wall clock (onnxruntime)",
}


# Which evaluator produced a metric: {role, class, id, sha256} of a weights-manifest evaluator, or
# {tool} for a metric computed without weights (`class` is a keyword, hence the functional form).
MetricSource = TypedDict("MetricSource", {"role": str | None, "class": str | None, "id": str | None,
                                           "sha256": str | None, "tool": str},
                         total=False)


def metric_evaluators(metrics: list[str], identities: Mapping[str, Mapping[str, Any]]) -> dict[str, MetricSource]:
    """Which evaluator produced each metric (MetricSource)."""
    out: dict[str, MetricSource] = {}
    for m in metrics:
        role = METRIC_EVALUATOR.get(m)
        ident = identities.get(role) if role else None
        if ident is not None:
            out[m] = MetricSource({"role": ident.get("role"), "class": ident.get("class"), "id": ident.get("id"),
                                   "sha256": ident.get("sha256")})
        elif m in METRIC_TOOLS:
            out[m] = MetricSource(tool=METRIC_TOOLS[m])
    return out


def evaluator_label(entry: Mapping[str, Any] | None) -> str:
    """`class (manifest id, sha256 prefix)` or the tool's name; "—" when unknown."""
    if not entry:
        return "—"
    if entry.get("tool"):
        return str(entry["tool"])
    sha = str(entry.get("sha256") or "").split(",")[0][:12]
    ident = ", ".join(x for x in (str(entry.get("id") or ""), f"sha256 {sha}" if sha else "") if x)
    return f"{entry.get('class') or '?'} ({ident})" if ident else str(entry.get("class") or "?")
