"""The promotion policy (lane.promotion) on real runs of the fixture notebooks: GO only on complete
evidence; each hole that used to let a run reach GO now ends NO-GO with its reason code; candidates
never replace a live voice; promote and rollback are atomic ledger entries; serve refuses anything
that is not a live GO voice."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from lane_runs import STAGES, make_workspace, run_fixtures

from lane.core import ledger
from lane.core.reasons import LaneError

FULL = dict.fromkeys(STAGES, "pass")


def _run(root: Path, notebooks: dict[str, str] | None = None, profile: str = "production", **params: Any) -> Any:
    return run_fixtures(root, notebooks or FULL, extra_params={"promotable": True, **params}, profile=profile,
                        voice_profile_id="fixture_voice")


def _verdict(root: Path, run_id: str) -> tuple[str, list[str], str]:
    ts = json.loads((root / "runs" / run_id / "train_status.json").read_text())
    md = (root / "reports" / f"readiness-{run_id}.md").read_text(encoding="utf-8")
    return ts["verdict"], ts["verdict_reasons"], md


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path / "ws")


def test_complete_evidence_is_go_and_the_report_leads_with_it(ws: Path) -> None:
    out = _run(ws)
    verdict, codes, md = _verdict(ws, out.run_id)
    assert (out.status, verdict, codes) == ("completed", "GO", [])
    assert md.startswith("# Verdict: GO") and "lane promote" in md


@pytest.mark.parametrize(("case", "code", "plain"), [
    ("subset_of_stages", "stages_incomplete", "Not every stage passed in this run (validate)"),
    ("train_not_promotable", "lane_not_promotable", "the train stage trained from scratch or vocodes with Griffin-Lim"),
    ("metric_not_measured", "not_evaluated", "Some quality was not measured (cer_synth)"),
    ("metric_fails", "gate_failed", "character error rate of the synthesized speech is 0.9"),
    ("no_consent", "consent_missing", "No consent record was checked in this run."),
    ("demo_profile", "lane_not_promotable", "The demo profile is not promotable"),
])
def test_each_missing_piece_of_evidence_is_no_go(ws: Path, case: str, code: str, plain: str) -> None:
    kw: dict[str, Any] = {
        "subset_of_stages": {"notebooks": {"verify": "pass", "train": "pass", "export": "pass"}},
        "train_not_promotable": {"train_promotable": False},
        "metric_not_measured": {"skip_metric": "cer_synth"},
        "metric_fails": {"metric_values": {"cer_synth": 0.9}},
        "no_consent": {"with_consent": False},
        "demo_profile": {"profile": "demo"},
    }[case]
    out = _run(ws, **kw)
    verdict, codes, md = _verdict(ws, out.run_id)
    assert verdict == "NO-GO" and code in codes, (case, codes)
    assert plain.lower() in md.split("## Quality")[0].lower(), md[:1500]  # the reason, in plain words, first
    html = (ws / "reports" / f"readiness-{out.run_id}.html").read_text(encoding="utf-8")
    assert 'id="verdict">NO-GO<' in html and f"<code>{code}</code>" in html


def test_demo_is_no_go_only_because_it_is_not_promotable(ws: Path) -> None:
    out = _run(ws, profile="demo")
    verdict, codes, md = _verdict(ws, out.run_id)
    assert (verdict, codes) == ("NO-GO", ["lane_not_promotable"])
    assert "- [-] **speaker consent covers the kept audio and permits commercial use** — n/a" in md  # does not apply
    assert "- [-] **the profile's thresholds are at least as strict as the lane's floors** — n/a" in md


def test_a_profile_cannot_lower_the_bar_and_stay_promotable(ws: Path) -> None:
    (ws / "configs" / "profiles" / "lenient.yaml").write_text(yaml.safe_dump(
        {"extends": "production", "eval": {"thresholds": {"cer_ratio": {"max": 100}}}}))
    out = _run(ws, profile="lenient")
    verdict, codes, md = _verdict(ws, out.run_id)
    assert verdict == "NO-GO" and codes == ["thresholds_below_floor"]
    assert "sets cer_ratio to {'max': 100}" in md


def test_changed_evidence_turns_an_old_go_into_no_go(ws: Path) -> None:
    """The report is re-rendered from evidence verified now: a model swapped after the run is NO-GO."""
    from lane.report import render_report

    out = _run(ws)
    assert _verdict(ws, out.run_id)[0] == "GO"
    (ws / "bundles" / "fixture_voice" / "candidates" / out.run_id / "fastpitch.onnx").write_bytes(b"swapped")
    md = render_report(ws, out.run_id)[0].read_text(encoding="utf-8")
    assert md.startswith("# Verdict: NO-GO") and "`ledger_broken`" in md and "`bundle_invalid`" in md


# ------------------------------------------------------------------------------ candidates and promotion
def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_only_a_go_candidate_becomes_live_and_no_go_never_touches_it(ws: Path) -> None:
    from lane.bundle import store
    from lane.promotion import promote

    good = _run(ws)
    live = store.live_path(ws, "fixture_voice")
    assert not live.exists(), "a run is never live until promoted"
    promote(ws, good.run_id)
    assert live.is_symlink() and store.live_run(ws, "fixture_voice") == good.run_id
    before = _tree(live)
    bad = _run(ws, metric_values={"cer_synth": 0.9})
    assert _verdict(ws, bad.run_id)[0] == "NO-GO"
    with pytest.raises(LaneError) as refused:
        promote(ws, bad.run_id)
    assert refused.value.code == "promotion_refused" and "character error rate" in refused.value.detail
    assert store.live_run(ws, "fixture_voice") == good.run_id and _tree(live) == before  # byte-identical
    # the older GO report still verifies: nothing it certified was touched
    from lane.report import render_report

    assert render_report(ws, good.run_id)[0].read_text(encoding="utf-8").startswith("# Verdict: GO")
    entries = ledger.read_entries(ws)
    assert [e["stage_id"] for e in entries].count("promote") == 1 and ledger.verify(ws).ok


def test_promote_then_rollback_restores_the_previous_voice(ws: Path) -> None:
    from lane.bundle import store
    from lane.promotion import promote, rollback

    first, second = _run(ws), _run(ws)
    promote(ws, first.run_id)
    promote(ws, second.run_id)
    assert store.live_run(ws, "fixture_voice") == second.run_id
    rollback(ws, "fixture_voice")
    assert store.live_run(ws, "fixture_voice") == first.run_id
    with pytest.raises(LaneError) as nothing:
        rollback(ws, "fixture_voice")
    assert nothing.value.code == "rollback_unavailable"
    actions = [(e["stage_id"], e["runId"]) for e in ledger.read_entries(ws) if e["stage_id"] in ("promote", "rollback")]
    assert actions == [("promote", first.run_id), ("promote", second.run_id), ("rollback", first.run_id)]
    assert ledger.verify(ws).ok


def test_auto_promote_when_configured(ws: Path) -> None:
    from lane.bundle import store

    cfg = ws / "configs" / "lane.yaml"
    cfg.write_text(cfg.read_text() + "promotion:\n  auto_promote: true\n")
    good = _run(ws)
    assert store.live_run(ws, "fixture_voice") == good.run_id
    ts = json.loads((ws / "runs" / good.run_id / "train_status.json").read_text())
    assert ts["promoted"] == "bundles/fixture_voice/voice_bundle"
    bad = _run(ws, with_consent=False)
    assert store.live_run(ws, "fixture_voice") == good.run_id, "a NO-GO run is never promoted"
    assert _verdict(ws, bad.run_id)[1] == ["consent_missing"]


def test_the_candidate_carries_a_signed_provenance_statement(ws: Path, tmp_path: Path) -> None:
    from lane.bundle import provenance
    from lane.core.signing import trusted_keys

    out = _run(ws)
    cand = ws / "bundles" / "fixture_voice" / "candidates" / out.run_id
    prov = provenance.verify(cand, trusted_keys(ws))
    assert prov.ok and prov.verdict == "GO", prov.problems
    assert {s["name"] for s in prov.statement["subject"]} >= {"manifest.json", "validation.json", "fastpitch.onnx"}
    assert prov.predicate["run_id"] == out.run_id and prov.predicate["inputs"]
    # tampering with any file, or re-signing with a key nobody trusts, is caught offline
    (cand / "tokenizer.json").write_text('{"tokens": ["x"]}')
    assert "tokenizer.json: sha256 differs" in provenance.verify(cand, trusted_keys(ws)).problems[0]
    assert "not a trusted key" in provenance.verify(cand, {"ed25519:" + "0" * 32}).problems[0]


def test_serve_refuses_what_is_not_a_live_go_voice(ws: Path) -> None:
    from lane.promotion import promote, servable

    out = _run(ws)
    cand = ws / "bundles" / "fixture_voice" / "candidates" / out.run_id
    assert "not a live voice" in servable(cand, ws)[0]
    assert servable(cand, ws, allow_unpromoted=True) == []
    promote(ws, out.run_id)
    assert servable(ws / "bundles" / "fixture_voice" / "voice_bundle", ws) == []
    (cand / "validation.json").write_text(json.dumps({"ok": False}))
    assert servable(ws / "bundles" / "fixture_voice" / "voice_bundle", ws)  # hashes no longer verify


def test_resume_reruns_stages_whose_input_content_changed(ws: Path) -> None:
    """Replacing the recording at the same path changes every stage's fingerprint."""
    (ws / "data").mkdir()
    audio = ws / "data" / "speech.wav"
    audio.write_bytes(b"RIFF first")
    first = run_fixtures(ws, FULL, extra_params={"promotable": True}, profile="production", audio="data/speech.wav")
    same = run_fixtures(ws, FULL, run_id=first.run_id, resume=True, extra_params={"promotable": True},
                        profile="production", audio="data/speech.wav")
    assert [s["skipped"] for s in same.stages] == [True] * 4
    audio.write_bytes(b"RIFF second")
    os.utime(audio, (1, 1))
    again = run_fixtures(ws, FULL, run_id=first.run_id, resume=True, extra_params={"promotable": True},
                         profile="production", audio="data/speech.wav")
    assert [s["skipped"] for s in again.stages] == [False] * 4
    ts = json.loads((ws / "runs" / first.run_id / "train_status.json").read_text())
    assert all(s["commit_sha"] for s in ts["stages"].values())


def test_train_reasons_already_given_by_other_rules_are_named_once() -> None:
    """The demo's "Why NO-GO" once read "not promotable" five times: train's recorded reasons repeat
    the profile and base rules. Only what they do not already say is added, in train's order."""
    from lane.promotion import _train_reasons

    said = ["the demo profile is not promotable",
            "its base lane_base_fastpitch_espeak is not promotable (the weights manifest says promotable: false)"]
    why = ("the profile is not promotable; the vocoder is Griffin-Lim; "
           "its base lane_base_fastpitch_espeak is not promotable (weights manifest)")
    assert _train_reasons(why, said) == ["the vocoder is Griffin-Lim"]
    # nothing said elsewhere: every recorded reason stays, and an empty record still gives one reason
    assert _train_reasons(why, []) == [p.strip() for p in why.split(";")]
    assert _train_reasons("", said) == ["the train stage trained from scratch or vocodes with Griffin-Lim"]
