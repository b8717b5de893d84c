"""Speaker consent: a record that the speaker agreed to have a voice made from these recordings.

A record (configs/schemas/consent.schema.json, `voice_consent/1`) names the speaker, who recorded,
the permitted use (commercial, non-commercial or research), the date (and an optional expiry) and the
sha256 of every recording it covers. It is an input of the run: `--consent PATH` / LANE_CONSENT, or
`<name>.consent.json` beside a recording `<name>.<ext>`, or `consent.json` in an input folder.

Such a record is self-asserted: any JSON naming the recordings' hashes would pass. It no longer
satisfies a promotable profile, which needs a spoken consent (lane.consent: the speaker's own voice
reading a one-time statement, checked by ASR and speaker verification); lane.consent.gate reads both
kinds, and this module stays the reader of the old one (`voice_consent/1`).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, cast

from .fsutil import read_json, sha256_file
from .paths import config_file
from .reasons import LaneError

SCHEMA_ID = "voice_consent/1"


class Speaker(TypedDict, total=False):
    name: str
    id: str
    contact: str


class Recording(TypedDict, total=False):
    path: str
    sha256: str


class ConsentRecord(TypedDict, total=False):
    """A self-asserted consent record (voice_consent/1, configs/schemas/consent.schema.json)."""

    schema: str
    speaker: Speaker
    recorded_by: str
    permitted_use: str
    scope: str
    date: str
    expires: str | None
    statement: str
    recordings: list[Recording]


class ConsentSummary(TypedDict):
    """What the verify stage reports of a self-asserted consent (Coverage.summary)."""

    path: str
    sha256: str
    speaker: str
    permitted_use: str
    date: str
    expires: str | None
    recordings: int


@dataclass
class Coverage:
    record: Path
    sha256: str
    data: ConsentRecord
    covered: list[Path] = field(default_factory=list)
    uncovered: list[Path] = field(default_factory=list)

    @property
    def speaker(self) -> str:
        return str(self.data["speaker"]["name"])

    @property
    def permitted_use(self) -> str:
        return str(self.data["permitted_use"])

    @property
    def expired(self) -> bool:
        exp = self.data.get("expires")
        return bool(exp) and _dt.date.fromisoformat(str(exp)) < _dt.date.today()

    def summary(self) -> ConsentSummary:
        return ConsentSummary(path=str(self.record), sha256=self.sha256, speaker=self.speaker,
                              permitted_use=self.permitted_use, date=self.data["date"], expires=self.data.get("expires"),
                              recordings=len(self.data["recordings"]))


def load_record(path: Path, root: str | os.PathLike[str] = ".") -> ConsentRecord:
    """The record, checked against its schema; LaneError(consent_invalid) otherwise."""
    data = read_checked(path, root, "consent.schema.json")
    return cast("ConsentRecord", data)  # it keeps the schema (checked above)


def read_checked(path: str | os.PathLike[str], root: str | os.PathLike[str], schema_name: str) -> dict[str, object]:
    """A consent file (either kind) read and checked against `configs/schemas/<schema_name>`:
    LaneError(consent_missing) when it is not there, consent_invalid when it is not JSON or breaks
    the schema (the first error, with where)."""
    import jsonschema

    try:
        data = read_json(path)
    except FileNotFoundError:
        raise LaneError("consent_missing", f"consent record {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise LaneError("consent_invalid", f"{path}: not JSON ({exc})") from None
    schema = read_json(config_file(root, "schemas", schema_name))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise LaneError("consent_invalid", f"{path}: {where}: {errors[0].message}")
    return dict(data)


def coverage(record: Path, recordings: list[Path], root: str | os.PathLike[str] = ".") -> Coverage:
    """Which of `recordings` the record covers (by content hash, whatever their paths)."""
    data = load_record(record, root)
    hashes = {str(r["sha256"]) for r in data["recordings"]}
    cov = Coverage(record, sha256_file(record), data)
    for p in recordings:
        (cov.covered if sha256_file(p) in hashes else cov.uncovered).append(p)
    return cov
