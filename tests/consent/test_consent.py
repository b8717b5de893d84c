"""Spoken consent (lane.consent) with real speech made by the project's tools (espeak-ng + sox): the
speaker reading the statement is accepted; another voice, another text, a statement without its
one-time words, a reused or expired challenge, reused audio and a training clip are refused with
their reason codes; the verify stage catches recordings replaced after the consent; a self-asserted
record no longer satisfies a promotable profile.

The one-time words are random (`secrets`) in use; here `draw_words` is replaced by four fixed pool
words so that what pocketsphinx hears in espeak-ng's deterministic audio is the same at every run
(bench/bench_consent.py measures the random draws). Expiry is tested by moving the clock the
challenge reads (`now_utc`) forward, not by waiting."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lane_runs import make_workspace

from lane.consent import challenge as challenge_mod
from lane.consent.challenge import Challenge, issue
from lane.consent.record import record
from lane.core import ledger
from lane.core.reasons import LaneError
from lane.data.espeak import concat, sox, speak

MANIFEST = "configs/voice/weights-manifest.example.json"
WORDS = ("teacher", "friday", "museum", "january")
SPEAKER, IMPOSTOR = "en-us", "en-us+f3"  # the demo speaker's voice, and the impostor kept out of the cohort
SENTENCES = (
    "The morning train left the station a few minutes after seven.",
    "Our neighbour repairs old radios in a small shed behind his house.",
    "A cold wind blew across the harbour as the boats came in.",
    "We walked along the river until the sun went down behind the hills.",
    "The teacher asked everyone to read the first chapter by Monday.",
    "Fresh snow covered the village during the night.",
)


def _say(text: str, voice: str, out: Path) -> Path:
    """Speech with the demo data's processing (scripts/make_demo_data.py): 165 wpm, 16 kHz mono."""
    return speak(text, out, voice=voice, rate_wpm=165, sample_rate=16000, gap_ms=300)


def _recordings(voice: str, out: Path) -> Path:
    parts = [_say(s, voice, out.parent / f"{out.stem}-{i}.wav") for i, s in enumerate(SENTENCES)]
    return concat(parts, out)


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("consent-audio")
    return {"speaker": _recordings(SPEAKER, d / "speaker.flac"), "impostor": _recordings(IMPOSTOR, d / "impostor.flac")}


@pytest.fixture(scope="module")
def fixed_words() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(challenge_mod, "draw_words", lambda n: list(WORDS[:n]))
        yield


def _workspace(path: Path, audio: dict[str, Path]) -> Path:
    ws = make_workspace(path)
    (ws / "data").mkdir(exist_ok=True)
    shutil.copy(audio["speaker"], ws / "data" / "speaker.flac")
    return ws


def _challenge(ws: Path) -> Challenge:
    return issue(ws, voice_profile_id="jane_voice", speaker="Jane Doe", use="commercial")


@pytest.fixture(scope="module")
def consented(tmp_path_factory: pytest.TempPathFactory, audio: dict[str, Path],
              fixed_words: None) -> tuple[Path, Challenge, dict[str, Any]]:
    """A workspace whose speaker read the statement and whose consent was accepted."""
    ws = _workspace(tmp_path_factory.mktemp("consented") / "ws", audio)
    ch = _challenge(ws)
    _say(ch.text, SPEAKER, ws / "takes" / "consent.wav")
    return ws, ch, record(ws, ch.id, "takes/consent.wav", "data/speaker.flac", MANIFEST)


@pytest.fixture
def ws(tmp_path: Path, consented: tuple[Path, Challenge, dict[str, Any]]) -> Path:
    """A private copy of the consented workspace, for tests that add to its ledger."""
    return Path(shutil.copytree(consented[0], tmp_path / "ws"))


def _refused(ws: Path, ch: Challenge | str, take: str) -> LaneError:
    with pytest.raises(LaneError) as refused:
        record(ws, ch if isinstance(ch, str) else ch.id, take, "data/speaker.flac", MANIFEST)
    return refused.value


