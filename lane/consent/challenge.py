"""A one-time consent challenge: the statement a speaker must read, issued as a signed ledger entry.

`issue` draws the one-time words, writes the challenge (id, voice, speaker, use, text, words, issue
time, expiry) into the ledger as a `consent_challenge` entry whose `consent_challenge` field is
signed on its own (so it verifies with lane.core.signing whatever else the ledger format carries),
and returns it. `find` reads it back, refusing one that is missing or not signed by a trusted key:
a statement cannot be invented after the fact. `used_by` says which accepted consent consumed it.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..core.fsutil import canonical_json
from ..core.ledger import LedgerEntry
from ..core.reasons import LaneError
from .policy import THRESHOLDS
from .words import check_speaker_name, draw_words, statement

CHALLENGE_ACTION = "consent_challenge"
RECORD_ACTION = "consent_record"


@dataclass(frozen=True)
class Challenge:
    id: str
    voice_profile_id: str
    speaker: str
    use: str
    words: tuple[str, ...]
    text: str
    issued_at: str
    expires_at: str

    def as_dict(self) -> dict[str, str | list[str]]:
        return {**asdict(self), "words": list(self.words)}

    def expired(self, now: _dt.datetime | None = None) -> bool:
        return (now or now_utc()) >= _parse(self.expires_at)


def now_utc() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0)


def iso(t: _dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _parse(text: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def sign_body(root: str | os.PathLike[str], body: Mapping[str, Any]) -> dict[str, Any]:
    """`body` with a `signature` over its canonical JSON (the workspace's signing key)."""
    from ..core.signing import load_signer

    plain = {k: v for k, v in body.items() if k != "signature"}
    return {**plain, "signature": load_signer(root).sign(canonical_json(plain).encode("utf-8"))}


def signature_problem(root: str | os.PathLike[str], body: Mapping[str, Any]) -> str:
    """'' when `body` carries a valid signature by a trusted key, else why not."""
    from ..core.signing import trusted_keys, verify_signature

    plain = {k: v for k, v in body.items() if k != "signature"}
    sig = body.get("signature")
    return verify_signature(canonical_json(plain).encode("utf-8"), sig if isinstance(sig, Mapping) else None,
                            trusted_keys(root))


def commit_sha(root: str | os.PathLike[str]) -> str:
    from ..core.paths import commit_of

    return commit_of(root).sha or ""


def issue(root: str | os.PathLike[str], *, voice_profile_id: str, speaker: str, use: str,
          valid_hours: float | None = None) -> Challenge:
    """A new challenge, entered in the ledger (signed); LaneError(config_invalid) for bad arguments."""
    from ..core import ledger
    from ..core.ids import check_id

    hours = THRESHOLDS.valid_hours_default if valid_hours is None else float(valid_hours)
    try:
        check_id("voice profile id", voice_profile_id)
        name = check_speaker_name(speaker)
        if not 0 < hours <= THRESHOLDS.valid_hours_max:
            raise ValueError(f"a challenge is valid for more than 0 and at most {THRESHOLDS.valid_hours_max:g} hours")
        words = draw_words(THRESHOLDS.words)
        text = statement(name, voice_profile_id, use, words)
    except (ValueError, LaneError) as exc:
        raise LaneError("config_invalid", str(getattr(exc, "detail", exc))) from None
    now = now_utc()
    ch = Challenge(f"cc-{secrets.token_hex(6)}", voice_profile_id, name, use, tuple(words), text, iso(now),
                   iso(now + _dt.timedelta(hours=hours)))
    entry = ledger.action_entry(run_id=ch.id, action=CHALLENGE_ACTION, lane=None, status="issued", reason="ok",
                                summary=f"consent challenge for voice {voice_profile_id} ({name}, {use} use), "
                                        f"valid until {ch.expires_at}",
                                commit_sha=commit_sha(root), consent_challenge=sign_body(root, ch.as_dict()))
    ledger.append(root, entry)
    return ch


def consent_entries(root: str | os.PathLike[str], action: str) -> list[LedgerEntry]:
    """The ledger's entries of one consent action, oldest first."""
    from ..core.ledger import read_entries

    return [e for e in read_entries(root) if e.get("stage_id") == action]


def find(root: str | os.PathLike[str], challenge_id: str) -> Challenge:
    """The challenge as the ledger records it; LaneError(consent_not_fresh) when there is none or its
    signature does not verify."""
    for e in reversed(consent_entries(root, CHALLENGE_ACTION)):
        body = e.get("consent_challenge")
        if isinstance(body, dict) and body.get("id") == challenge_id:
            why = signature_problem(root, body)
            if why:
                raise LaneError("consent_not_fresh", f"challenge {challenge_id}: its ledger entry's signature: {why}")
            fields = {k: body[k] for k in Challenge.__dataclass_fields__}
            return Challenge(**{**fields, "words": tuple(fields["words"])})
    raise LaneError("consent_not_fresh", f"no challenge {challenge_id} in the ledger: issue one with "
                    "`lane consent challenge` and read that statement")


def used_by(root: str | os.PathLike[str], challenge_id: str) -> str | None:
    """The consent record that already used this challenge (its path), or None."""
    for e in consent_entries(root, RECORD_ACTION):
        rec = e.get("consent") or {}
        if e.get("status") == "accepted" and (rec.get("challenge") or {}).get("id") == challenge_id:
            return str(rec.get("path") or e.get("runId"))
    return None
