"""What the verify stage checks about consent, at every run (lane.stages.checks calls these two).

`covering`: the consent for this run is found (`--consent PATH`, else the newest accepted spoken
consent in the ledger for the run's voice, else a self-asserted `<recording>.consent.json` beside
the recording), loaded (schema, signature by a trusted key), entered in the ledger as accepted, and
covers every input recording by sha256 with the use the profile needs. A self-asserted record
(`voice_consent/1`) is reported as such: it no longer satisfies a promotable profile.

`voice_again`: the consent audio still has the hash the record signed, and its voice is compared
again with the recordings as they are now (lane.consent.voice, the thresholds of the record's
policy), so recordings swapped after the consent are caught even where a hash was forged around.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.fsutil import read_json, sha256_file
from ..core.reasons import LaneError
from .challenge import RECORD_ACTION, consent_entries
from .record import SCHEMA, load

if TYPE_CHECKING:
    from .voice import VoiceCheck

HOW_TO = ("record a spoken consent: `lane consent challenge --voice-profile-id {voice} --speaker NAME --use "
          "commercial`, have the speaker read the statement it prints, then `lane consent record --challenge ID "
          "AUDIO --audio RECORDINGS`")


@dataclass
class Found:
    """The consent of a run, as verify found it."""

    path: Path
    kind: str  # spoken | self-asserted
    data: Mapping[str, Any]  # SpokenConsent, or the self-asserted record (lane.core.consent)
    sha256: str
    covered: list[Path] = field(default_factory=list)
    uncovered: list[Path] = field(default_factory=list)

    @property
    def speaker(self) -> str:
        s = self.data.get("speaker")
        return str(s.get("name") if isinstance(s, dict) else s)

    @property
    def permitted_use(self) -> str:
        return str(self.data.get("permitted_use"))


def how_to(voice: str | None) -> str:
    return HOW_TO.format(voice=voice or "VOICE")


def spoken_for(root: str | os.PathLike[str], voice: str | None) -> Path | None:
    """The newest accepted spoken consent the ledger holds for `voice` whose record file is there."""
    for e in reversed(consent_entries(root, RECORD_ACTION)):
        rec = e.get("consent") or {}
        if e.get("status") == "accepted" and voice and rec.get("voice_profile_id") == voice and rec.get("path"):
            path = Path(root) / str(rec["path"])
            if path.is_file():
                return path
    return None


def locate(root: Path, audio: str | None, explicit: str | None, voice: str | None) -> Path | None:
    from ..core.inputs import find_record

    if explicit:
        return find_record(audio, explicit, root)
    return spoken_for(root, voice) or find_record(audio, None, root)


def _in_ledger(root: Path, digest: str) -> bool:
    for e in consent_entries(root, RECORD_ACTION):
        if e.get("status") == "accepted" and any(a.get("kind") == "consent_record" and a.get("sha256") == digest
                                                 for a in e.get("artifacts") or []):
            return True
    return False


def covering(root: Path, record: Path, files: list[Path], voice: str | None) -> Found:
    """The consent at `record`, checked (LaneError consent_invalid / consent_missing when it is not
    a consent at all); coverage of `files` filled in."""
    from ..core.consent import load_record

    try:
        schema = read_json(record).get("schema")
    except (OSError, ValueError, AttributeError):
        schema = None
    digest = sha256_file(record) if record.is_file() else ""
    if schema == SCHEMA:
        data = load(record, root)
        if not _in_ledger(root, digest):
            raise LaneError("consent_invalid", f"{record.name} is not an accepted consent in the ledger "
                            "(reports/ledger.jsonl): only `lane consent record` makes one")
        if voice and data["voice_profile_id"] != voice:
            raise LaneError("consent_missing", f"{record.name} is the consent for voice {data['voice_profile_id']}, "
                            f"not {voice}")
        found = Found(record, "spoken", data, digest)
    else:
        found = Found(record, "self-asserted", load_record(record, root), digest)
    hashes = {str(r["sha256"]) for r in found.data["recordings"]}
    for p in files:
        (found.covered if sha256_file(p) in hashes else found.uncovered).append(p)
    return found


def problem(found: Found, voice: str | None) -> str:
    """'' when `found` lets a promotable voice be made from these recordings, else why not."""
    if found.kind != "spoken":
        return (f"{found.path.name} is a self-asserted record (voice_consent/1): it no longer suffices for a "
                f"promotable voice; {how_to(voice)}")
    if found.uncovered:
        return (f"the spoken consent does not cover {len(found.uncovered)} recording(s) (first: "
                f"{found.uncovered[0].name}): the recordings changed after the consent; record a new consent for them")
    if found.permitted_use != "commercial":
        return f"the spoken consent permits {found.permitted_use} use only"
    return ""


def voice_again(root: Path, found: Found, files: list[Path], weights_manifest: str | None) -> VoiceCheck:
    """Re-score the consent voice against the recordings as they are now; LaneError on a mismatch."""
    from ..metrics.audio import load_audio
    from . import voice

    audio = root / str(found.data["audio"]["path"])
    if not audio.is_file() or sha256_file(audio) != found.data["audio"]["sha256"]:
        raise LaneError("consent_invalid", f"the consent audio {found.data['audio']['path']} is missing or was "
                        "changed after the consent was recorded")
    encoder = voice.speaker_encoder(weights_manifest, root)
    cohort = voice.load_cohort()
    x, sr = load_audio(audio)
    vr = voice.score(encoder.embed(x, sr), voice.embed_files(encoder, files), cohort.embeddings)
    why = vr.problem()
    if why:
        raise LaneError("consent_speaker_mismatch", f"{why}: the recordings are not the voice that consented")
    return voice.VoiceCheck(**vr.as_dict(), audio=str(found.data["audio"]["path"]))
