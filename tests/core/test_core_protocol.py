"""Property tests for the line protocol: what is formatted parses back to the same value (quoting,
spaces, unicode, `=` in values), and malformed lines are ignored, never a crash."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lane.core import protocol
from lane.core.protocol import Artifact, Progress, Stats, Status, format_line, parse_line, parse_lines

texts = st.text(min_size=1, max_size=40)
tricky = st.sampled_from(['a b', 'x=y', 'quote"inside', 'back\\slash', 'ünïcødé ✓ 音声', '=', '"', '  lead',
                          'trail  ', 'tab\there', 'new\nline', '123', '-4.5e3', 'nan', 'inf', ''])
words = st.one_of(texts, tricky.filter(bool))
keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\-/]{0,12}", fullmatch=True).filter(lambda k: k != "stage")
finite = st.floats(allow_nan=False, allow_infinity=True, width=64)
values = st.one_of(st.integers(min_value=-(10**18), max_value=10**18), finite, words, tricky)
sha = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)


@settings(max_examples=300, deadline=None)
@given(stage=words, step=st.integers(0, 10**9), total=st.integers(0, 10**9),
       pct=st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6)), msg=st.one_of(st.none(), words, tricky))
def test_progress_round_trip(stage: str, step: int, total: int, pct: float | None, msg: str | None) -> None:
    line = Progress(stage, step, total, pct, msg)
    parsed = parse_line(format_line(line))
    assert isinstance(parsed, Progress)
    assert (parsed.stage, parsed.step, parsed.total, parsed.msg) == (stage, step, total, msg)
    if pct is None:
        assert parsed.pct is None
    else:
        assert parsed.pct is not None and math.isclose(parsed.pct, float(f"{pct:.1f}"))


@settings(max_examples=300, deadline=None)
@given(stage=words, vals=st.dictionaries(keys, values, max_size=6))
def test_stats_round_trip(stage: str, vals: dict[str, protocol.Value]) -> None:
    text = format_line(Stats(stage, vals))
    assert "\n" not in text
    parsed = parse_line("  " + text + "  ")
    assert isinstance(parsed, Stats)
    assert parsed.stage == stage
    assert parsed.values.keys() == vals.keys()
    for k, v in vals.items():
        got = parsed.values[k]
        assert type(got) is type(v), (k, v, got)
        assert got == v


@settings(max_examples=200, deadline=None)
@given(stage=words, kind=words, path=words, digest=sha)
def test_artifact_round_trip(stage: str, kind: str, path: str, digest: str) -> None:
    assert parse_line(format_line(Artifact(stage, kind, path, digest))) == Artifact(stage, kind, path, digest)


@settings(max_examples=200, deadline=None)
@given(status=st.sampled_from(protocol.STATUSES), reason=st.from_regex(r"[a-z][a-z0-9_]{0,30}", fullmatch=True),
       run_id=st.one_of(st.none(), words), lane=st.one_of(st.none(), words))
def test_status_round_trip(status: str, reason: str, run_id: str | None, lane: str | None) -> None:
    assert parse_line(format_line(Status(status, reason, run_id, lane))) == Status(status, reason, run_id, lane)


def test_seed_status_line_is_exact() -> None:
    assert format_line(Status("blocked", "managed_job_not_implemented")) == \
        "[tts-prod] status=blocked reason=managed_job_not_implemented"
    assert parse_line("[tts-prod] status=blocked reason=managed_job_not_implemented") == \
        Status("blocked", "managed_job_not_implemented")


@settings(max_examples=500, deadline=None)
@given(raw=st.one_of(st.text(max_size=200),
                     st.builds(lambda h, t: h + t,
                               st.sampled_from(["PROGRESS ", "STATS ", "ARTIFACT ", "[tts-prod] ", "PROGRESS", ""]),
                               st.text(max_size=120))))
def test_arbitrary_text_never_crashes(raw: str) -> None:
    parsed = parse_line(raw)
    assert parsed is None or isinstance(parsed, Progress | Stats | Artifact | Status)
    parse_lines(raw)


@pytest.mark.parametrize("raw", [
    "PROGRESS stage=a step=x total=3",
    "PROGRESS stage=a step=1",
    "PROGRESS step=1 total=2",
    "PROGRESS stage=a step=1 total=2 junk",
    "PROGRESS stage=a step=1 total=2 msg=\"unterminated",
    "progress stage=a step=1 total=2",
    "STATS",
    "STATS loss=1.0",
    'STATS stage=a key="bad \\q escape"',
    "STATS stage=a =1",
    "ARTIFACT stage=a kind=b path=c sha256=zz",
    "ARTIFACT stage=a kind=b sha256=" + "0" * 64,
    "[tts-prod] status=weird reason=x",
    "[tts-prod] reason=x",
    "[tts-prod]status=completed reason=ok",
    "xPROGRESS stage=a step=1 total=2",
    "",
    "   ",
])
def test_malformed_lines_are_ignored(raw: str) -> None:
    assert parse_line(raw) is None


def test_parse_lines_picks_protocol_lines_out_of_noise() -> None:
    text = "\n".join(["hello", "PROGRESS stage=v step=1 total=2", "check x: ok", 'STATS stage=v a=1 b="x y"',
                      "Traceback (most recent call last):", "[tts-prod] status=completed reason=ok run_id=r lane=l"])
    kinds = [type(x).__name__ for x in parse_lines(text)]
    assert kinds == ["Progress", "Stats", "Status"]
