"""The one place that decides GO or NO-GO, and what follows from it.

A run is GO if and only if every rule below holds, each from evidence the signed ledger certifies
(lane.evidence: the run's configuration snapshot, its stage results, its own candidate), verified
now (nothing is taken on trust from an earlier rendering, a status file or a live config file):

==================  ================================================================  ======================
rule                holds when                                                        otherwise
==================  ================================================================  ======================
run_completed       the run ended `completed`                                          its own reason
stages_complete     every stage the lane declares (validate is required) passed in     stages_incomplete
                    this run, or was skipped unchanged with its evidence re-verified
promotable          lane and profile (as frozen) promotable, not from scratch, the     lane_not_promotable,
                    train stage and the bundle say the models are promotable, and      experimental_lane
                    every base they were fine-tuned from says `promotable: true`
licences            verify's checks passed, and every licence in the frozen weights    weights_*, *_blocked
                    manifest is allowed by the frozen policy (judged again now)
consent             a spoken consent (signed, in the ledger) of the recordings' voice  consent_missing,
                    covers them and permits commercial use                            consent_speaker_mismatch
quality_evaluated   every metric with a lane floor was measured (no evaluator          not_evaluated
                    missing, none made optional)
quality_passed      every recorded metric value meets the stricter of the frozen       gate_failed
                    threshold and the floor (values are judged, not `ok` flags)
thresholds_floor    the frozen thresholds are at least as strict as the floors         thresholds_below_floor
                    (FLOORS, per evaluator class: EVALUATOR_FLOORS)
bundle              the run's own candidate was validated at export, names this run    bundle_invalid,
                    and voice, and its hashes verify now                               candidate_mismatch
evidence            the ledger verifies (chain, signatures, certificates, head,        ledger_broken,
                    witness, runs), every stage's artifacts keep their certified       ledger_rolled_back
                    hashes, and every file the verdict reads is the one certified
protocol_lines      PROGRESS, STATS and ARTIFACT lines were emitted                    not_evaluated
train_status        train_status and its run copy exist                               not_evaluated
==================  ================================================================  ======================

On a profile that is not promotable, consent, quality_evaluated and thresholds_floor do not apply
(shown as n/a): the run is NO-GO for the one reason that it is not promotable, and its metrics are
advisory. Then: `seal` writes the signed provenance into the candidate bundle, `promote` makes a GO
candidate the live voice (a ledger entry naming its hashes), `rollback` restores the previous live
voice, and `servable` says whether a live bundle may be served: only one a verifying ledger promoted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from .core.reasons import REASONS, LaneError
from .evidence import Evidence, gather, read

if TYPE_CHECKING:
    from .bundle.live import SwitchRow
    from .core.ledger import LedgerEntry

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


def floors_for(classes: Mapping[str, object] | None = None) -> dict[str, Bound]:
    """The floors for a run whose evaluators were of these classes (role -> class; missing: the defaults)."""
    c = {**DEFAULT_EVALUATORS, **{k: str(v) for k, v in (classes or {}).items() if v in EVALUATOR_FLOORS}}
    return {"sanity_failures": (None, 0.0), "nemo_onnx_mcd": (None, 1.0), **EVALUATOR_FLOORS[c["asr"]],
            **EVALUATOR_FLOORS[c["speaker_encoder"]], "mcd_db": (None, 8.0), "f0_corr": (0.5, None),
            "vuv_error": (None, 0.2), "duration_ratio": (0.8, 1.25), **EVALUATOR_FLOORS[c["mos_estimator"]]}


FLOORS: dict[str, Bound] = floors_for()  # with the default evaluators (pocketsphinx, GE2E, DNSMOS)


def floors_of(ev: Evidence) -> dict[str, Bound]:
    """The floors for a run: those of the evaluator classes its (certified) validation recorded."""
    return floors_for({r: (e or {}).get("class") for r, e in ev.evaluators.items() if isinstance(e, dict)})
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
# What the rules read, each piece certified by the ledger: lane.evidence (Evidence and gather, re-exported here).
__all__ = ["FLOORS", "Decision", "Evidence", "decide", "gather", "promote", "rollback", "servable"]


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
    stale = {s: ev.gates[s]["stale"] for s in bad if ev.gates.get(s, {}).get("stale")}
    return _no("stages_complete", label, "not PASS: " + ", ".join(
               s + (" (not run)" if s in not_run else f" (ran on a {stale[s]} that has changed since)" if s in stale
                    else "") for s in bad),
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
    bases = _base_problems(ev)
    train_said = ev.stat("train", "promotable")
    if train_said is False:
        problems += _train_reasons(ev.stat("train", "not_promotable_because"), problems + bases)
    if ev.manifest and not (ev.manifest.get("training") or {}).get("promotable", False) and train_said is not False:
        problems.append("the bundle says its models are not promotable")  # (it echoes train when train said so)
    if train_said is None and "train" in ev.lane_stages:
        problems.append("the train stage recorded no promotability")
    problems += bases
    if not problems:
        return _ok("promotable", label, f"lane {ev.settings.get('lane')}, profile {profile}, models from licensed bases")
    text = "; ".join(problems)
    return _no("promotable", label, text, "lane_not_promotable",
               f"{text[0].upper()}{text[1:]}" + (" (a demo voice is for trying the lane, never for release)."
                                                 if profile == "demo" else "."))


def _train_reasons(why: object, said: list[str]) -> list[str]:
    """What the train stage recorded as its reasons (`; `-separated), less those another rule already
    names (the profile, a base), so that a reviewer reads each reason once."""
    if not why:
        return ["the train stage trained from scratch or vocodes with Griffin-Lim"]
    told = " ".join(said)
    out = []
    for part in (p.strip() for p in str(why).split(";")):
        if not part or (part == "the profile is not promotable" and "profile is not promotable" in told):
            continue
        if part.startswith("its base ") and part.split(" (")[0] in told:
            continue
        out.append(part)
    return out


def _base_problems(ev: Evidence) -> list[str]:
    """Every base the bundle was fine-tuned from must say, in the frozen weights manifest, that a voice
    made from it may be released (`promotable: true`)."""
    entries = {e.get("id"): e for e in ((ev.weights.get("manifest") or {}).get("entries") or [])}
    out = []
    for base in ev.manifest.get("base_weights") or []:
        entry = entries.get(base.get("id"))
        if entry is None:
            out.append(f"its base {base.get('id')} is not in the run's weights manifest")
        elif entry.get("promotable") is not True:
            out.append(f"its base {base.get('id')} is not promotable (the weights manifest says "
                       f"{'promotable: false' if entry.get('promotable') is False else 'nothing about promotable'})")
    return out


def _licence_judgements(ev: Evidence) -> tuple[list[tuple[str, str, str]], list[str]]:
    """Every licence of the frozen weights manifest judged again by the frozen policy: (blocked: code,
    entry id, why), and a note per entry allowed through an OR (the branch taken)."""
    blocked, notes = [], []
    for e in (ev.weights.get("manifest") or {}).get("entries") or []:
        for field_, code in (("code_license", "code_license_blocked"), ("weights_license", "weights_license_blocked")):
            expr = e.get(field_)
            chosen = ev.policy.choose(expr) if ev.policy is not None else None
            if chosen is None:
                blocked.append((code, str(e.get("id")), ev.policy.explain(expr) if ev.policy else "no licence policy"))
            elif " OR " in str(expr).upper():
                notes.append(f"{e.get('id')} {field_.split('_')[0]}: {expr} -> {chosen}")
    return blocked, notes


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
    if ev.snapshot is None or not ev.weights.get("manifest"):
        return _no("licences", label, "no frozen weights manifest", "not_evaluated",
                   "The run's weights manifest was not frozen with its configuration: its licences cannot be judged.",
                   "missing")
    blocked, branches = _licence_judgements(ev)
    if blocked:
        code, entry, why = blocked[0]
        return _no("licences", label, f"{entry}: {why}", code, f"A licence of weights entry {entry} is not allowed: {why}.")
    c = ev.check("verify", "weights_license_commercial") or {}
    return _ok("licences", label, str(c.get("detail", "")) + (f"; OR branches taken: {'; '.join(branches)}"
                                                             if branches else ""))


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
    return {str(c["id"]): c for c in res.get("checks") or [] if c.get("id") in floors_of(ev) or "threshold" in c}


def rule_quality_evaluated(ev: Evidence) -> Item:
    label = "every quality metric with a floor was measured"
    if not ev.profile_promotable:
        return Item("quality_evaluated", label, "n/a", "advisory only: the profile is not promotable")
    if ev.results.get("validate") is None:
        return _no("quality_evaluated", label, "no validate result", "not_evaluated",
                   "The voice's quality was never measured in this run.", "missing")
    gated = _gated(ev)
    missing = [m for m in floors_of(ev) if m not in gated or gated[m].get("ok") is None or gated[m].get("optional")]
    if missing:
        return _no("quality_evaluated", label, f"not measured, or optional: {', '.join(missing)}", "not_evaluated",
                   f"Some quality was not measured ({', '.join(missing)}): a missing evaluator is never a pass.")
    return _ok("quality_evaluated", label, f"{len(floors_of(ev))} metrics measured")


def _threshold_bound(th: Any) -> Bound | None:
    """A profile threshold ({min, max}) as a bound; None when it gates nothing."""
    if not isinstance(th, dict):
        return None
    lo, hi = th.get("min"), th.get("max")
    if lo is None and hi is None:
        return None
    return (None if lo is None else float(lo), None if hi is None else float(hi))


def _stricter(a: Bound | None, b: Bound) -> Bound:
    if a is None:
        return b
    lows = [x for x in (a[0], b[0]) if x is not None]
    highs = [x for x in (a[1], b[1]) if x is not None]
    return (max(lows) if lows else None, min(highs) if highs else None)


def effective_bound(ev: Evidence, metric: str) -> Bound | None:
    """What a metric's recorded value must meet: the frozen profile's threshold, and for a promotable
    profile the stricter of it and the lane's floor. None: not gated (advisory)."""
    bound = _threshold_bound(ev.thresholds.get(metric))
    floors = floors_of(ev)
    if ev.profile_promotable and metric in floors:
        return _stricter(bound, floors[metric])
    return bound