# ------------------------------------------------------------------------------------------ accepted
def test_the_speaker_reading_the_statement_is_accepted_signed_and_ledgered(
        consented: tuple[Path, Challenge, dict[str, Any]]) -> None:
    from lane.consent.policy import THRESHOLDS
    from lane.consent.record import load
    from lane.core.fsutil import sha256_file

    ws, ch, rec = consented
    assert ch.words == WORDS and "I, Jane Doe, agree that voice lane may make a synthetic voice named jane voice" in ch.text
    assert len(rec["speech"]["words_heard"]) >= THRESHOLDS.words_min_heard and rec["speech"]["cer"] <= THRESHOLDS.cer_max
    assert rec["voice"]["similarity"] >= THRESHOLDS.similarity_min and rec["voice"]["snorm"] >= THRESHOLDS.snorm_min
    assert rec["fresh"]["copied"] == 0 and rec["thresholds"] == THRESHOLDS.as_dict()
    assert rec["recordings"] == [{"path": "data/speaker.flac", "sha256": sha256_file(ws / "data" / "speaker.flac")}]
    kept = ws / rec["audio"]["path"]
    assert kept.parent == ws / "consent" / "jane_voice" / ch.id and rec["audio"]["sha256"] == sha256_file(kept)
    assert load(ws / rec["path"], ws)["challenge"]["text"] == ch.text  # schema and signature
    entries = [e for e in ledger.read_entries(ws) if e["stage_id"].startswith("consent_")]
    assert [(e["stage_id"], e["status"]) for e in entries] == [("consent_challenge", "issued"), ("consent_record", "accepted")]
    assert {a["kind"] for a in entries[1]["artifacts"]} == {"consent_record", "consent_audio"}
    assert ledger.verify(ws).ok


def test_an_edited_record_no_longer_verifies(ws: Path, consented: tuple[Path, Challenge, dict[str, Any]]) -> None:
    from lane.consent.record import load

    path = ws / consented[2]["path"]
    data = json.loads(path.read_text())
    data["permitted_use"] = "commercial" if data["permitted_use"] != "commercial" else "non-commercial"
    path.write_text(json.dumps(data))
    with pytest.raises(LaneError) as bad:
        load(path, ws)
    assert bad.value.code == "consent_invalid" and "signature" in bad.value.detail


# ------------------------------------------------------------------------------------------ refused
def test_a_different_voice_reading_the_statement_is_refused(ws: Path, fixed_words: None) -> None:
    ch = _challenge(ws)
    err = _refused(ws, ch, str(_say(ch.text, IMPOSTOR, ws / "takes" / "impostor.wav")))
    assert err.code == "consent_speaker_mismatch", err.detail
    last = ledger.read_entries(ws)[-1]
    assert (last["stage_id"], last["status"], last["reason"]) == ("consent_record", "refused", "consent_speaker_mismatch")
    assert last["consent"]["voice"]["similarity"] < 1 and ledger.verify(ws).ok  # the attempt is on the record


@pytest.mark.parametrize("take", ["other_text", "no_words", "other_words"])
def test_the_right_voice_saying_something_else_is_refused(ws: Path, fixed_words: None, take: str) -> None:
    from lane.consent.words import fixed_sentence, statement

    ch = _challenge(ws)
    text = {"other_text": "A letter arrived this morning with a stamp from a distant country.",
            "no_words": fixed_sentence("Jane Doe", "jane_voice", "commercial"),
            "other_words": statement("Jane Doe", "jane_voice", "commercial", ["banana", "zebra", "rocket", "piano"])}[take]
    err = _refused(ws, ch, str(_say(text, SPEAKER, ws / "takes" / f"{take}.wav")))
    assert err.code == "consent_statement_mismatch" and "not heard" in err.detail, err.detail


def test_a_used_challenge_and_used_audio_are_refused(ws: Path, consented: tuple[Path, Challenge, dict[str, Any]],
                                                     fixed_words: None) -> None:
    ch = consented[1]
    again = _refused(ws, ch, "takes/consent.wav")
    assert again.code == "consent_not_fresh" and "already used" in again.detail
    second = _challenge(ws)  # the same words (fixed here), so only freshness can tell the takes apart
    reused = _refused(ws, second, "takes/consent.wav")
    assert reused.code == "consent_not_fresh" and f"challenge {ch.id}" in reused.detail, reused.detail


