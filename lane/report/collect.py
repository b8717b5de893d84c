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
