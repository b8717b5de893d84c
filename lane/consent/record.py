"""`lane consent record`: check a spoken consent against its challenge and the recordings it covers,
and keep it as a signed record in the ledger.

In order, the first failure deciding the reason code:

1. the challenge: in the ledger and signed (else consent_not_fresh), not used by an accepted consent,
   not expired;
2. freshness of the audio: not one of the recordings, not audio an earlier consent used (sha256),
   not cut from a recording (lane.consent.fresh) -> consent_not_fresh;
3. the statement (lane.consent.speech) -> consent_statement_mismatch;
4. the voice (lane.consent.voice) -> consent_speaker_mismatch.

Accepted: the audio is copied to `consent/<voice>/<challenge>/consent.<ext>`, the record
(`voice_consent/2`, configs/schemas/spoken_consent.schema.json) written beside it and signed, and a
`consent_record` ledger entry made with both as artifacts. Refused: a `consent_record` entry with
status `refused` and the scores, so every attempt is on the record; the challenge stays open until
it expires.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from ..core.fsutil import atomic_write_json, sha256_file
from ..core.reasons import LaneError
from .challenge import RECORD_ACTION, Challenge, consent_entries, find, iso, now_utc, sign_body, used_by
from .policy import THRESHOLDS

if TYPE_CHECKING:
    from .speech import SpeechRecord
    from .voice import VoiceRecord

SCHEMA = "voice_consent/2"
FOLDER = "consent"


class FileHash(TypedDict):
    path: str
    sha256: str


class SpokenConsent(TypedDict, total=False):
    """A spoken consent record (configs/schemas/spoken_consent.schema.json), signed; `path` where it
    is kept (added by `record`), `refused` the reason code of a refused attempt (ledger only)."""

    schema: str
    kind: str
    voice_profile_id: str
    speaker: str
    permitted_use: str
    recorded_at: str
    challenge: dict[str, str | list[str]]
    audio: FileHash
    recordings: list[FileHash]
    duration_s: float
    speech: SpeechRecord
    voice: VoiceRecord
    fresh: dict[str, float]
    thresholds: dict[str, float]
    signature: dict[str, str]
    path: str
    refused: str


@dataclass
class Attempt:
    """What one consent recording was measured to be (the record's body before signing)."""

    challenge: Challenge
    audio: Path
    audio_sha256: str
    recordings: list[Path]
    hashes: list[str]
    scores: dict[str, Any] = field(default_factory=dict)
    code: str = ""
    problem: str = ""

    def fail(self, code: str, problem: str) -> None:
        if not self.code and problem:
            self.code, self.problem = code, problem


def recordings_of(audio: str, root: str | os.PathLike[str]) -> list[Path]:
    """Every recording file of an audio input (file, folder, LJSpeech folder, NeMo manifest)."""
    from ..data.probe import inspect_audio

    return [Path(f.path) for f in inspect_audio(audio, root).files]


def _check_challenge(root: Path, challenge_id: str) -> Challenge:
    ch = find(root, challenge_id)
    used = used_by(root, ch.id)
    if used:
        raise LaneError("consent_not_fresh", f"challenge {ch.id} was already used by the consent {used}: "
                        "issue a new challenge for a new recording")
    if ch.expired():
        raise LaneError("consent_not_fresh", f"challenge {ch.id} expired at {ch.expires_at}: issue a new one "
                        "(`lane consent challenge`) and record it before it expires")
    return ch


def _used_audio(root: Path) -> dict[str, str]:
    """sha256 of every consent recording an accepted consent used -> its challenge id."""
    out = {}
    for e in consent_entries(root, RECORD_ACTION):
        rec = e.get("consent") or {}
        if e.get("status") == "accepted" and (rec.get("audio") or {}).get("sha256"):
            out[str(rec["audio"]["sha256"])] = str((rec.get("challenge") or {}).get("id"))
    return out


def measure(root: Path, att: Attempt, weights_manifest: str | None) -> None:
    """Freshness, statement and voice of `att`, into att.scores (and att.code for the first failure)."""
    from ..metrics.audio import load_audio
    from . import fresh, speech, voice

    if att.audio_sha256 in att.hashes:
        att.fail("consent_not_fresh", f"{att.audio.name} is one of the recordings it should cover, not a consent")
    earlier = _used_audio(root).get(att.audio_sha256)
    if earlier:
        att.fail("consent_not_fresh", f"{att.audio.name} was already used as the consent for challenge {earlier}")
    if att.code:  # a known file: nothing to measure
        att.scores = {"fresh": {"sha256_known": True}}
        return
    x, sr = load_audio(att.audio)
    copy = fresh.copied_fraction(x, sr, att.recordings)
    att.fail("consent_not_fresh", copy.problem())
    heard = speech.check_statement(x, sr, att.challenge, speech.asr_model_dir(weights_manifest, root))
    att.fail("consent_statement_mismatch", heard.problem())
    encoder = voice.speaker_encoder(weights_manifest, root)
    cohort = voice.load_cohort()
    vr = voice.score(encoder.embed(x, sr), voice.embed_files(encoder, att.recordings), cohort.embeddings)
    att.fail("consent_speaker_mismatch", vr.problem())
    att.scores = {"duration_s": round(len(x) / sr, 2), "fresh": copy.as_dict(), "speech": heard.as_dict(),
                  "voice": {**vr.as_dict(), "cohort_sha256": cohort.sha256}}


def _rel(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path.resolve())


def _body(root: Path, att: Attempt, audio_rel: str) -> dict[str, Any]:
    ch = att.challenge
    return {"schema": SCHEMA, "kind": "spoken", "voice_profile_id": ch.voice_profile_id, "speaker": ch.speaker,
            "permitted_use": ch.use, "recorded_at": iso(now_utc()),
            "challenge": {k: v for k, v in ch.as_dict().items() if k not in ("voice_profile_id", "speaker", "use")},
            "audio": {"path": audio_rel, "sha256": att.audio_sha256},
            "recordings": [{"path": _rel(p, root), "sha256": h} for p, h in zip(att.recordings, att.hashes, strict=True)],
            **att.scores, "thresholds": THRESHOLDS.as_dict()}


def _ledger(root: Path, att: Attempt, status: str, body: dict[str, Any], artifacts: list[Path]) -> None:
    from ..core import ledger
    from ..core.fsutil import sha256_file as digest
    from .challenge import commit_sha

    arts = [{"kind": k, "path": _rel(p, root), "sha256": digest(p)}
            for k, p in zip(("consent_record", "consent_audio"), artifacts, strict=False)]
    what = "accepted" if status == "accepted" else f"refused ({att.code}: {att.problem})"
    ledger.append(root, ledger.action_entry(
        run_id=att.challenge.id, action=RECORD_ACTION, lane=None, status=status, reason=att.code or "ok",
        summary=f"spoken consent for voice {att.challenge.voice_profile_id} {what}", commit_sha=commit_sha(root),
        artifacts=arts, consent=body))


def record(root: str | os.PathLike[str], challenge_id: str, audio: str | os.PathLike[str], recordings: str,
           weights_manifest: str | None) -> SpokenConsent:
    """Check and keep a spoken consent; returns the signed record, or raises its LaneError."""
    from ..core.ids import within
    from ..core.paths import resolve_input

    rootp = Path(root).resolve()
    ch = _check_challenge(rootp, challenge_id)
    src = resolve_input(str(audio), rootp)
    if not src.is_file():
        raise LaneError("missing_audio_path", f"consent recording {audio}: no such file")
    files = recordings_of(recordings, rootp)
    att = Attempt(ch, src, sha256_file(src), files, [sha256_file(f) for f in files])
    measure(rootp, att, weights_manifest)
    if att.code:
        _ledger(rootp, att, "refused", {**_body(rootp, att, _rel(src, rootp)), "refused": att.code}, [])
        raise LaneError(att.code, att.problem)
    folder = within(rootp, FOLDER, ch.voice_profile_id, ch.id, kind="voice profile id")
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"consent{src.suffix.lower()}"
    shutil.copyfile(src, kept)
    signed = sign_body(rootp, _body(rootp, att, _rel(kept, rootp)))
    path = atomic_write_json(folder / "record.json", signed)
    _ledger(rootp, att, "accepted", {**signed, "path": _rel(path, rootp)}, [path, kept])
    return cast("SpokenConsent", {**signed, "path": _rel(path, rootp)})


def load(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> SpokenConsent:
    """A spoken consent record, its schema and signature checked; LaneError(consent_invalid) otherwise."""
    from ..core.consent import read_checked
    from .challenge import signature_problem

    data = read_checked(path, root, "spoken_consent.schema.json")
    why = signature_problem(root, data)
    if why:
        raise LaneError("consent_invalid", f"{path}: signature: {why}")
    return cast("SpokenConsent", dict(data))  # it keeps spoken_consent.schema.json (checked above)
