"""The one place that decides GO or NO-GO, and what follows from it.

A run is GO if and only if every rule below holds, each from evidence in the run directory and the
workspace, re-verified now (nothing is taken on trust from an earlier rendering):

==================  ================================================================  ======================
rule                holds when                                                        otherwise
==================  ================================================================  ======================
run_completed       the run ended `completed`                                          its own reason
stages_complete     every stage the lane declares (validate is required) passed in     stages_incomplete
                    this run, or was skipped unchanged with its evidence re-verified
promotable          lane and profile promotable, not from scratch, and the train       lane_not_promotable,
                    stage and the bundle say the models are promotable                 experimental_lane
licences            verify: weights manifest ok, code and weights licences allowed     weights_*, *_blocked
consent             a spoken consent (signed, in the ledger) of the recordings' voice  consent_missing,
                    covers them and permits commercial use                            consent_speaker_mismatch
quality_evaluated   every metric with a lane floor was measured (no evaluator          not_evaluated
                    missing, none made optional)
quality_passed      validate's gated metrics are all within their thresholds          gate_failed
thresholds_floor    the profile's thresholds are at least as strict as FLOORS          thresholds_below_floor
bundle              the candidate bundle was validated at export and its hashes        bundle_invalid
                    verify now
evidence            the ledger verifies (chain, signatures, certificates, head, runs)  ledger_broken
                    and every stage's artifacts still have their certified hashes
protocol_lines      PROGRESS, STATS and ARTIFACT lines were emitted                    not_evaluated
train_status        train_status and its run copy exist                               not_evaluated
==================  ================================================================  ======================

On a profile that is not promotable, consent, quality_evaluated and thresholds_floor do not apply
(shown as n/a): the run is NO-GO for the one reason that it is not promotable, and its metrics are
advisory. Then: `seal` writes the signed provenance into the candidate bundle, `promote` makes a GO
candidate the live voice (a ledger entry), `rollback` restores the previous live voice.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .core.fsutil import read_json
from .core.reasons import REASONS, LaneError

State = Literal["ok", "failed", "missing", "n/a"]
Bound = tuple[float | None, float | None]

# The loosest threshold a promotable profile may set, per metric (min, max). A promotable profile must
# gate every one of these at least this strictly; cer_synth is the absolute intelligibility ceiling
# besides the ratio to the real recordings, so a weak ASR cannot wave an unintelligible voice through.
# The metrics an evaluator produces have floors of that evaluator (EVALUATOR_FLOORS, by the class the
# validate stage recorded): a number from pocketsphinx is not one from Whisper.
#   pocketsphinx (free decoding, general en-us LM): CER 0.5 absolute, 1.5x the recordings'. Its CER on
#     clean read speech is 0.1-0.3 (espeak speech 0.3-0.6), so 0.5 is "mostly understood".
#   nemo_asr, whisper, faster_whisper (Parakeet/Canary/Whisper-large class): CER 0.10 absolute. They get
#     0.01-0.03 on clean read speech (WER 2-4 %); TTS papers report WER 1-3 % for good voices, so a voice
#     at CER 0.10 (WER ~0.2) is plainly impaired. Ratio 2.0, not 1.5: the recordings' CER is so low that
#     one misheard word per sentence doubles it (the absolute ceiling carries the gate).
#   ge2e (resemblyzer): cosine 0.75, margin over an impostor 0.05 (same-speaker 0.8-0.95, different
#     speakers of one sex 0.6-0.8: GE2E's scale is compressed).
#   titanet: cosine 0.6, margin 0.15. TitaNet spreads speakers apart (different speakers 0.0-0.4,
#     verification thresholds 0.5-0.7 on VoxCeleb), so 0.6 is "TitaNet accepts it as the speaker".
#   dnsmos, utmos: naturalness at least 0.85 of the recordings' on the same estimator.
EVALUATOR_FLOORS: dict[str, dict[str, Bound]] = {
    "pocketsphinx": {"cer_synth": (None, 0.5), "cer_ratio": (None, 1.5)},
    **{c: {"cer_synth": (None, 0.1), "cer_ratio": (None, 2.0)} for c in ("nemo_asr", "whisper", "faster_whisper")},
    "ge2e": {"spk_sim": (0.75, None), "spk_margin": (0.05, None)},
    "titanet": {"spk_sim": (0.6, None), "spk_margin": (0.15, None)},
    "dnsmos": {"dnsmos_ratio": (0.85, None)},
    "utmos": {"utmos_ratio": (0.85, None)},
}
DEFAULT_EVALUATORS = {"asr": "pocketsphinx", "speaker_encoder": "ge2e", "mos_estimator": "dnsmos"}


def floors_for(classes: dict[str, Any] | None = None) -> dict[str, Bound]:
    """The floors for a run whose evaluators were of these classes (role -> class; missing: the defaults)."""
    c = {**DEFAULT_EVALUATORS, **{k: v for k, v in (classes or {}).items() if v in EVALUATOR_FLOORS}}
    return {"sanity_failures": (None, 0.0), "nemo_onnx_mcd": (None, 1.0), **EVALUATOR_FLOORS[c["asr"]],
            **EVALUATOR_FLOORS[c["speaker_encoder"]], "mcd_db": (None, 8.0), "f0_corr": (0.5, None),
            "vuv_error": (None, 0.2), "duration_ratio": (0.8, 1.25), **EVALUATOR_FLOORS[c["mos_estimator"]]}


FLOORS: dict[str, Bound] = floors_for()  # with the default evaluators (pocketsphinx, GE2E, DNSMOS)
METRIC_LABELS = {
    "sanity_failures": "clips failing sanity (NaN, silence, clipping, pauses, length)",
    "nemo_onnx_mcd": "NeMo vs ONNX agreement (MCD, dB)",
    "cer_synth": "character error rate of the synthesized speech",
    "cer_ratio": "CER ratio: synthesized / the speaker's own recordings",
    "spk_sim": "speaker similarity to the speaker",
    "spk_margin": "speaker similarity margin over an impostor",
    "mcd_db": "mel-cepstral distance to the recording (dB)",
    "f0_corr": "pitch contour correlation",
    "vuv_error": "voiced/unvoiced disagreement",
    "duration_ratio": "duration / the recording's",
    "dnsmos_ratio": "DNSMOS naturalness / the recordings'",
    "utmos_ratio": "UTMOS naturalness / the recordings'",
    "rtf_cpu": "real-time factor on CPU (ONNX)",
}


# ------------------------------------------------------------------------------------------ evidence
@dataclass
class Evidence:
    """What the rules read: the run directory, re-verified now."""

    root: Path
    run_id: str
    run_dir: Path
    settings: dict[str, Any]
    meta: dict[str, Any]
    status: dict[str, Any]
    records: dict[str, Any]
    results: dict[str, dict[str, Any] | None]
    gates: dict[str, dict[str, Any]]
    profile: dict[str, Any] = field(default_factory=dict)
    profile_problem: str = ""
    lane_stages: tuple[str, ...] = ()
    lane_promotable: bool = False
    lane_status: str = ""
    ledger_ok: bool = False
    ledger_problem: str = ""
    bundle_dir: Path | None = None
    bundle_problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    evaluators: dict[str, Any] = field(default_factory=dict)  # validate's evaluators by role (class, id, sha256)

    @property
    def floors(self) -> dict[str, Bound]:
        return floors_for({r: (e or {}).get("class") for r, e in self.evaluators.items() if isinstance(e, dict)})

    def check(self, stage: str, check_id: str) -> dict[str, Any] | None:
        for c in (self.results.get(stage) or {}).get("checks") or []:
            if c.get("id") == check_id:
                return dict(c)
        return None

    def stat(self, stage: str, key: str) -> Any:
        return ((self.results.get(stage) or {}).get("stats") or {}).get(key)

    @property
    def profile_promotable(self) -> bool:
        return bool(self.profile.get("promotable", False)) and not self.settings.get("allow_from_scratch")


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _stage_evidence(root: Path, run_dir: Path, names: list[str],
                    records: dict[str, Any]) -> tuple[dict[str, dict[str, Any] | None], dict[str, dict[str, Any]]]:
    """Each stage's result (only those this run's runner recorded) and its gate re-evaluated now."""
    from .core.gates import evaluate, later_hashes
    from .core.stage import result_path

    results: dict[str, dict[str, Any] | None] = {}
    for name in names:
        res = _read(result_path(run_dir, name))
        results[name] = res if isinstance(res, dict) and (not records or name in records) else None
    gates: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        res, rec = results[name], records.get(name) or {}
        later = later_hashes([r for r in (results[n] for n in names[i + 1:]) if r is not None])
        gate = evaluate(res, root, later).as_dict() if res is not None else None
        if gate is not None and rec.get("verdict") == "FAIL":
            gate["verdict"] = "FAIL"  # the runner failed it (e.g. the notebook raised after writing a result)
        if gate is not None and rec.get("certificate_hash"):
            gate["certificate_hash"] = rec["certificate_hash"]  # the certified outcome, as in the ledger
        if rec or res is not None:
            gates[name] = gate or {"verdict": rec.get("verdict", "FAIL"), "integrity_ok": False,
                                   "certificate_hash": rec.get("certificate_hash"), "first_fail": rec.get("first_fail")}
    return results, gates


def _config_evidence(ev: Evidence) -> None:
    from .core.config import load_profile
    from .core.lanes import load_lane

    try:
        ev.profile = load_profile(str(ev.settings.get("profile") or ""), ev.root)
    except LaneError as err:
        ev.profile_problem = f"{err.code}: {err.detail}"
    try:
        spec = load_lane(ev.root, str(ev.settings.get("lane") or ""))
        ev.lane_stages, ev.lane_promotable, ev.lane_status = spec.stages, spec.promotable, spec.status
    except LaneError:
        pass


def _bundle_evidence(ev: Evidence) -> None:
    from .bundle.check import validate_voice_bundle

    bundle = ev.status.get("bundle_path")
    if not bundle:
        return
    ev.bundle_dir = (ev.root / bundle).resolve()
    check = validate_voice_bundle(ev.bundle_dir, ev.root)
    ev.bundle_problems = check.problems
    ev.manifest = _read(ev.bundle_dir / "manifest.json") or {}
    validation = _read(ev.bundle_dir / "validation.json") or {}
    ev.metrics, ev.evaluators = validation.get("metrics") or {}, validation.get("evaluators") or {}


def gather(root: str | os.PathLike[str], run_id: str) -> Evidence:
    """Everything the rules need, read from runs/<run_id>/ and verified now."""
    from .core import ledger
    from .core.ids import id_path

    rootp = Path(root).resolve()
    run_dir = id_path(rootp, "runs", "run id", run_id)
    if not run_dir.is_dir():
        raise LaneError("run_not_found", f"runs/{run_id} does not exist under {rootp}")
    meta = _read(run_dir / "settings.json") or {}
    settings: dict[str, Any] = meta.get("settings") or {}
    status: dict[str, Any] = _read(run_dir / "train_status.json") or {}
    records = status.get("stages") or {}
    names = list(settings.get("stages") or status.get("stage_order") or [])
    names += [n for n in sorted(p.parent.name for p in run_dir.glob("*/result.json"))
              if n not in names and (not records or n in records)]
    results, gates = _stage_evidence(rootp, run_dir, names, records)
    ev = Evidence(rootp, run_id, run_dir, settings, meta, status, records, results, gates)
    _config_evidence(ev)
    verdict = ledger.verify(rootp)
    ev.ledger_ok, ev.ledger_problem = verdict.ok, verdict.problem or ""
    _bundle_evidence(ev)
    if not ev.metrics:
        summary = _read(run_dir / "validate" / "metrics.json") or {}
        ev.metrics, ev.evaluators = dict(summary.get("metrics") or {}), dict(summary.get("evaluators") or {})
    return ev


# ------------------------------------------------------------------------------------------ rules
@dataclass
class Item:
    id: str
    label: str
    state: State
    evidence: str
    reason: str = ""  # the reason code when the item fails
    why: str = ""  # the reason in plain words, for the reviewer

    @property
    def mark(self) -> str:
        return {"ok": "[x]", "n/a": "[-]"}.get(self.state, "[ ]")

    @property
    def blocks(self) -> bool:
        return self.state in ("failed", "missing")


def _ok(id_: str, label: str, evidence: str) -> Item:
    return Item(id_, label, "ok", evidence)


def _no(id_: str, label: str, evidence: str, reason: str, why: str, state: State = "failed") -> Item:
    return Item(id_, label, state, evidence, reason, why)


def rule_run_completed(ev: Evidence) -> Item:
    status, reason = ev.status.get("status") or "unknown", ev.status.get("reason") or "unknown"
    if status == "completed":
        return _ok("run_completed", "run completed", "status completed")
    meaning = REASONS[reason].meaning if reason in REASONS else ""
    return _no("run_completed", "run completed", f"status {status}, reason `{reason}`", reason,
               f"The run did not complete: it ended {status} with `{reason}`" + (f" ({meaning})." if meaning else "."),
               "failed" if status in ("blocked", "failed") else "missing")


def rule_stages_complete(ev: Evidence) -> Item:
    label = "every stage of the lane passed in this run"
    wanted = list(ev.lane_stages) or ["verify", "train", "export", "validate"]
    if "validate" not in wanted:
        return _no("stages_complete", label, f"lane stages {wanted}", "stages_incomplete",
                   "This lane has no validate stage, so no quality was measured: it can never be promoted.")
    bad = [s for s in wanted if ev.gates.get(s, {}).get("verdict") != "PASS"]
    if not bad:
        skipped = [s for s in wanted if (ev.records.get(s) or {}).get("skipped")]
        return _ok("stages_complete", label, f"{len(wanted)} of {len(wanted)} PASS"
                   + (f" ({', '.join(skipped)} skipped unchanged, evidence re-verified)" if skipped else ""))
    not_run = [s for s in bad if s not in ev.gates]
    return _no("stages_complete", label, "not PASS: " + ", ".join(s + (" (not run)" if s in not_run else "") for s in bad),
               "stages_incomplete", f"Not every stage passed in this run ({', '.join(bad)}): a verdict needs "
               "the whole lane, validate included.", "missing" if set(bad) == set(not_run) else "failed")


def rule_promotable(ev: Evidence) -> Item:
    label = "lane, profile and models promotable"
    profile = ev.settings.get("profile")
    if ev.lane_status == "experimental":
        return _no("promotable", label, "experimental lane", "experimental_lane",
                   "This lane is experimental: it is never a basis for release.")
    problems = []
    if not ev.lane_promotable:
        problems.append("the lane is not promotable")
    if not ev.profile.get("promotable", False):
        problems.append(f"the {profile} profile is not promotable")
    if ev.settings.get("allow_from_scratch"):
        problems.append("--allow-from-scratch was given")
    if ev.stat("train", "promotable") is False:
        why = ev.stat("train", "not_promotable_because")
        problems.append(f"the trained models are not promotable ({why})" if why else
                        "the train stage trained from scratch or vocodes with Griffin-Lim")
    if ev.manifest and not (ev.manifest.get("training") or {}).get("promotable", False):
        problems.append("the bundle says its models are not promotable")
    if ev.stat("train", "promotable") is None and "train" in ev.lane_stages:
        problems.append("the train stage recorded no promotability")
    if not problems:
        return _ok("promotable", label, f"lane {ev.settings.get('lane')}, profile {profile}, models from licensed bases")
    return _no("promotable", label, "; ".join(problems), "lane_not_promotable",
               f"{problems[0][0].upper()}{problems[0][1:]}" + (" (a demo voice is for trying the lane, never for release)."
                                                               if profile == "demo" else "."))


def rule_licences(ev: Evidence) -> Item:
    label = "weights manifest ok and every licence allows commercial use"
    for check_id in ("weights_manifest_ok", "weights_license_commercial"):
        c = ev.check("verify", check_id)
        if c is None or c.get("ok") is None:
            return _no("licences", label, f"verify check `{check_id}` not recorded", "not_evaluated",
                       "The weights and their licences were not checked in this run.", "missing")
        if not c.get("ok"):
            code = str(c.get("detail", "")).split(":", 1)[0]
            code = code if code in REASONS else "weights_license_blocked"
            return _no("licences", label, f"verify check `{check_id}`: {c.get('detail')}", code,
                       f"A weights entry failed its check: {c.get('detail')}.")
    c = ev.check("verify", "weights_license_commercial") or {}
    return _ok("licences", label, str(c.get("detail", "")))


def rule_consent(ev: Evidence) -> Item:
    label = "speaker consent covers the kept audio and permits commercial use"
    c, v = ev.check("verify", "consent"), ev.check("verify", "consent_voice")
    if not ev.profile_promotable:
        return Item("consent", label, "n/a", f"not required for a non-promotable profile ({(c or {}).get('detail', 'no check')})")
    if c is None:
        return _no("consent", label, "verify check `consent` not recorded", "consent_missing",
                   "No consent record was checked in this run.", "missing")
    record = next((a for a in (ev.results.get("verify") or {}).get("artifacts") or [] if a["kind"] == "consent_record"),
                  None)
    if not c.get("ok") or record is None or ev.stat("verify", "consent_kind") != "spoken":
        return _no("consent", label, str(c.get("detail")), "consent_missing",
                   f"The speaker's consent does not cover this voice: {c.get('detail')}.")
    if v is None or not v.get("ok"):
        detail = (v or {}).get("detail", "verify check `consent_voice` not recorded")
        return _no("consent", label, str(detail), "consent_speaker_mismatch",
                   f"The recordings were not checked against the consent voice, or are not its voice: {detail}.")
    from .consent.record import load as load_consent

    try:
        load_consent(ev.root / str(record["path"]), ev.root)  # its signature, verified again now
    except LaneError as err:
        return _no("consent", label, err.detail, err.code, f"The spoken consent no longer verifies: {err.detail}.")
    return _ok("consent", label, f"{c.get('detail')}; {v.get('detail')}; record {record['path']} sha256 "
                                 f"{record['sha256'][:16]}")


def _gated(ev: Evidence) -> dict[str, dict[str, Any]]:
    res = ev.results.get("validate") or {}
    return {str(c["id"]): c for c in res.get("checks") or [] if c.get("id") in ev.floors or "threshold" in c}


def rule_quality_evaluated(ev: Evidence) -> Item:
    label = "every quality metric with a floor was measured"
    if not ev.profile_promotable:
        return Item("quality_evaluated", label, "n/a", "advisory only: the profile is not promotable")
    if ev.results.get("validate") is None:
        return _no("quality_evaluated", label, "no validate result", "not_evaluated",
                   "The voice's quality was never measured in this run.", "missing")
    gated = _gated(ev)
    missing = [m for m in ev.floors if m not in gated or gated[m].get("ok") is None or gated[m].get("optional")]
    if missing:
        return _no("quality_evaluated", label, f"not measured, or optional: {', '.join(missing)}", "not_evaluated",
                   f"Some quality was not measured ({', '.join(missing)}): a missing evaluator is never a pass.")
    return _ok("quality_evaluated", label, f"{len(ev.floors)} metrics measured")


def rule_quality_passed(ev: Evidence) -> Item:
    label = "validate: every gated metric within its threshold"
    gate = ev.gates.get("validate")
    if gate is None:
        return _no("quality_passed", label, "validate did not run", "stages_incomplete",
                   "The voice's quality was never measured in this run.", "missing")
    failed = [c for c in _gated(ev).values() if c.get("ok") is False]
    if failed:
        f = failed[0]
        return _no("quality_passed", label, ", ".join(f"{c['id']}={c.get('value')}" for c in failed), "gate_failed",
                   f"The voice misses its quality bar: {METRIC_LABELS.get(f['id'], f['id'])} is {f.get('value')}, "
                   f"the threshold {f.get('threshold')}.")
    return _ok("quality_passed", label, f"validate {gate.get('verdict')}")


def _looser(bound: Bound, threshold: dict[str, Any] | None) -> bool:
    if threshold is None:
        return True
    lo, hi = bound
    tlo, thi = threshold.get("min"), threshold.get("max")
    return (lo is not None and (tlo is None or float(tlo) < lo)) or (hi is not None and (thi is None or float(thi) > hi))


def rule_thresholds_floor(ev: Evidence) -> Item:
    label = "the profile's thresholds are at least as strict as the lane's floors"
    if not ev.profile_promotable:
        return Item("thresholds_floor", label, "n/a", "floors apply to promotable profiles; metrics are advisory")
    th = (ev.profile.get("eval") or {}).get("thresholds") or {}
    floors = ev.floors
    loose = [m for m, bound in floors.items() if _looser(bound, th.get(m))]
    if loose:
        m = loose[0]
        return _no("thresholds_floor", label, f"looser than the floor or not gated: {', '.join(loose)}",
                   "thresholds_below_floor", f"The {ev.settings.get('profile')} profile sets {m} to {th.get(m)}, looser "
                   f"than the lane's floor {describe(floors[m])}: a promotable profile cannot lower the bar.")
    return _ok("thresholds_floor", label, f"{len(floors)} thresholds at or above their floors")


def rule_bundle(ev: Evidence) -> Item:
    label = "the candidate bundle was validated and its hashes verify"
    c = ev.check("export", "bundle_validated")
    if c is None or ev.bundle_dir is None:
        return _no("bundle", label, "no exported bundle in this run", "bundle_invalid",
                   "No voice bundle was exported in this run.", "missing")
    if not c.get("ok") or ev.bundle_problems:
        problem = ev.bundle_problems[0] if ev.bundle_problems else str(c.get("detail"))
        return _no("bundle", label, problem, "bundle_invalid", f"The bundle no longer matches what was validated: {problem}.")
    return _ok("bundle", label, f"{ev.bundle_dir.relative_to(ev.root).as_posix()}: schema, sha256 and sizes")


def rule_evidence(ev: Evidence) -> Item:
    label = "ledger, signatures, certificates and artifacts verify now"
    if not ev.ledger_ok:
        return _no("evidence", label, ev.ledger_problem, "ledger_broken",
                   f"The evidence was changed after the fact: {ev.ledger_problem}.")
    broken = [s for s, g in ev.gates.items() if g.get("integrity_ok") is False and g.get("verdict") == "PASS"]
    if broken:
        return _no("evidence", label, f"artifacts changed in {', '.join(broken)}", "ledger_broken",
                   f"Files the {broken[0]} stage certified have changed since.")
    return _ok("evidence", label, "ledger verified; every stage's artifacts re-hashed")


def rule_protocol_lines(ev: Evidence) -> Item:
    label = "PROGRESS/STATS/ARTIFACT present"
    counts = ev.status.get("line_counts")
    if not isinstance(counts, dict):
        return _no("protocol_lines", label, "no line counts recorded", "not_evaluated", "The run left no progress record.",
                   "missing")
    absent = [k for k in ("PROGRESS", "STATS", "ARTIFACT") if not counts.get(k)]
    text = ", ".join(f"{k}={counts.get(k, 0)}" for k in ("PROGRESS", "STATS", "ARTIFACT"))
    if absent:
        return _no("protocol_lines", label, f"{text} (none: {', '.join(absent)})", "not_evaluated",
                   f"The run emitted no {', '.join(absent)} lines.", "missing")
    return _ok("protocol_lines", label, text)


def rule_train_status(ev: Evidence) -> Item:
    label = "train_status present"
    lane = ev.settings.get("lane") or ev.status.get("lane") or ""
    ts = ev.root / "artifacts" / f"train_status.{lane}.json"
    copy = (ev.run_dir / "train_status.json").is_file()
    text = f"artifacts/train_status.{lane}.json: {'present' if ts.is_file() else 'missing'}; run copy: " \
           f"{'present' if copy else 'missing'}"
    if ts.is_file() and copy:
        return _ok("train_status", label, text)
    return _no("train_status", label, text, "not_evaluated", "The run's status file is missing.", "missing")


RULES: tuple[Callable[[Evidence], Item], ...] = (
    rule_run_completed, rule_stages_complete, rule_promotable, rule_licences, rule_consent, rule_quality_evaluated,
    rule_quality_passed, rule_thresholds_floor, rule_bundle, rule_evidence, rule_protocol_lines, rule_train_status)


def describe(bound: Bound | dict[str, Any] | None) -> str:
    if bound is None:
        return "recorded"
    lo, hi = (bound.get("min"), bound.get("max")) if isinstance(bound, dict) else bound
    if lo is not None and hi is not None:
        return f"[{float(lo):g}, {float(hi):g}]"
    if lo is not None:
        return f">= {float(lo):g}"
    return f"<= {float(hi):g}" if hi is not None else "recorded"


# ------------------------------------------------------------------------------------------ decision
@dataclass
class QualityRow:
    metric: str
    label: str
    value: float | None
    threshold: str  # the profile's gate, or "recorded"
    floor: str  # the lane's production bar
    result: str  # pass | FAIL | not evaluated | advisory (meets the production bar) | advisory (below ...)


@dataclass
class Decision:
    run_id: str
    go: bool
    items: list[Item]
    quality: list[QualityRow]

    @property
    def verdict(self) -> str:
        return "GO" if self.go else "NO-GO"

    @property
    def blocking(self) -> list[Item]:
        return [i for i in self.items if i.blocks]

    @property
    def reasons(self) -> list[str]:
        """The reasons for NO-GO in plain words, most fundamental first."""
        return [i.why or f"{i.label}: {i.evidence}" for i in self.blocking]

    @property
    def reason_codes(self) -> list[str]:
        return list(dict.fromkeys(i.reason for i in self.blocking if i.reason))

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "verdict": self.verdict, "reasons": self.reasons,
                "reason_codes": self.reason_codes,
                "items": [{"id": i.id, "state": i.state, "evidence": i.evidence, "reason": i.reason} for i in self.items]}


def _meets(value: float | None, bound: Bound) -> bool | None:
    if value is None:
        return None
    lo, hi = bound
    return not ((lo is not None and value < lo) or (hi is not None and value > hi))


def quality_table(ev: Evidence) -> list[QualityRow]:
    """Every metric with a floor or a gate: value, threshold, the production bar, and whether it passed,
    failed, was not evaluated, or is advisory (recorded, not gated)."""
    gated = _gated(ev)
    th = (ev.profile.get("eval") or {}).get("thresholds") or {}
    rows = []
    floors = ev.floors
    for m in [*floors, *[g for g in gated if g not in floors]]:
        c = gated.get(m)
        value = (c or {}).get("value", ev.metrics.get(m))
        value = float(value) if isinstance(value, int | float) else None
        floor = floors.get(m)
        if c is not None and c.get("ok") is not None:
            result = "pass" if c["ok"] else "FAIL"
        elif c is not None:
            result = "not evaluated"
        else:
            meets = _meets(value, floor) if floor else None
            result = "not evaluated" if value is None else \
                "advisory (meets the production bar)" if meets else "advisory (below the production bar)"
        rows.append(QualityRow(m, METRIC_LABELS.get(m, m), value, describe(th.get(m)) if c is not None else "recorded",
                               describe(floor) if floor else "—", result))
    return rows


def decide(root: str | os.PathLike[str], run_id: str, ev: Evidence | None = None) -> Decision:
    """GO or NO-GO for a run, from its evidence verified now."""
    ev = ev or gather(root, run_id)
    items = [rule(ev) for rule in RULES]
    return Decision(run_id, not any(i.blocks for i in items), items, quality_table(ev))


# ------------------------------------------------------------------------------------------ after the verdict
def predicate(ev: Evidence, decision: Decision) -> dict[str, Any]:
    """The provenance predicate: what made this bundle and what was concluded about it."""
    from .core.version import VERSION as __version__

    inputs = (_read(ev.run_dir / "verify" / "inputs.json") or _read(ev.run_dir / "inputs.json") or [])
    return {
        "builder": {"id": "voice-lane", "version": __version__},
        "run_id": ev.run_id, "lane": ev.settings.get("lane"), "profile": ev.settings.get("profile"),
        "voice_profile_id": ev.settings.get("voice_profile_id"), "commit": ev.meta.get("commit_sha"),
        "started_at": ev.meta.get("created_at"), "inputs": inputs,
        "base_weights": ev.manifest.get("base_weights") or [], "dataset": ev.manifest.get("dataset") or {},
        "consent": ev.manifest.get("consent"), "metrics": ev.metrics,
        "verdict": decision.verdict, "reasons": decision.reason_codes,
    }


def seal(ev: Evidence, decision: Decision) -> Path | None:
    """Write the signed provenance statement into the run's candidate bundle (None: no bundle)."""
    from .bundle import provenance
    from .core.signing import load_signer

    if ev.bundle_dir is None or not ev.bundle_dir.is_dir():
        return None
    return provenance.write(ev.bundle_dir, predicate(ev, decision), load_signer(ev.root))


