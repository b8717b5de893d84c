"""Everything the readiness report shows, in the order a reviewer reads it, from `runs/<run_id>/` and
the workspace alone (re-verified now by lane.promotion): the verdict and its reasons in plain words,
the quality table, the recordings to listen to side by side, the checklist, provenance, cost, the
stages, and the raw stats last."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from ..core.fsutil import read_json
from ..core.media import MediaItem, collect
from ..core.stage import now_iso

_MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml",
         ".gif": "image/gif", ".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg",
         ".ogg": "audio/ogg"}
_PAIR = re.compile(r"^media/(synth|ref)_(\d+)\.wav$")


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _embed(run_dir: Path, stage: str, item: MediaItem) -> dict[str, Any]:
    path = run_dir / stage / item.path
    mime = _MIME.get(path.suffix.lower())
    entry: dict[str, Any] = {"stage": stage, "kind": item.kind, "caption": item.caption, "path": item.path,
                             "section": item.section or stage, "rel": f"../runs/{run_dir.name}/{stage}/{item.path}",
                             "mime": mime, "data": None, "text": None}
    if item.kind in ("image", "audio") and mime:
        entry["data"] = base64.b64encode(path.read_bytes()).decode("ascii")
    elif item.kind == "table":
        entry["text"] = path.read_text(encoding="utf-8", errors="replace")[:20000]
    return entry


def _media(run_dir: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pairs to listen to side by side, every other media item)."""
    pairs: dict[int, dict[str, Any]] = {}
    rest = []
    for stage, items in collect(run_dir).items():
        for item in items:
            entry = _embed(run_dir, stage, item)
            m = _PAIR.match(item.path) if stage == "validate" and item.kind == "audio" else None
            if m:
                row = pairs.setdefault(int(m.group(2)), {"text": item.caption.split(": ", 1)[-1]})
                row[m.group(1)] = entry
            else:
                rest.append(entry)
    return [pairs[i] for i in sorted(pairs)], rest


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
        "cpu_s": rec.get("cpu_s"),
        "gpu_s": rec.get("gpu_s"),
        "commit_sha": rec.get("commit_sha"),
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


def _cost(root: Path, stages: list[dict[str, Any]]) -> dict[str, Any]:
    """CPU and GPU seconds per stage and an estimate at the configured prices."""
    from ..core.config import lane_section

    prices = lane_section(root, "promotion")
    gpu_hour = float(prices.get("gpu_hour_usd", 3.0))
    cpu_hour = float(prices.get("cpu_hour_usd", 0.04))
    cpu = sum(float(s["cpu_s"] or 0) for s in stages)
    gpu = sum(float(s["gpu_s"] or 0) for s in stages)
    return {"cpu_s": round(cpu, 1), "gpu_s": round(gpu, 1), "gpu_hour_usd": gpu_hour, "cpu_hour_usd": cpu_hour,
            "estimate_usd": round(gpu / 3600 * gpu_hour + cpu / 3600 * cpu_hour, 4)}


def _provenance(ev: Any) -> dict[str, Any]:
    """Commit, inputs by hash, weights and licences, consent, and who signed what."""
    from ..bundle import provenance
    from ..bundle.voice import speaks_summary
    from ..consent.summary import report_consent
    from ..core.ledger import read_entries
    from ..core.signing import trusted_keys

    entries = [e for e in read_entries(ev.root) if e.get("runId") == ev.run_id]
    signers = sorted({str(e["signature"].get("keyid")) for e in entries if e.get("signature")})
    prov = provenance.verify(ev.bundle_dir, trusted_keys(ev.root)) if ev.bundle_dir else None
    verify = ev.results.get("verify") or {}
    weights_table = ev.run_dir / "verify" / "media" / "weights.md"
    return {
        "commit": ev.meta.get("commit_sha"),
        "inputs": (_read(ev.run_dir / "verify" / "inputs.json") or _read(ev.run_dir / "inputs.json") or []),
        "weights": weights_table.read_text(encoding="utf-8") if weights_table.is_file() else "",
        "base_weights": ev.manifest.get("base_weights") or [],
        "speaks": speaks_summary(ev.manifest["tokenizer"]) if ev.manifest.get("tokenizer") else [],
        "consent": report_consent(ev.root, verify) or ev.manifest.get("consent"),
        "ledger_signers": signers,
        "ledger_ok": ev.ledger_ok,
        "ledger_problem": ev.ledger_problem,
        "witness": ev.witness,
        "snapshot": None if ev.snapshot is None else {"path": ev.snapshot.path.relative_to(ev.root).as_posix(),
                                                      "sha256": ev.snapshot.sha256, "drift": ev.drift},
        "bundle": ev.bundle_dir.relative_to(ev.root).as_posix() if ev.bundle_dir else None,
        "provenance": None if prov is None else {"ok": prov.ok, "verdict": prov.verdict,
                                                 "problem": prov.problems[0] if prov.problems else ""},
    }


