"""The run's configuration frozen at its start (lane.core.snapshot): what it holds, that every ledger
entry of the run binds it, that stages read it instead of the live files, that a changed config file
is reported (drift), and that a resume under another configuration is refused (config_changed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from lane_runs import make_workspace

from lane.core import ledger, snapshot
from lane.core.config import Settings


def test_the_snapshot_holds_the_resolved_configuration_and_its_sources(tmp_path: Path) -> None:
    root = make_workspace(tmp_path / "ws")
    doc = snapshot.build(root, "r1", Settings(profile="production").as_dict())
    assert doc["profile"]["promotable"] is True and doc["profile"]["name"] == "production"
    assert doc["thresholds"]["cer_synth"] == {"max": 0.5}  # from base.yaml, through `extends`
    assert doc["lane"]["id"] == "tts_prod_train_nemo" and doc["lane"]["promotable"] is True
    ids = [e["id"] for e in doc["weights"]["manifest"]["entries"]]
    assert "lane_base_fastpitch_espeak" in ids and doc["weights"]["sha256"]
    assert "unknown" in [d.lower() for d in doc["licence_policy"]["deny"]]
    assert {"configs/profiles/production.yaml", "configs/profiles/base.yaml", "configs/lanes/tts_prod_train_nemo.yaml",
            "configs/voice/weights-manifest.example.json", "configs/licenses.yaml", "configs/lane.yaml"} \
        <= set(doc["sources"])
    assert snapshot.encode(doc) == snapshot.encode(json.loads(snapshot.encode(doc)))  # canonical


def test_stages_read_the_frozen_profile_and_a_changed_file_is_reported(tmp_path: Path) -> None:
    from lane.stages.params import StageParams

    root = make_workspace(tmp_path / "ws")
    run_dir = root / "runs" / "r1"
    snap, changed = snapshot.freeze(root, run_dir, "r1", Settings(profile="production").as_dict())
    assert changed == [] and (run_dir / snapshot.MANIFEST_COPY).read_bytes() == \
        (root / "configs" / "voice" / "weights-manifest.example.json").read_bytes()
    prod = root / "configs" / "profiles" / "production.yaml"
    prod.write_text(prod.read_text() + "promotable: false\n")
    p = StageParams(root=str(root), run_id="r1", profile="production", config_snapshot=str(snap.path))
    assert p.profile_config()["promotable"] is True  # the frozen one, not the file as it is now
    assert StageParams(root=str(root), profile="production").profile_config()["promotable"] is False  # by hand: live
    assert snapshot.drift(root, snap) == ["configs/profiles/production.yaml (changed)"]
    again, changed = snapshot.freeze(root, run_dir, "r1", Settings(profile="production").as_dict())
    assert again.sha256 == snap.sha256 and changed == ["configs/profiles/production.yaml changed"]
    _, same = snapshot.freeze(root, run_dir, "r1", Settings(profile="production", stages=["verify"],
                                                               cell_timeout_s=5).as_dict())
    assert same == ["configs/profiles/production.yaml changed"]  # runner-only settings are no difference


def test_every_entry_of_a_run_binds_its_snapshot_and_a_resume_under_another_configuration_is_refused(
        tmp_path: Path, runner: Any) -> None:
    root = make_workspace(tmp_path / "ws")
    first = runner(root, {"verify": "pass", "train": "pass"}, profile="production")
    assert first.status == "completed"
    snap = snapshot.Snapshot.read(root / "runs" / first.run_id / snapshot.SNAPSHOT_FILE)
    for entry in ledger.read_entries(root):
        rows = {r["kind"]: r for r in entry["evidence"]}
        assert rows["config_snapshot"]["sha256"] == snap.sha256
        assert rows["stage_result"]["path"] == f"runs/{first.run_id}/{entry['stage_id']}/result.json"
        assert rows["run_settings"]["path"] == f"runs/{first.run_id}/settings.json"
    assert json.loads((root / "runs" / first.run_id / "train" / "result.json").read_text())["run_id"] == first.run_id
    prod = root / "configs" / "profiles" / "production.yaml"
    prod.write_text(yaml.safe_dump({**yaml.safe_load(prod.read_text()), "promotable": False}))
    resumed = runner(root, {"verify": "pass", "train": "pass"}, run_id=first.run_id, resume=True, profile="production")
    assert (resumed.status, resumed.reason) == ("failed", "config_changed")
    assert "configs/profiles/production.yaml changed" in resumed.detail
    assert snapshot.Snapshot.read(snap.path).sha256 == snap.sha256  # never rewritten
    assert ledger.verify(root).ok
