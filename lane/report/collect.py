"""Everything the readiness report shows, read from `runs/<run_id>/` alone: settings.json, the stage
results, the runner's train_status copy, and the stages' media (embedded inline, base64)."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from ..core.fsutil import read_json
from ..core.media import collect
from ..core.reasons import REASONS, LaneError
from ..core.stage import now_iso, result_path
from .checklist import OK, build_checklist

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif", ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg",
         ".ogg": "audio/ogg"}


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


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


def _stage_names(run_dir: Path, settings: dict[str, Any], records: dict[str, Any]) -> list[str]:
    """The configured stages, then any other stage of this run that left a result."""
    names = list(settings.get("stages") or [])
    for extra in sorted(p.parent.name for p in run_dir.glob("*/result.json")):
        if extra not in names and (not records or extra in records):
            names.append(extra)
    return names


def _results(run_dir: Path, names: list[str], records: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for name in names:
        res = _read(result_path(run_dir, name))
        res = res if isinstance(res, dict) else None
        if records and name not in records:
            res = None  # left over from an earlier attempt of this run: not evidence for this one
        out[name] = res
    return out


def _gates(root: Path, names: list[str], results: dict[str, dict[str, Any] | None],
           records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each stage's gate re-evaluated now (integrity re-hashed), FAIL where the runner failed it."""
    from ..core.gates import evaluate, later_hashes

    gates: dict[str, dict[str, Any]] = {}
    for i, name in enumerate(names):
        res, rec = results[name], records.get(name) or {}
        later = later_hashes([r for r in (results[n] for n in names[i + 1:]) if r is not None])
        gate = evaluate(res, root, later).as_dict() if res is not None else None
        if gate is not None and rec.get("verdict") == "FAIL":
            gate["verdict"] = "FAIL"  # the runner failed it (e.g. the notebook raised after writing a result)
        if rec or res is not None:
            gates[name] = gate or {"verdict": rec.get("verdict", "FAIL"), "integrity_ok": False,
                                   "certificate_hash": rec.get("certificate_hash"), "first_fail": rec.get("first_fail")}
    return gates


def _stage_row(run_dir: Path, name: str, res: dict[str, Any] | None, rec: dict[str, Any],
               gate: dict[str, Any]) -> dict[str, Any]:
    html = run_dir / f"{name}.html"
    r = res or {}
    return {
        "name": name,
        "ran": bool(rec) or res is not None,
        "status": rec.get("status") or r.get("status") or "not run",
        "reason": rec.get("reason") or r.get("reason") or "",
        "detail": rec.get("detail") or r.get("detail") or "",
        "duration_s": rec.get("original_duration_s") if rec.get("skipped") else rec.get("duration_s", r.get("duration_s")),
        "verdict": gate.get("verdict", "—"),
        "certificate_hash": gate.get("certificate_hash") or "",
        "integrity_ok": gate.get("integrity_ok"),
        "first_fail": gate.get("first_fail") or rec.get("first_fail"),
        "skipped": bool(rec.get("skipped")),
        "skip_note": "skipped (unchanged since PASS)" if rec.get("skipped") else "",
        "html": f"../runs/{run_dir.name}/{name}.html" if html.is_file() else None,
        "stats": r.get("stats") or {},
        "checks": r.get("checks") or [],
        "artifacts": r.get("artifacts") or [],
    }


def collect_report(root: str | os.PathLike[str], run_id: str) -> dict[str, Any]:
    """Everything the templates show, from the run directory alone."""
    rootp = Path(root).resolve()
    run_dir = rootp / "runs" / run_id
    if not run_dir.is_dir():
        raise LaneError("run_not_found", f"runs/{run_id} does not exist under {rootp}")
    meta = _read(run_dir / "settings.json") or {}
    settings: dict[str, Any] = meta.get("settings") or {}
    status: dict[str, Any] = _read(run_dir / "train_status.json") or {}
    records = status.get("stages") or {}
    names = _stage_names(run_dir, {"stages": settings.get("stages") or status.get("stage_order")}, records)
    results = _results(run_dir, names, records)
    gates = _gates(rootp, names, results, records)
    stages = [_stage_row(run_dir, n, results[n], records.get(n) or {}, gates.get(n, {})) for n in names]
    checklist = build_checklist(rootp, run_dir, settings, status, results, gates)
    run_status = status.get("status") or "unknown"
    run_reason = status.get("reason") or ("unknown" if run_status != "completed" else "ok")
    reasons: list[str] = []
    if run_status != "completed":
        meaning = REASONS[run_reason].meaning if run_reason in REASONS else ""
        reasons.append(f"run {run_status}: `{run_reason}`" + (f" ({meaning})" if meaning else "")
                       + (f": {status.get('detail')}" if status.get("detail") else ""))
    reasons += [f"{item.label}: {item.state} ({item.evidence})" for item in checklist if item.state != OK]
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
