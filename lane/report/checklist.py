"""The promotion checklist: each item ticked from evidence in the run directory (a stage check, the
runner's line counts, the status files, the gates), missing evidence shown as missing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.fsutil import rel

OK, FAILED, MISSING = "ok", "failed", "missing"


@dataclass
class ChecklistItem:
    id: str
    label: str
    state: str  # ok | failed | missing
    evidence: str

    @property
    def mark(self) -> str:
        return {"ok": "[x]", "failed": "[ ]", "missing": "[ ]"}[self.state]


def _check(result: dict[str, Any] | None, check_id: str) -> dict[str, Any] | None:
    for c in (result or {}).get("checks") or []:
        if c.get("id") == check_id:
            return dict(c)
    return None


def _from_check(item_id: str, label: str, stage: str, result: dict[str, Any] | None, check_id: str) -> ChecklistItem:
    if result is None:
        return ChecklistItem(item_id, label, MISSING, f"no {stage} stage result")
    c = _check(result, check_id)
    if c is None or c.get("ok") is None:
        return ChecklistItem(item_id, label, MISSING, f"{stage} check `{check_id}` not recorded")
    state = OK if c.get("ok") else FAILED
    return ChecklistItem(item_id, label, state, f"{stage} check `{check_id}`: {c.get('detail') or ('ok' if c.get('ok') else 'failed')}")


def build_checklist(root: Path, run_dir: Path, settings: dict[str, Any], status: dict[str, Any],
                    results: dict[str, dict[str, Any] | None], gates: dict[str, dict[str, Any]]) -> list[ChecklistItem]:
    lane = settings.get("lane") or status.get("lane") or ""
    items = [
        _from_check("weights_manifest_ok", "weights manifest ok", "verify", results.get("verify"), "weights_manifest_ok"),
        _from_check("weights_license_commercial", "weights licence commercial-OK", "verify", results.get("verify"),
                    "weights_license_commercial"),
    ]
    counts = status.get("line_counts")
    if not isinstance(counts, dict):
        items.append(ChecklistItem("protocol_lines", "PROGRESS/STATS/ARTIFACT present", MISSING, "no line counts recorded"))
    else:
        absent = [k for k in ("PROGRESS", "STATS", "ARTIFACT") if not counts.get(k)]
        text = ", ".join(f"{k}={counts.get(k, 0)}" for k in ("PROGRESS", "STATS", "ARTIFACT"))
        items.append(ChecklistItem("protocol_lines", "PROGRESS/STATS/ARTIFACT present",
                                   MISSING if absent else OK, text + (f" (none: {', '.join(absent)})" if absent else "")))
    ts = root / "artifacts" / f"train_status.{lane}.json"
    have_copy = (run_dir / "train_status.json").is_file()
    items.append(ChecklistItem("train_status", "train_status present", OK if ts.is_file() and have_copy else MISSING,
                               f"{rel(ts, root)}: {'present' if ts.is_file() else 'missing'}; run copy: "
                               f"{'present' if have_copy else 'missing'}"))
    stages = list(settings.get("stages") or [])
    bad = [s for s in stages if gates.get(s, {}).get("verdict") != "PASS" or not gates.get(s, {}).get("integrity_ok")]
    not_run = [s for s in bad if s not in gates]
    if not stages:
        items.append(ChecklistItem("gates_pass", "every gate PASS with integrity true", MISSING, "no stages configured"))
    elif not bad:
        items.append(ChecklistItem("gates_pass", "every gate PASS with integrity true", OK, f"{len(stages)} of {len(stages)} PASS"))
    else:
        state = MISSING if set(bad) == set(not_run) else FAILED
        items.append(ChecklistItem("gates_pass", "every gate PASS with integrity true", state,
                                   "not PASS: " + ", ".join(s + (" (not run)" if s in not_run else "") for s in bad)))
    items.append(_from_check("bundle_validated", "bundle validated", "export", results.get("export"), "bundle_validated"))
    verify = results.get("verify")
    promotable = (verify or {}).get("stats", {}).get("promotable") if verify else None
    if promotable is None:
        items.append(ChecklistItem("lane_promotable", "lane promotable", MISSING, "verify stats `promotable` not recorded"))
    else:
        why = (verify or {}).get("stats", {}).get("not_promotable_reason")
        items.append(ChecklistItem("lane_promotable", "lane promotable", OK if bool(promotable) else FAILED,
                                   "promotable" if promotable else f"not promotable: {why or 'no reason given'}"))
    return items