def _action_entry(ev: Evidence, action: str, summary: str, live: Path) -> dict[str, Any]:
    import uuid

    from .core.ledger import ENTRY_SCHEMA
    from .core.paths import commit_of
    from .core.stage import now_iso

    return {"schema": ENTRY_SCHEMA, "ts": now_iso(), "stage_id": action, "lane": ev.settings.get("lane"),
            "files_changed": [live.relative_to(ev.root).as_posix()], "artifacts": [], "behavior_delta": summary,
            "checks_run": [], "verdict": "GO", "firstFail": None, "certificateHash": None, "integrityOk": True,
            "traceId": f"lane:{uuid.uuid4()}", "runId": ev.run_id, "commit_sha": commit_of(ev.root).sha or "unknown",
            "status": "done", "reason": "ok"}


def verified_go(ev: Evidence) -> str:
    """'' when the run's candidate carries a trusted, intact provenance statement saying GO."""
    from .bundle import provenance
    from .core.signing import trusted_keys

    if ev.bundle_dir is None:
        return "the run has no candidate bundle"
    prov = provenance.verify(ev.bundle_dir, trusted_keys(ev.root))
    if not prov.ok:
        return prov.problems[0]
    return "" if prov.verdict == "GO" else f"its provenance says {prov.verdict}"


