"""The readiness report: `reports/readiness-<run_id>.md` and `.html`, rendered from `runs/<run_id>/`
alone (settings.json, the stage results, the train_status copy the runner keeps there, media).

GO only when the run completed and every promotion-checklist item is ticked from evidence:

    weights manifest ok                 verify stage check `weights_manifest_ok`
    weights licence commercial-OK       verify stage check `weights_license_commercial`
    PROGRESS/STATS/ARTIFACT present     line counts the runner parsed from the stage output
    train_status present                artifacts/train_status.<lane>.json (and its copy in the run dir)
    every gate PASS with integrity true each configured stage's gate, integrity re-checked now
    bundle validated                    export stage check `bundle_validated`
    lane promotable                     verify stage stats `promotable` (+ `not_promotable_reason`)

An item with no evidence is shown as missing and makes the report NO-GO. The HTML embeds plots and
audio inline (base64), so it is one self-contained file a reviewer can sign.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.fsutil import atomic_write_text, read_json, rel
from ..core.media import collect
from ..core.reasons import REASONS, LaneError
from ..core.stage import now_iso, result_path

TEMPLATES = Path(__file__).resolve().parent / "templates"
_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif", ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg",
         ".ogg": "audio/ogg"}
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


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


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


def _media(run_dir: Path) -> list[dict[str, Any]]:
    out = []
    for stage, items in collect(run_dir).items():
        for item in items:
            path = run_dir / stage / item.path
            mime = _MIME.get(path.suffix.lower())
            entry: dict[str, Any] = {"stage": stage, "kind": item.kind, "caption": item.caption,
                                     "section": item.section or stage, "rel": f"../runs/{run_dir.name}/{stage}/{item.path}",
                                     "mime": mime, "data": None, "text": None}
            if item.kind in ("image", "audio") and mime:
                entry["data"] = base64.b64encode(path.read_bytes()).decode("ascii")
            elif item.kind == "table":
                entry["text"] = path.read_text(encoding="utf-8", errors="replace")[:20000]
            out.append(entry)
    return out


def collect_report(root: str | os.PathLike[str], run_id: str) -> dict[str, Any]:
    """Everything the templates show, from the run directory alone."""
    from ..core.gates import evaluate, later_hashes

    rootp = Path(root).resolve()
    run_dir = rootp / "runs" / run_id
    if not run_dir.is_dir():
        raise LaneError("run_not_found", f"runs/{run_id} does not exist under {rootp}")
    meta = _read(run_dir / "settings.json") or {}
    settings: dict[str, Any] = meta.get("settings") or {}
    status: dict[str, Any] = _read(run_dir / "train_status.json") or {}
    stage_names = list(settings.get("stages") or status.get("stage_order") or [])
    records = status.get("stages") or {}
    for extra in sorted(p.parent.name for p in run_dir.glob("*/result.json")):
        if extra not in stage_names and (not records or extra in records):
            stage_names.append(extra)
    results: dict[str, dict[str, Any] | None] = {}
    gates: dict[str, dict[str, Any]] = {}
    stages = []
    for name in stage_names:
        res = _read(result_path(run_dir, name))
        res = res if isinstance(res, dict) else None
        if records and name not in records:
            res = None  # left over from an earlier attempt of this run: not evidence for this one
        results[name] = res
    for i, name in enumerate(stage_names):
        res = results[name]
        rec = records.get(name) or {}
        later = later_hashes([r for r in (results[n] for n in stage_names[i + 1:]) if r is not None])
        gate = evaluate(res, rootp, later).as_dict() if res is not None else None
        if gate is not None and rec.get("verdict") == "FAIL":
            gate["verdict"] = "FAIL"  # the runner failed it (e.g. the notebook raised after writing a result)
        if rec or res is not None:
            gates[name] = gate or {"verdict": rec.get("verdict", "FAIL"), "integrity_ok": False,
                                   "certificate_hash": rec.get("certificate_hash"), "first_fail": rec.get("first_fail")}
        html = run_dir / f"{name}.html"
        stages.append({
            "name": name,
            "ran": bool(rec) or res is not None,
            "status": rec.get("status") or (res or {}).get("status") or "not run",
            "reason": rec.get("reason") or (res or {}).get("reason") or "",
            "detail": rec.get("detail") or (res or {}).get("detail") or "",
            "duration_s": rec.get("original_duration_s") if rec.get("skipped") else rec.get("duration_s", (res or {}).get("duration_s")),
            "verdict": gates.get(name, {}).get("verdict", "—"),
            "certificate_hash": gates.get(name, {}).get("certificate_hash") or "",
            "integrity_ok": gates.get(name, {}).get("integrity_ok"),
            "first_fail": gates.get(name, {}).get("first_fail") or rec.get("first_fail"),
            "skipped": bool(rec.get("skipped")),
            "skip_note": "skipped (unchanged since PASS)" if rec.get("skipped") else "",
            "html": f"../runs/{run_id}/{name}.html" if html.is_file() else None,
            "stats": (res or {}).get("stats") or {},
            "checks": (res or {}).get("checks") or [],
            "artifacts": (res or {}).get("artifacts") or [],
        })
    checklist = build_checklist(rootp, run_dir, settings, status, results, gates)
    run_status = status.get("status") or "unknown"
    run_reason = status.get("reason") or ("unknown" if run_status != "completed" else "ok")
    reasons: list[str] = []
    if run_status != "completed":
        meaning = REASONS[run_reason].meaning if run_reason in REASONS else ""
        reasons.append(f"run {run_status}: `{run_reason}`" + (f" ({meaning})" if meaning else "")
                       + (f": {status.get('detail')}" if status.get("detail") else ""))
    for item in checklist:
        if item.state != OK:
            reasons.append(f"{item.label}: {item.state} ({item.evidence})")
    go = run_status == "completed" and not reasons
    return {
        "run_id": run_id, "lane": settings.get("lane") or status.get("lane"), "profile": settings.get("profile"),
        "backend": settings.get("backend"), "voice_profile_id": settings.get("voice_profile_id"),
        "commit_sha": meta.get("commit_sha"), "created_at": meta.get("created_at"), "rendered_at": now_iso(),
        "status": run_status, "reason": run_reason, "exit_code": status.get("exit_code"),
        "detail": status.get("detail") or "", "go": go, "verdict": "GO" if go else "NO-GO", "reasons": reasons,
        "checklist": checklist, "stages": stages, "timings": status.get("timings") or {},
        "line_counts": status.get("line_counts") or {}, "bundle_path": status.get("bundle_path"),
        "settings": settings, "sources": meta.get("sources") or {}, "media": _media(run_dir),
    }


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html", "html.j2"]), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["cell"] = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
    env.filters["tf"] = lambda v: "—" if v is None else str(bool(v)).lower()
    return env


def render_report(root: str | os.PathLike[str], run_id: str) -> list[Path]:
    """Write reports/readiness-<run_id>.md and .html; returns both paths (md first)."""
    ctx = collect_report(root, run_id)
    env = _env()
    reports = Path(root).resolve() / "reports"
    md = atomic_write_text(reports / f"readiness-{run_id}.md", env.get_template("readiness.md.j2").render(**ctx))
    html = atomic_write_text(reports / f"readiness-{run_id}.html", env.get_template("readiness.html.j2").render(**ctx))
    for path in (md, html):  # the temp file behind the atomic write is 0600; a reviewer must be able to read it
        os.chmod(path, 0o644)
    return [md, html]
