"""What `lane consent challenge | record | show` print (lane/cli.py parses the flags)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.reasons import LaneError
from .policy import THRESHOLDS


def _say(line: str = "") -> None:
    print(line, flush=True)


def challenge_cli(root: Path, voice: str, speaker: str, use: str, valid_hours: float | None, as_json: bool) -> int:
    from .challenge import issue

    try:
        ch = issue(root, voice_profile_id=voice, speaker=speaker, use=use, valid_hours=valid_hours)
    except LaneError as err:
        _say(f"status=blocked reason={err.code} detail={err.detail}")
        return err.exit_code
    if as_json:
        _say(json.dumps(ch.as_dict(), indent=1))
        return 0
    _say(f"challenge {ch.id} for voice {ch.voice_profile_id}, valid until {ch.expires_at} (signed into the ledger)")
    _say("The speaker reads this aloud, once, in their own voice, and records it:")
    _say()
    _say(f"    {ch.text}")
    _say()
    _say(f"then: lane consent record --challenge {ch.id} CONSENT_AUDIO --audio RECORDINGS")
    return 0


def _scores(rec: Mapping[str, Any]) -> list[str]:
    t, sp, vo, fr = rec["thresholds"], rec["speech"], rec["voice"], rec["fresh"]
    return [f"  heard: {sp['heard']!r}",
            f"  statement: one-time words heard {len(sp['words_heard'])}/{len(rec['challenge']['words'])}, "
            f"CER {sp['cer']:.2f} (<= {t['cer_max']})",
            f"  voice: similarity {vo['similarity']:.3f} (>= {t['similarity_min']}), S-norm {vo['snorm']:.2f} "
            f"(>= {t['snorm_min']}) against {vo['cohort_size']} cohort voices",
            f"  fresh: {fr['copied']} of {fr['windows']} s copied from the recordings (best correlation "
            f"{fr['best_ncc']:.2f}; refused above {t['copy_fraction_max']:.0%})"]


def record_cli(root: Path, challenge_id: str, audio: str, recordings: str, weights_manifest: str | None) -> int:
    from .challenge import RECORD_ACTION, consent_entries
    from .record import record

    try:
        rec = record(root, challenge_id, audio, recordings, weights_manifest)
    except LaneError as err:
        last = [e for e in consent_entries(root, RECORD_ACTION) if e.get("runId") == challenge_id]
        body = (last[-1].get("consent") or {}) if last else {}
        if body.get("speech") and body.get("voice"):
            for line in _scores(body):
                _say(line)
        _say(f"status=blocked reason={err.code} detail={err.detail}")
        return err.exit_code
    _say(f"consent accepted: {rec['path']} (voice {rec['voice_profile_id']}, {rec['speaker']}, "
         f"{rec['permitted_use']} use, covers {len(rec['recordings'])} recording(s))")
    for line in _scores(rec):
        _say(line)
    return 0


def show_cli(root: Path, voice: str | None) -> int:
    from .challenge import CHALLENGE_ACTION, RECORD_ACTION, consent_entries

    rows = consent_entries(root, CHALLENGE_ACTION) + consent_entries(root, RECORD_ACTION)
    rows.sort(key=lambda e: str(e.get("ts")))
    for e in rows:
        body = e.get("consent_challenge") or e.get("consent") or {}
        v = body.get("voice_profile_id")
        if voice and v != voice:
            continue
        _say(f"{e.get('ts')}  {e.get('stage_id'):<17} {e.get('runId')}  {e.get('status'):<8} {v}  {e.get('behavior_delta')}")
    _say(f"thresholds: {json.dumps(THRESHOLDS.as_dict())}")
    return 0


def verify_cli(path: str | os.PathLike[str], recordings: list[str], root: Path, voice: str | None) -> int:
    """`lane verify-consent RECORD [AUDIO ...]`: a spoken record's schema, signature, ledger entry and
    coverage (a self-asserted one is checked as before, and said to be self-asserted)."""
    from ..core.paths import resolve_input
    from .gate import covering, problem

    try:
        found = covering(root, resolve_input(str(path), root), [resolve_input(r, root) for r in recordings], voice)
    except LaneError as err:
        _say(f"status=blocked reason={err.code} detail={err.detail}")
        return err.exit_code
    why = problem(found, voice or found.data.get("voice_profile_id")) if recordings or found.kind != "spoken" else ""
    _say(f"consent {path} ({found.kind}): speaker {found.speaker!r}, {found.permitted_use} use, "
         f"{len(found.data['recordings'])} recording(s), sha256 {found.sha256[:16]}" + (f"; {why}" if why else ""))
    return 0 if not why else LaneError("consent_missing").exit_code