def promote(root: str | os.PathLike[str], run_id: str) -> Path:
    """Make a GO run's candidate the live voice (an atomic switch, and a ledger entry). Refused, with
    the reasons, for a NO-GO run or evidence that no longer verifies."""
    from .bundle import store
    from .core import ledger
    from .core.stage import now_iso

    ev = gather(root, run_id)
    decision = decide(root, run_id, ev)
    if not decision.go:
        raise LaneError("promotion_refused", f"run {run_id} is NO-GO: " + "; ".join(decision.reasons[:3]))
    problem = verified_go(ev)
    if problem:
        raise LaneError("provenance_invalid", f"run {run_id}: {problem}")
    assert ev.bundle_dir is not None
    owner = store.run_of(ev.bundle_dir)
    if owner is None:
        raise LaneError("bundle_invalid", f"{ev.bundle_dir} is not a candidate bundle")
    voice_id, _ = owner
    previous = store.switch(ev.root, voice_id, run_id, why="promote", at=now_iso())
    live = store.live_path(ev.root, voice_id)
    ledger.append(ev.root, _action_entry(ev, "promote", f"promote {voice_id}: run {run_id} is live"
                                         + (f" (was {previous})" if previous else ""), live))
    return live


def rollback(root: str | os.PathLike[str], voice_id: str) -> Path:
    """Make the previous live run of `voice_id` live again (its provenance must still say GO)."""
    from .bundle import store
    from .core import ledger
    from .core.stage import now_iso

    current = store.live_run(root, voice_id)
    rows = [r for r in store.history(root, voice_id) if r.get("run_id") == current and r.get("why") == "promote"]
    previous = rows[-1].get("previous") if rows else None
    if not current or not previous:
        raise LaneError("rollback_unavailable", f"{voice_id}: no earlier live bundle (live: {current or 'none'})")
    ev = gather(root, str(previous))
    problem = verified_go(ev)
    if problem:
        raise LaneError("provenance_invalid", f"run {previous}: {problem}")
    store.switch(root, voice_id, str(previous), why="rollback", at=now_iso())
    live = store.live_path(root, voice_id)
    ledger.append(ev.root, _action_entry(ev, "rollback", f"rollback {voice_id}: run {previous} is live again "
                                         f"(was {current})", live))
    return live