def metric_value(ev: Evidence, metric: str) -> float | None:
    """The value validate recorded for a metric (its check's, else the validation metrics')."""
    c = ev.check("validate", metric) or {}
    value = c.get("value", ev.metrics.get(metric))
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    return float(value)


def _judged(ev: Evidence) -> list[tuple[str, float | None, Bound, dict[str, Any] | None]]:
    """(metric, recorded value, the bound it must meet, its check) for every gated metric."""
    names = list(dict.fromkeys([*floors_of(ev), *ev.thresholds, *_gated(ev)]))
    rows = []
    for m in names:
        bound = effective_bound(ev, m)
        if bound is not None:
            rows.append((m, metric_value(ev, m), bound, ev.check("validate", m)))
    return rows


def rule_quality_passed(ev: Evidence) -> Item:
    """Values, not flags: each recorded value against the stricter of the frozen threshold and the floor.
    An `ok: true` beside a failing value is evidence of tampering (or of a threshold changed mid-run)."""
    label = "validate: every gated metric within its threshold"
    gate = ev.gates.get("validate")
    if gate is None:
        return _no("quality_passed", label, "validate did not run", "stages_incomplete",
                   "The voice's quality was never measured in this run.", "missing")
    failed = [(m, v, b, c) for m, v, b, c in _judged(ev)
              if (v is not None and not _meets(v, b)) or (c or {}).get("ok") is False]
    if failed:
        m, v, b, _ = failed[0]
        forged = [f[0] for f in failed if (f[3] or {}).get("ok") is True]
        return _no("quality_passed", label, ", ".join(f"{f[0]}={f[1]} (bar {describe(f[2])})" for f in failed),
                   "gate_failed", f"The voice misses its quality bar: {METRIC_LABELS.get(m, m)} is {v}, the bar "
                   f"{describe(b)}." + (f" Validate recorded ok beside the failing value of {', '.join(forged)}: "
                                       "that is evidence of tampering, never a pass." if forged else ""))
    return _ok("quality_passed", label, f"validate {gate.get('verdict')}; {len(_judged(ev))} recorded values within "
                                       "the stricter of threshold and floor")


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
    th = ev.thresholds
    floors = floors_of(ev)
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
    mismatch = [p for p in ev.candidate_problems if not p.startswith("the status file names")]
    if mismatch:
        return _no("bundle", label, "; ".join(ev.candidate_problems), "candidate_mismatch",
                   f"The candidate is not this run's own bundle: {mismatch[0]}.")
    if not c.get("ok") or ev.bundle_problems:
        problem = ev.bundle_problems[0] if ev.bundle_problems else str(c.get("detail"))
        return _no("bundle", label, problem, "bundle_invalid", f"The bundle no longer matches what was validated: {problem}.")
    note = f" ({ev.candidate_problems[0]}: ignored)" if ev.candidate_problems else ""
    return _ok("bundle", label, f"{ev.bundle_dir.relative_to(ev.root).as_posix()}: schema, sha256 and sizes{note}")