def _scheduler_job(run_dir: Path) -> str | None:
    """The scheduler job a run went through (runs/<run_id>/slurm/job.json), else None. Its runner records
    `--backend local`, since it runs the stages inside the allocation: the report says managed_job. (The file is
    read here, not through lane.backends.slurm_job.read_job: that module re-renders reports, an import cycle.)"""
    path = run_dir / "slurm" / "job.json"
    job = read_json(path) if path.is_file() else None
    return str(job["job_id"]) if isinstance(job, dict) and job.get("job_id") else None


# recorded beside the gated metrics, never gated: the grammar-constrained CER (pocketsphinx told the words)
ADVISORY_ROWS = {
    "cer_synth_jsgf": "CER of the synthesized speech, ASR given a grammar of the expected words (advisory)",
    "cer_ratio_jsgf": "CER ratio with that grammar (advisory: the decoder is told the sentence)",
}


def _quality(ev: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """The decision's quality rows with each metric's evaluator (class, manifest id, sha256 prefix), then
    the advisory grammar-constrained rows."""
    from ..metrics.thresholds import evaluator_label, metric_evaluators

    who = metric_evaluators([*(r.metric for r in rows), *ADVISORY_ROWS], ev.evaluators)
    out = [{**vars(r), "evaluator": evaluator_label(who.get(r.metric))} for r in rows]
    for m, label in ADVISORY_ROWS.items():
        value = ev.metrics.get(m)
        if isinstance(value, int | float):
            out.append({"metric": m, "label": label, "value": float(value), "threshold": "recorded", "floor": "—",
                        "result": "advisory (not gated)", "evaluator": evaluator_label(who.get(m))})
    return out


def _selection(root: Path, run_dir: Path, train: dict[str, Any] | None) -> dict[str, Any] | None:
    """The train stage's checkpoint selection (its certified artifact, re-hashed now): the score per
    evaluated step, the kept checkpoints and the exported one, and the curve's image."""
    from ..core.fsutil import sha256_file

    art = next((a for a in (train or {}).get("artifacts") or [] if a.get("kind") == "checkpoint_selection"), None)
    if art is None:
        return None
    path = root / art["path"]
    if not path.is_file() or sha256_file(path) != art.get("sha256"):
        return {"problem": f"{art['path']} changed since the train stage certified it", "history": []}
    data = _read(path) or {}
    png = run_dir / "train" / "media" / "selection.png"
    return {**data, "problem": "",
            "png": base64.b64encode(png.read_bytes()).decode("ascii") if png.is_file() else None}


def collect_report(root: str | os.PathLike[str], run_id: str) -> dict[str, Any]:
    """Everything the templates show."""
    from ..promotion import decide, gather

    ev = gather(root, run_id)
    decision = decide(root, run_id, ev)
    stages = [_stage_row(ev.run_dir, n, ev.results[n], ev.records.get(n) or {}, ev.gates.get(n, {}))
              for n in ev.results]
    pairs, media = _media(ev.run_dir)
    settings, status, sources = ev.settings, ev.status, dict(ev.meta.get("sources") or {})
    job_id = _scheduler_job(ev.run_dir)
    if job_id:
        settings = {**settings, "backend": "managed_job"}
        sources["backend"] = f"slurm job {job_id} (whose runner ran the stages with --backend local)"
    return {
        "run_id": run_id, "lane": settings.get("lane") or status.get("lane"), "profile": settings.get("profile"),
        "backend": settings.get("backend"), "voice_profile_id": settings.get("voice_profile_id"),
        "commit_sha": ev.meta.get("commit_sha"), "created_at": ev.meta.get("created_at"), "rendered_at": now_iso(),
        "status": status.get("status") or "unknown", "reason": status.get("reason") or "unknown",
        "exit_code": status.get("exit_code"), "detail": status.get("detail") or "",
        "go": decision.go, "verdict": decision.verdict, "reasons": decision.reasons,
        "reason_codes": decision.reason_codes, "checklist": decision.items, "quality": _quality(ev, decision.quality),
        "selection": _selection(ev.root, ev.run_dir, ev.results.get("train")),
        "pairs": pairs, "media": media, "stages": stages, "cost": _cost(ev.root, stages),
        "provenance": _provenance(ev), "timings": status.get("timings") or {},
        "line_counts": status.get("line_counts") or {}, "bundle_path": status.get("bundle_path"),
        "promoted": status.get("promoted"), "settings": settings, "sources": sources,
    }