def test_an_expired_or_unknown_challenge_is_refused(ws: Path, fixed_words: None, monkeypatch: pytest.MonkeyPatch) -> None:
    ch = issue(ws, voice_profile_id="jane_voice", speaker="Jane Doe", use="commercial", valid_hours=1)
    later = challenge_mod.now_utc() + dt.timedelta(hours=2)
    monkeypatch.setattr(challenge_mod, "now_utc", lambda: later)
    expired = _refused(ws, ch, "takes/consent.wav")
    assert expired.code == "consent_not_fresh" and "expired" in expired.detail
    unknown = _refused(ws, "cc-000000000000", "takes/consent.wav")
    assert unknown.code == "consent_not_fresh" and "no challenge" in unknown.detail


@pytest.mark.parametrize("clip", ["the_recording_itself", "a_cut_reencoded"])
def test_a_training_clip_passed_off_as_the_consent_is_refused(ws: Path, fixed_words: None, clip: str) -> None:
    ch = _challenge(ws)
    take = ws / "takes" / "clip.wav"
    if clip == "the_recording_itself":
        shutil.copy(ws / "data" / "speaker.flac", ws / "takes" / "clip.flac")
        take = ws / "takes" / "clip.flac"
    else:  # seconds 3-12 of the recording, resampled, quieter, another format: a different file
        sox([str(ws / "data" / "speaker.flac"), "-r", "22050", str(take), "trim", "3", "9", "vol", "0.7"])
    err = _refused(ws, ch, str(take))
    assert err.code == "consent_not_fresh", err.detail
    assert ("one of the recordings" if clip == "the_recording_itself" else "copies a covered recording") in err.detail


# ------------------------------------------------------------------------------------------ verify
def _preflight(ws: Path, run_id: str, profile: str = "production") -> dict[str, Any]:
    from lane.core.stage import StageRun
    from lane.stages.verify import run_preflight

    st = StageRun.open("verify", root=ws, run_id=run_id)
    pf = run_preflight(st, root=ws, lane="tts_prod_train_nemo", profile=profile, audio="data/speaker.flac",
                       weights_manifest=MANIFEST, voice_profile_id="jane_voice", raise_first=False)
    return {"checks": {c.id: (c.ok, c.detail) for c in st.checks}, "codes": [e.code for e in pf.errors],
            "artifacts": {a["kind"]: a["path"] for a in st.artifacts}}


def test_verify_finds_the_spoken_consent_and_catches_recordings_replaced_after_it(
        ws: Path, audio: dict[str, Path], consented: tuple[Path, Challenge, dict[str, Any]]) -> None:
    rec = consented[2]
    ok = _preflight(ws, "v1")
    assert ok["checks"]["consent"][0] and ok["checks"]["consent_voice"][0], ok["checks"]
    assert "spoken" in ok["checks"]["consent"][1] and not {"consent_missing", "consent_speaker_mismatch"} & set(ok["codes"])
    assert ok["artifacts"]["consent_record"] == rec["path"] and ok["artifacts"]["consent_audio"] == rec["audio"]["path"]
    shutil.copy(audio["impostor"], ws / "data" / "speaker.flac")  # same name, another voice
    swapped = _preflight(ws, "v2")
    assert swapped["checks"]["consent"] == (False, swapped["checks"]["consent"][1])
    assert "changed after the consent" in swapped["checks"]["consent"][1]
    assert swapped["checks"]["consent_voice"][0] is False and "consent_speaker_mismatch" in swapped["codes"]


def test_a_self_asserted_record_no_longer_satisfies_a_promotable_profile(tmp_path: Path, audio: dict[str, Path]) -> None:
    from lane.core.fsutil import sha256_file

    ws = _workspace(tmp_path / "ws", audio)
    (ws / "data" / "speaker.consent.json").write_text(json.dumps({
        "schema": "voice_consent/1", "speaker": {"name": "Somebody Else Entirely"}, "recorded_by": "anyone",
        "permitted_use": "commercial", "date": "2099-01-01",
        "recordings": [{"path": "data/speaker.flac", "sha256": sha256_file(ws / "data" / "speaker.flac")}]}))
    prod = _preflight(ws, "p1")
    ok, detail = prod["checks"]["consent"]
    assert not ok and "consent_missing" in prod["codes"]
    assert "self-asserted" in detail and "lane consent challenge" in detail and "lane consent record" in detail
    demo = _preflight(ws, "d1", profile="demo")
    assert demo["checks"]["consent"][0] and "not required" in demo["checks"]["consent"][1]