def rule_evidence(ev: Evidence) -> Item:
    label = "ledger, signatures, certificates, artifacts and every file the verdict reads verify now"
    if not ev.ledger_ok:
        rolled = ev.ledger_reason == "ledger_rolled_back"
        return _no("evidence", label, ev.ledger_problem, ev.ledger_reason,
                   ("The ledger was rolled back to an earlier signed head: " if rolled else
                    "The evidence was changed after the fact: ") + f"{ev.ledger_problem}.")
    if ev.uncertified:
        return _no("evidence", label, "; ".join(ev.uncertified), "ledger_broken",
                   f"A file the verdict reads is not the one the ledger certified: {ev.uncertified[0]}.")
    broken = [s for s, g in ev.gates.items() if g.get("integrity_ok") is False and g.get("verdict") == "PASS"]
    if broken:
        return _no("evidence", label, f"artifacts changed in {', '.join(broken)}", "ledger_broken",
                   f"Files the {broken[0]} stage certified have changed since.")
    return _ok("evidence", label, f"ledger verified ({ev.witness}); the configuration snapshot, settings, stage "
                                  "results and every stage's artifacts re-hashed against it")


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


class ItemRecord(TypedDict):
    id: str
    state: str
    evidence: str
    reason: str


class DecisionRecord(TypedDict):
    """The verdict as JSON (`lane verdict --json`)."""

    run_id: str
    verdict: str
    reasons: list[str]
    reason_codes: list[str]
    items: list[ItemRecord]


