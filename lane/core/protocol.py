"""The line protocol every stage and the runner speak on stdout (DESIGN.md, "Lines").

    PROGRESS stage=<stage> step=<int> total=<int> [pct=<float>] [msg="<text>"]
    STATS stage=<stage> <key>=<value> [<key>=<value> ...]
    ARTIFACT stage=<stage> kind=<kind> path=<path> sha256=<64 hex>
    [tts-prod] status=<completed|blocked|failed> reason=<code> [run_id=<id>] [lane=<lane>]

Values are bare tokens (numbers, identifiers, paths without spaces) or double-quoted strings with
JSON escapes, so quotes, `=`, spaces, newlines and unicode survive a round trip. `parse_line` never
raises: anything that is not a well-formed protocol line gives None.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

Value = int | float | str

STATUS_PREFIX = "[tts-prod]"
_KEY = r"[A-Za-z_][A-Za-z0-9_.\-/]*"
_TOKEN = re.compile(rf'\s*({_KEY})=("(?:[^"\\]|\\.)*"|[^\s"]+)')
# \Z, not $: `$` also matches before a trailing newline, which would let "a\n" pass as a bare word
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\Z|^[+-]?(inf|nan)\Z")
_BARE_OK = re.compile(r'^[^\s"=]+\Z')
STATUSES = ("completed", "blocked", "failed")


@dataclass(frozen=True)
class Progress:
    stage: str
    step: int
    total: int
    pct: float | None = None
    msg: str | None = None


@dataclass(frozen=True)
class Stats:
    stage: str
    values: dict[str, Value] = field(default_factory=dict)


@dataclass(frozen=True)
class Artifact:
    stage: str
    kind: str
    path: str
    sha256: str


@dataclass(frozen=True)
class Status:
    status: str
    reason: str
    run_id: str | None = None
    lane: str | None = None


Line = Progress | Stats | Artifact | Status


# --------------------------------------------------------------------------------------- format
def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _word(text: str) -> str:
    """A string value: bare when that parses back to the same string, quoted otherwise."""
    if text and _BARE_OK.match(text) and not _NUMBER.match(text):
        return text
    return _quote(text)


def _num(value: float | int) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(float(value))


def _value(value: Value) -> str:
    if isinstance(value, (int, float)):
        return _num(value)
    return _quote(str(value))


def format_line(line: Line) -> str:
    if isinstance(line, Progress):
        out = f"PROGRESS stage={_word(line.stage)} step={int(line.step)} total={int(line.total)}"
        if line.pct is not None:
            out += f" pct={float(line.pct):.1f}"
        if line.msg is not None:
            out += f" msg={_quote(line.msg)}"
        return out
    if isinstance(line, Stats):
        parts = [f"STATS stage={_word(line.stage)}"]
        for key, value in line.values.items():
            if not re.fullmatch(_KEY, key):
                raise ValueError(f"STATS key {key!r} is not an identifier")
            parts.append(f"{key}={_value(value)}")
        return " ".join(parts)
    if isinstance(line, Artifact):
        if not _SHA256.match(line.sha256):
            raise ValueError(f"ARTIFACT sha256 must be 64 lowercase hex, got {line.sha256!r}")
        return (f"ARTIFACT stage={_word(line.stage)} kind={_word(line.kind)} "
                f"path={_word(line.path)} sha256={line.sha256}")
    out = f"{STATUS_PREFIX} status={line.status} reason={line.reason}"
    if line.run_id:
        out += f" run_id={_word(line.run_id)}"
    if line.lane:
        out += f" lane={_word(line.lane)}"
    return out


# ---------------------------------------------------------------------------------------- parse
def _fields(rest: str, keep_raw: tuple[str, ...] = ()) -> dict[str, Value] | None:
    """key=value pairs in order; None when anything but whitespace is left over. Bare values of the
    keys in `keep_raw` stay text (a sha256 of only digits is not a number)."""
    out: dict[str, Value] = {}
    pos = 0
    while pos < len(rest):
        if rest[pos:].strip() == "":
            break
        m = _TOKEN.match(rest, pos)
        if not m:
            return None
        key, raw = m.group(1), m.group(2)
        if raw.startswith('"'):
            try:
                out[key] = json.loads(raw)
            except ValueError:
                return None
        elif _NUMBER.match(raw) and key not in keep_raw:
            out[key] = float(raw) if any(c in raw for c in ".eEn") else int(raw)
        else:
            out[key] = raw
        pos = m.end()
        if pos < len(rest) and not rest[pos].isspace():
            return None
    return out


def _text(value: Value | None) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else _num(value)


def parse_line(raw: str) -> Line | None:
    """Parse one protocol line; None for anything else (never raises)."""
    line = raw.strip()
    try:
        head, _, rest = line.partition(" ")
        if head not in ("PROGRESS", "STATS", "ARTIFACT", STATUS_PREFIX):
            return None
        fields = _fields(rest, ("sha256",) if head == "ARTIFACT" else ())
        if fields is None:
            return None
        if head == STATUS_PREFIX:
            status, reason = fields.get("status"), fields.get("reason")
            if status not in STATUSES or not isinstance(reason, str):
                return None
            return Status(status, reason, _text(fields.get("run_id")), _text(fields.get("lane")))
        stage = _text(fields.pop("stage", None))
        if stage is None:
            return None
        if head == "PROGRESS":
            step, total = fields.get("step"), fields.get("total")
            if not isinstance(step, int) or not isinstance(total, int):
                return None
            pct = fields.get("pct")
            msg = fields.get("msg")
            return Progress(stage, step, total,
                            float(pct) if isinstance(pct, (int, float)) else None,
                            _text(msg))
        if head == "STATS":
            return Stats(stage, fields)
        kind, path, sha = _text(fields.get("kind")), _text(fields.get("path")), fields.get("sha256")
        if kind is None or path is None or not isinstance(sha, str) or not _SHA256.match(sha):
            return None
        return Artifact(stage, kind, path, sha)
    except Exception:  # a malformed line is ignored, never a crash
        return None


def parse_lines(text: str) -> list[Line]:
    return [p for p in (parse_line(x) for x in text.splitlines()) if p is not None]


# ----------------------------------------------------------------------------------------- emit
Sink = Callable[[str], None]
_sinks: list[Sink] = []


def add_sink(sink: Sink) -> None:
    """Also send every emitted line to `sink` (e.g. the orchestrator log)."""
    _sinks.append(sink)


def remove_sink(sink: Sink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def emit(line: Line | str, stream: TextIO | None = None) -> str:
    text = line if isinstance(line, str) else format_line(line)
    out = stream or sys.stdout
    print(text, file=out, flush=True)
    for sink in list(_sinks):
        sink(text)
    return text


def progress(stage: str, step: int, total: int, msg: str | None = None) -> str:
    pct = 100.0 * step / total if total > 0 else None
    return emit(Progress(stage, step, total, pct, msg))


def stats(stage: str, **values: Value) -> str:
    return emit(Stats(stage, dict(values)))


def artifact(stage: str, kind: str, path: str, sha256: str) -> str:
    return emit(Artifact(stage, kind, path, sha256))


def status(status: str, reason: str, run_id: str | None = None, lane: str | None = None) -> str:
    return emit(Status(status, reason, run_id, lane))