# ------------------------------------------------------------------------------------------ CLI and pure parts
def test_the_cli_issues_a_challenge_and_refuses_a_recording_for_an_unknown_one(tmp_path: Path) -> None:
    from cli_runs import run_lane

    ws = make_workspace(tmp_path / "ws")
    done = run_lane(ws, "consent", "challenge", "--voice-profile-id", "acme_reader", "--speaker", "Jane Doe", "--json",
                    "--root", str(ws))
    ch = json.loads(done.out)
    assert done.rc == 0 and len(ch["words"]) == 4 and ch["text"].endswith(", ".join(ch["words"]) + ".")
    assert "named acme reader from my recordings, for commercial use" in ch["text"]
    bad = run_lane(ws, "consent", "challenge", "--voice-profile-id", "../x", "--speaker", "Jane", "--root", str(ws))
    assert bad.rc == 3 and "reason=config_invalid" in bad.out
    (ws / "data").mkdir()
    _say("Hello there.", SPEAKER, ws / "data" / "r.wav")
    refused = run_lane(ws, "consent", "record", "data/r.wav", "--challenge", "cc-nope", "--audio", "data/r.wav",
                       "--root", str(ws))
    assert refused.rc == 3 and "reason=consent_not_fresh" in refused.out
    shown = run_lane(ws, "consent", "show", "--root", str(ws))
    assert shown.rc == 0 and ch["id"] in shown.out and "consent_challenge" in shown.out


def test_the_statement_judgement_and_the_voice_score() -> None:
    import numpy as np

    from lane.consent.speech import judge
    from lane.consent.voice import score
    from lane.consent.words import statement

    ch = Challenge("cc-x", "v", "Jane Doe", "commercial", WORDS, statement("Jane Doe", "v", "commercial", WORDS), "", "")
    assert judge(ch.text, ch).problem() == ""
    two_left = ch.text.replace("museum", "apple").replace("teacher", "apple")
    assert judge(two_left, ch).problem() == ""  # 2 of the 4 heard, in order: the rule (lane.consent.policy)
    assert "1 of 4 heard" in judge(two_left.replace("january", "apple"), ch).problem()
    assert "not heard" in judge(" ".join(reversed(ch.text.split())), ch).problem()  # the words, out of order
    assert "use" in judge(ch.text.replace("commercial", "non commercial"), ch).problem()
    rng = np.random.default_rng(0)
    cohort = rng.standard_normal((30, 256)).astype(np.float32)
    cohort /= np.linalg.norm(cohort, axis=1, keepdims=True)
    me = rng.standard_normal(256).astype(np.float32)
    near, far = me + 0.1 * rng.standard_normal(256).astype(np.float32), rng.standard_normal(256).astype(np.float32)
    assert score(near, me, cohort).problem() == "" and score(far, me, cohort).problem() != ""


def test_the_report_row_shows_the_statement_the_scores_and_the_audio(
        consented: tuple[Path, Challenge, dict[str, Any]]) -> None:
    import base64

    from lane.consent.summary import card_lines, report_consent

    ws, ch, rec = consented
    verify = {"artifacts": [{"kind": "consent_record", "path": rec["path"], "sha256": "0" * 64},
                            {"kind": "consent_audio", "path": rec["audio"]["path"], "sha256": rec["audio"]["sha256"]}],
              "stats": {"consent_kind": "spoken", "consent_speaker": "Jane Doe", "consent_use": "commercial",
                        "consent_similarity": rec["voice"]["similarity"], "consent_snorm": rec["voice"]["snorm"]}}
    row = report_consent(ws, verify)
    assert row is not None and row["statement"] == ch.text and row["heard"] == rec["speech"]["heard"]
    assert [r["ok"] for r in row["rows"]] == [True] * 7, row["rows"]
    assert base64.b64decode(row["audio"]["data"]) == (ws / rec["audio"]["path"]).read_bytes()
    card = "\n".join(card_lines({**row, "kind": "spoken"}))
    assert "read a one-time statement" in card and "does not prove who that person is" in card