class Predicate(TypedDict):
    """The provenance predicate (provenance.dsse.json): what made the bundle and what was concluded.
    `inputs`, `base_weights`, `dataset`, `consent` and `metrics` are the records as the run wrote them."""

    builder: dict[str, str]
    run_id: str
    lane: str | None
    profile: str | None
    voice_profile_id: str | None
    commit: str | None
    started_at: str | None
    inputs: list[Any]
    config_snapshot: dict[str, str] | None
    base_weights: list[Any]
    dataset: dict[str, Any]
    consent: dict[str, Any] | None
    metrics: dict[str, Any]
    verdict: str
    reasons: list[str]


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

    def as_dict(self) -> DecisionRecord:
        return DecisionRecord(run_id=self.run_id, verdict=self.verdict, reasons=self.reasons,
                              reason_codes=self.reason_codes,
                              items=[ItemRecord(id=i.id, state=i.state, evidence=i.evidence, reason=i.reason)
                                     for i in self.items])


def _meets(value: float | None, bound: Bound) -> bool | None:
    if value is None:
        return None
    lo, hi = bound
    return not ((lo is not None and value < lo) or (hi is not None and value > hi))


def quality_table(ev: Evidence) -> list[QualityRow]:
    """Every metric with a floor or a gate: the recorded value, the frozen threshold, the production
    bar, and whether the value passed, failed, was not evaluated, or is advisory (recorded, not gated)."""
    gated = _gated(ev)
    rows = []
    floors = floors_of(ev)
    for m in list(dict.fromkeys([*floors, *gated, *ev.thresholds])):
        c, value, floor, bound = gated.get(m), metric_value(ev, m), floors.get(m), effective_bound(ev, m)
        if bound is not None:
            result = "not evaluated" if value is None else \
                "pass" if _meets(value, bound) and (c or {}).get("ok") is not False else "FAIL"
        else:
            meets = _meets(value, floor) if floor else None
            result = "not evaluated" if value is None else \
                "advisory (meets the production bar)" if meets else "advisory (below the production bar)" \
                if floor else "recorded"
        th = ev.thresholds.get(m)
        rows.append(QualityRow(m, METRIC_LABELS.get(m, m), value, describe(th) if _threshold_bound(th) else "recorded",
                               describe(floor) if floor else "—", result))
    return rows