def servable(bundle_dir: str | os.PathLike[str], root: str | os.PathLike[str], *,
             allow_unpromoted: bool = False) -> list[str]:
    """Why `bundle_dir` may not be served ([] when it may): a live voice (bundles/<id>/voice_bundle,
    or the candidate it points at) whose hashes verify, whose validation passed and whose signed
    provenance says GO. `allow_unpromoted` (development) keeps only the hash check."""
    from .bundle import provenance, store
    from .bundle.check import validate_voice_bundle
    from .core.signing import trusted_keys

    bdir = Path(bundle_dir)
    problems = [f"hashes: {p}" for p in validate_voice_bundle(bdir, root).problems[:3]]
    if allow_unpromoted or problems:
        return problems
    owner = store.run_of(bdir)
    if owner is None or store.live_run(root, owner[0]) != owner[1]:
        return [f"{bdir} is not a live voice: promote a GO run (`lane promote RUN_ID`)"]
    validation = _read(bdir / "validation.json") or {}
    if not validation.get("ok"):
        problems.append(f"its validation did not pass (first fail: {validation.get('first_fail')})")
    prov = provenance.verify(bdir, trusted_keys(root))
    problems += [f"provenance: {p}" for p in prov.problems[:2]]
    if prov.ok and prov.verdict != "GO":
        problems.append(f"its provenance says {prov.verdict}")
    return problems
