"""The verify stage: preflight before anything heavy runs.

`run(st, p)` runs every check of the registry (lane.stages.checks: config, head, audio, weights and
licences, runtime, resources), records each on the StageRun, records whether this run can be promoted
(a stat the report reads; a demo run still passes verify), leaves the weights and audio tables for
the report, and then raises the first failing check as its LaneError.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..consent.gate import Found
from ..core.fsutil import atomic_write_text
from ..core.media import MediaItem, md_table, media_dir, write_index
from ..core.reasons import LaneError
from ..core.stage import StageRun
from ..core.weights import EntryReport
from ..data.probe import AudioInventory, inspect_audio
from .checks import ALL, CheckContext, Finding, RuntimeInfo, check_head, raise_first_finding, run_checks
from .params import StageParams

__all__ = ["Preflight", "check_head", "inspect_audio", "run", "run_preflight"]


@dataclass
class Preflight:
    checks: list[dict[str, Any]] = field(default_factory=list)
    audio: AudioInventory | None = None
    weights: list[EntryReport] = field(default_factory=list)
    runtime: RuntimeInfo | None = None
    promotable: bool = False
    not_promotable_reason: str = ""
    errors: list[LaneError] = field(default_factory=list)
    consent: Found | None = None


def promotability(ctx: CheckContext) -> str:
    """'' when this run can be promoted, else the reason code why not."""
    if ctx.spec is not None and ctx.spec.status == "experimental":
        return "experimental_lane"
    if ctx.spec is None or not ctx.spec.promotable or not ctx.prof.get("promotable", False) or ctx.allow_from_scratch:
        return "lane_not_promotable"
    return ""


def _record(st: StageRun, pf: Preflight, findings: list[Finding]) -> None:
    for f in findings:
        st.check(f.id, f.ok, f.detail, optional=f.optional, value=f.value, threshold=f.threshold)
        pf.checks.append({"check": f.id, "ok": f.ok, "detail": f.detail})
        if f.error is not None:
            pf.errors.append(f.error)


def run_preflight(st: StageRun, *, root: str | os.PathLike[str], lane: str, profile: str, audio: str | None,
                  transcript: str | None = None, input_format: str = "auto", expected_head: str | None = None,
                  weights_manifest: str | None = None, allow_from_scratch: bool = False,
                  require_clean_tree: bool = False, config_path: str | os.PathLike[str] | None = None,
                  consent: str | None = None, voice_profile_id: str | None = None,
                  raise_first: bool = True, config_snapshot: str | None = None) -> Preflight:
    """Run every preflight check, recording each on `st`, then raise the first failure as its
    LaneError (unless raise_first=False)."""
    ctx = CheckContext(root=Path(root).resolve(), lane=lane, profile=profile, audio=audio, transcript=transcript,
                       expected_head=expected_head, require_clean_tree=require_clean_tree,
                       weights_manifest=weights_manifest, allow_from_scratch=allow_from_scratch,
                       config_path=config_path, consent=consent, voice_profile_id=voice_profile_id,
                       snapshot=config_snapshot)
    pf = Preflight()
    if config_snapshot:  # the configuration this run froze at its start: in verify's certificate too
        st.artifact("config_snapshot", config_snapshot)
    total = len(ALL) + 1
    findings = run_checks(ctx, ALL, on_start=lambda i, n, name: st.progress(i, total, name))
    _record(st, pf, findings)
    st.stats(**ctx.stats)
    st.progress(total, total, "promotable")
    reason = promotability(ctx)
    pf.audio, pf.weights, pf.runtime = ctx.audio_inventory, ctx.weights, ctx.runtime
    pf.promotable, pf.not_promotable_reason = reason == "", reason
    pf.consent = ctx.consent_coverage
    if ctx.consent_coverage is not None:
        st.artifact("consent_record", ctx.consent_coverage.path)
        if ctx.consent_coverage.kind == "spoken":
            st.artifact("consent_audio", ctx.root / str(ctx.consent_coverage.data["audio"]["path"]))
    _certify_inputs(st, ctx, transcript)
    st.stats(promotable=pf.promotable, not_promotable_reason=reason, lane_id=ctx.spec.id if ctx.spec else lane,
             input_format=input_format)
    write_media(st, pf)
    if raise_first:
        raise_first_finding(findings)
    return pf


def _certify_inputs(st: StageRun, ctx: CheckContext, transcript: str | None) -> None:
    """inputs.json: every input of the run by content hash (the ledger certifies it; provenance cites it)."""
    from ..core.inputs import input_digests

    rows = input_digests(ctx.root, audio=ctx.audio, transcript=transcript, consent=ctx.consent,
                         weights_manifest=ctx.weights_manifest)
    path = atomic_write_text(st.stage_dir / "inputs.json", json.dumps(rows, indent=1) + "\n")
    st.artifact("inputs", path)


def write_media(st: StageRun, pf: Preflight) -> None:
    """The weights/licence table and the audio inventory as report media (text tables)."""
    mdir = media_dir(st.stage_dir)
    items = []
    if pf.weights:
        atomic_write_text(mdir / "weights.md", md_table(
            pf.weights, ["id", "role", "state", "code_license", "weights_license", "path", "source"]))
        items.append(MediaItem("table", "media/weights.md", "weights manifest: state and licences per entry",
                               "Weights and licences"))
    if pf.audio is not None:
        rows = pf.audio.table()
        text = md_table(rows[:200], ["path", "duration_s", "sample_rate", "channels", "format", "subtype", "bytes"])
        if len(rows) > 200:
            text += f"\n... and {len(rows) - 200} more file(s)\n"
        for problem in pf.audio.problems[:50]:
            text += f"\nskipped: {problem}"
        atomic_write_text(mdir / "audio_inputs.md", text)
        items.append(MediaItem("table", "media/audio_inputs.md",
                               f"audio inputs: {len(rows)} file(s), {pf.audio.total_s} s", "Audio inputs"))
    write_index(st.stage_dir, "verify", items)


def run(st: StageRun, p: StageParams) -> Preflight:
    """The verify stage's entry point (notebooks/verify.ipynb): every check recorded, the first
    failure raised as its LaneError (and written as the stage result)."""
    with st.guard():
        return run_preflight(st, root=p.root_path, lane=p.lane, profile=p.profile, audio=p.audio,
                             transcript=p.transcript, input_format=p.input_format, expected_head=p.expected_head,
                             weights_manifest=p.weights_manifest, allow_from_scratch=p.allow_from_scratch,
                             require_clean_tree=p.require_clean_tree, consent=p.consent,
                             voice_profile_id=p.voice_profile_id, config_snapshot=p.config_snapshot)