def decide(root: str | os.PathLike[str], run_id: str, ev: Evidence | None = None) -> Decision:
    """GO or NO-GO for a run, from its evidence verified now."""
    ev = ev or gather(root, run_id)
    items = [rule(ev) for rule in RULES]
    return Decision(run_id, not any(i.blocks for i in items), items, quality_table(ev))


# ------------------------------------------------------------------------------------------ after the verdict
def predicate(ev: Evidence, decision: Decision) -> Predicate:
    """The provenance predicate: what made this bundle and what was concluded about it."""
    from .core.version import VERSION as __version__

    inputs = (read(ev.run_dir / "verify" / "inputs.json") or read(ev.run_dir / "inputs.json") or [])
    snap = None if ev.snapshot is None else {"path": ev.snapshot.path.relative_to(ev.root).as_posix(),
                                              "sha256": ev.snapshot.sha256}
    return Predicate({
        "builder": {"id": "voice-lane", "version": __version__},
        "run_id": ev.run_id, "lane": ev.settings.get("lane"), "profile": ev.settings.get("profile"),
        "voice_profile_id": ev.settings.get("voice_profile_id"), "commit": ev.meta.get("commit_sha"),
        "started_at": ev.meta.get("created_at"), "inputs": inputs, "config_snapshot": snap,
        "base_weights": ev.manifest.get("base_weights") or [], "dataset": ev.manifest.get("dataset") or {},
        "consent": ev.manifest.get("consent"), "metrics": ev.metrics,
        "verdict": decision.verdict, "reasons": decision.reason_codes,
    })


def _own(ev: Evidence) -> bool:
    """The candidate is the run's own directory (not a link to another run's bundle)."""
    return ev.bundle_dir is not None and ev.bundle_dir.is_dir() and not ev.bundle_dir.is_symlink() \
        and ev.bundle_dir.resolve() == ev.bundle_dir


def seal(ev: Evidence, decision: Decision) -> Path | None:
    """Write the signed provenance statement into the run's own candidate bundle (None: it has none)."""
    from .bundle import provenance
    from .core.signing import load_signer

    if not _own(ev):
        return None
    assert ev.bundle_dir is not None
    return provenance.write(ev.bundle_dir, predicate(ev, decision), load_signer(ev.root))


def verified_candidate(ev: Evidence) -> tuple[Path, str]:
    """The run's own candidate, resolved once, and its voice: a real directory at
    bundles/<voice>/candidates/<run_id> whose manifest and trusted provenance name this run and voice
    and say GO. LaneError(candidate_mismatch | provenance_invalid) otherwise."""
    from .bundle import provenance
    from .core.signing import trusted_keys

    voice = str(ev.settings.get("voice_profile_id") or "")
    if not _own(ev) or (ev.candidate_problems and not ev.candidate_problems[0].startswith("the status file names")):
        raise LaneError("candidate_mismatch", f"run {ev.run_id}: " + (ev.candidate_problems[0] if ev.candidate_problems
                                                                      else "no candidate bundle of its own"))
    assert ev.bundle_dir is not None
    prov = provenance.verify(ev.bundle_dir, trusted_keys(ev.root))
    if not prov.ok:
        raise LaneError("provenance_invalid", f"run {ev.run_id}: {prov.problems[0]}")
    named = (prov.predicate.get("run_id"), prov.predicate.get("voice_profile_id"))
    if named != (ev.run_id, voice):
        raise LaneError("candidate_mismatch", f"{ev.bundle_dir}: its provenance names run {named[0]} voice {named[1]}, "
                        f"not run {ev.run_id} voice {voice}")
    if prov.verdict != "GO":
        raise LaneError("provenance_invalid", f"run {ev.run_id}: its provenance says {prov.verdict}")
    return ev.bundle_dir, voice


def _switch_entry(ev: Evidence, action: str, voice: str, run_id: str, previous: str | None, cand: Path,
                  summary: str) -> LedgerEntry:
    from .bundle.live import switch_entry

    return switch_entry(ev.root, action, voice, run_id, previous, cand, lane=ev.settings.get("lane"), summary=summary)


def _ledger_live(root: Path, voice: str) -> list[SwitchRow]:
    from .bundle.live import rows
    from .core.ledger import read_entries

    return rows(read_entries(root), voice)


