"""The consent as a reader sees it: the readiness report's consent row and the model card's lines."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

from ..core.fsutil import read_json


class ScoreRow(TypedDict):
    label: str
    value: str
    threshold: str
    ok: bool


class EmbeddedAudio(TypedDict):
    path: str
    mime: str
    data: str  # base64


class ConsentReport(TypedDict, total=False):
    """The readiness report's consent row: who, what use, and for a spoken consent the statement,
    what was heard, the scores against their thresholds and the audio."""

    path: str
    sha256: str
    speaker: str | None
    permitted_use: str | None
    kind: str
    statement: str
    challenge: str
    heard: str
    recorded_at: str | None
    rows: list[ScoreRow]
    audio: EmbeddedAudio


_MIME = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}


def _rows(rec: Mapping[str, Any], stats: Mapping[str, Any]) -> list[ScoreRow]:
    t, sp, vo, fr = rec["thresholds"], rec["speech"], rec["voice"], rec["fresh"]
    n = len(rec["challenge"]["words"])
    need = int(t.get("words_min_heard", n))
    rows = [("one-time words heard, in order", f"{len(sp['words_heard'])}/{n}", f">= {need}/{n}", len(sp["words_heard"]) >= need),
            ("statement CER", f"{sp['cer']:.3f}", f"<= {t['cer_max']}", sp["cer"] <= t["cer_max"]),
            ("voice similarity at consent", f"{vo['similarity']:.3f}", f">= {t['similarity_min']}",
             vo["similarity"] >= t["similarity_min"]),
            ("S-norm against the cohort at consent", f"{vo['snorm']:.2f}", f">= {t['snorm_min']}", vo["snorm"] >= t["snorm_min"]),
            ("copied from the recordings", f"{fr['copied']}/{fr['windows']} s", f"<= {t['copy_fraction_max']:.0%}",
             not fr["windows"] or fr["copied"] / fr["windows"] <= t["copy_fraction_max"])]
    if stats.get("consent_similarity") is not None:
        rows += [("voice similarity, this run", f"{float(stats['consent_similarity']):.3f}", f">= {t['similarity_min']}",
                  float(stats["consent_similarity"]) >= t["similarity_min"]),
                 ("S-norm, this run", f"{float(stats['consent_snorm']):.2f}", f">= {t['snorm_min']}",
                  float(stats["consent_snorm"]) >= t["snorm_min"])]
    return [ScoreRow(label=a, value=b, threshold=c, ok=d) for a, b, c, d in rows]


def report_consent(root: Path, verify: Mapping[str, Any]) -> ConsentReport | None:
    """The consent row of the readiness report from the verify stage's result: who, what use, and for
    a spoken consent the statement, what was heard, the scores against their thresholds and the audio."""
    arts = {a.get("kind"): a for a in verify.get("artifacts") or []}
    rec_art, stats = arts.get("consent_record"), verify.get("stats") or {}
    if rec_art is None:
        return None
    out = ConsentReport(path=rec_art["path"], sha256=rec_art["sha256"], speaker=stats.get("consent_speaker"),
                        permitted_use=stats.get("consent_use"), kind=stats.get("consent_kind", "self-asserted"))
    try:
        rec = read_json(root / str(rec_art["path"]))
        if out["kind"] != "spoken" or not isinstance(rec, dict):
            return out
        out.update(ConsentReport(statement=rec["challenge"]["text"], challenge=rec["challenge"]["id"],
                                 heard=rec["speech"]["heard"], recorded_at=rec.get("recorded_at"), rows=_rows(rec, stats)))
    except (OSError, ValueError, KeyError, TypeError):
        return out
    audio = arts.get("consent_audio")
    path = root / str(audio["path"]) if audio else None
    if path is not None and path.is_file() and path.suffix.lower() in _MIME:
        out["audio"] = EmbeddedAudio(path=audio["path"] if audio else "", mime=_MIME[path.suffix.lower()],
                                     data=base64.b64encode(path.read_bytes()).decode("ascii"))
    return out


def card_lines(consent: Mapping[str, Any] | None) -> list[str]:
    """The model card's consent section (the bundle manifest's `consent`)."""
    if not consent:
        return ["- No consent was given for these recordings (not promotable)."]
    if consent.get("kind") != "spoken":
        return [f"- A self-asserted record (`{consent.get('path')}`, sha256 `{consent.get('sha256')}`) names "
                f"{consent.get('speaker')} and {consent.get('permitted_use')} use; it was not checked against the voice."]
    return [f"- Consented: {consent.get('speaker')} read a one-time statement (challenge `{consent.get('challenge')}`) "
            f"permitting {consent.get('permitted_use')} use, recorded {consent.get('recorded_at')}.",
            "- Checked by voice-lane: the one-time words heard by ASR, the consent voice matched to the training "
            "recordings by speaker verification (normalised against a cohort of other voices), the audio fresh; "
            "the recordings were compared with the consent voice again in this run.",
            f"- Record `{consent.get('path')}` sha256 `{consent.get('sha256')}`, signed and in the ledger.",
            "- This shows that the voice in the recordings agreed; it does not prove who that person is."]