def promote(root: str | os.PathLike[str], run_id: str) -> Path:
    """Make a GO run's own candidate the live voice: verified once (verdict GO, candidate identity,
    provenance), switched to exactly that directory, and a ledger entry naming its hashes. Refused,
    with the reasons, for a NO-GO run, evidence that no longer verifies, or another run's bundle."""
    from .bundle import store
    from .core import ledger
    from .core.stage import now_iso

    ev = gather(root, run_id)
    decision = decide(root, run_id, ev)
    if not decision.go:
        raise LaneError("promotion_refused", f"run {run_id} is NO-GO ({', '.join(decision.reason_codes)}): "
                        + "; ".join(decision.reasons[:3]))
    cand, voice = verified_candidate(ev)
    recorded = _ledger_live(ev.root, voice)
    previous = recorded[-1]["run_id"] if recorded else None
    store.switch(ev.root, voice, run_id, why="promote", at=now_iso(), previous=previous)
    live = store.live_path(ev.root, voice)
    if live.resolve() != cand:
        raise LaneError("candidate_mismatch", f"{live} resolves to {live.resolve()}, not the verified {cand}")
    ledger.append(ev.root, _switch_entry(ev, "promote", voice, run_id, previous, cand,
                                         f"promote {voice}: run {run_id} is live" + (f" (was {previous})" if previous else "")))
    return live


def rollback(root: str | os.PathLike[str], voice_id: str) -> Path:
    """Make the run that was live before the current one live again, as the ledger records it (the
    live link must agree with the ledger; the earlier candidate must still be its run's own, GO)."""
    from .bundle import store
    from .core import ledger
    from .core.stage import now_iso

    rootp = Path(root).resolve()
    recorded = _ledger_live(rootp, voice_id)
    current = recorded[-1]["run_id"] if recorded else None
    if store.live_run(rootp, voice_id) != current:
        raise LaneError("ledger_broken", f"bundles/{voice_id}/{store.LIVE} is run {store.live_run(rootp, voice_id)}, but "
                        f"the ledger says {current}: `lane ledger verify` names the difference")
    promoted = [r for r in recorded if r["run_id"] == current and r["action"] == "promote"]
    previous = promoted[-1]["previous"] if promoted else None
    if not current or not previous:
        raise LaneError("rollback_unavailable", f"{voice_id}: no earlier live bundle (live: {current or 'none'})")
    ev = gather(rootp, str(previous))
    cand, voice = verified_candidate(ev)
    if voice != voice_id:
        raise LaneError("candidate_mismatch", f"run {previous} made voice {voice}, not {voice_id}")
    store.switch(rootp, voice_id, str(previous), why="rollback", at=now_iso(), previous=current)
    ledger.append(rootp, _switch_entry(ev, "rollback", voice_id, str(previous), current, cand,
                                       f"rollback {voice_id}: run {previous} is live again (was {current})"))
    return store.live_path(rootp, voice_id)


def servable(bundle_dir: str | os.PathLike[str], root: str | os.PathLike[str], *,
             allow_unpromoted: bool = False) -> list[str]:
    """Why `bundle_dir` may not be served ([] when it may): a live voice (bundles/<id>/voice_bundle,
    or the candidate it points at) whose hashes verify, that a verifiable promote (or rollback) entry in
    a verifying ledger made live with exactly these files, whose validation passed and whose signed
    provenance says GO. `allow_unpromoted` (development) keeps only the hash check."""
    from .bundle import provenance, store
    from .bundle.check import validate_voice_bundle
    from .bundle.live import proof
    from .core.signing import trusted_keys

    bdir = Path(bundle_dir)
    problems = [f"hashes: {p}" for p in validate_voice_bundle(bdir, root).problems[:3]]
    if allow_unpromoted or problems:
        return problems
    owner = store.run_of(bdir)
    if owner is None or store.live_run(root, owner[0]) != owner[1]:
        return [f"{bdir} is not a live voice: promote a GO run (`lane promote RUN_ID`)"]
    problems += [f"not promoted: {p}" for p in proof(root, owner[0], owner[1], bdir.resolve())]
    validation = read(bdir / "validation.json") or {}
    if not validation.get("ok"):
        problems.append(f"its validation did not pass (first fail: {validation.get('first_fail')})")
    prov = provenance.verify(bdir, trusted_keys(root))
    problems += [f"provenance: {p}" for p in prov.problems[:2]]
    if prov.ok and prov.verdict != "GO":
        problems.append(f"its provenance says {prov.verdict}")
    return problems
