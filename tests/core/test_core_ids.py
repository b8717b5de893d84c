"""Identifiers that become paths (run id, voice profile id, lane, profile, stage) pass one gate: a
strict pattern, and a resolved path inside its root. Every entry point is refused before any file
is written: the CLI, environment variables and config files (the HTTP API is tested with serving)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from lane.core.ids import check_id, id_path, within
from lane.core.reasons import LaneError

BAD = ["/etc", "/tmp/x", "../x", "a/../../b", "..", "a/b", "", ".hidden", "x" * 101,
       "ｒｕｎ",            # fullwidth letters
       "run∕id",           # U+2215 division slash, looks like '/'
       "ruп",              # Cyrillic 'п'
       "run\u200bid",      # zero-width space
       "run id", "run\nid", "C:\\\\x"]


@pytest.mark.parametrize("value", BAD)
def test_bad_identifiers_are_refused(value: str) -> None:
    with pytest.raises(LaneError) as err:
        check_id("run id", value)
    assert err.value.code == "run_not_found"
    with pytest.raises(LaneError) as err2:
        check_id("voice profile id", value)
    assert err2.value.code == "config_invalid"
    with pytest.raises(LaneError) as err3:
        check_id("lane", value)
    assert err3.value.code == "unknown_lane"


@pytest.mark.parametrize("value", ["20261130T120000Z-abc123", "demo_voice", "tts_prod_train_nemo", "v1.2-final"])
def test_good_identifiers_pass(value: str) -> None:
    assert check_id("run id", value) == value


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / "runs").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "runs" / "evil")
    with pytest.raises(LaneError) as err:
        id_path(root, "runs", "run id", "evil")
    assert err.value.code == "run_not_found" and "outside" in err.value.detail
    assert within(root, "runs", "fine") == root / "runs" / "fine"


def _entries(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.mark.parametrize("how", ["flag_absolute", "flag_parent", "env", "symlink"])
def test_resume_ids_never_become_paths(ws: Path, lane_cli: Any, tmp_path_factory: pytest.TempPathFactory,
                                       how: str) -> None:
    outside = tmp_path_factory.mktemp("outside") / "victim"  # ws is tmp_path itself: keep the victim out of it
    outside.mkdir()
    (outside / "keep.txt").write_text("untouched")
    args, env = ["run", "--audio", "data/speech.wav"], {}
    if how == "flag_absolute":
        args += ["--resume", str(outside)]
    elif how == "flag_parent":
        args += ["--resume", f"../../{outside.parent.name}/victim"]
    elif how == "env":
        env = {"LANE_RUN_ID": "../../victim"}
    else:
        (ws / "runs").mkdir(exist_ok=True)
        os.symlink(outside, ws / "runs" / "victim")
        args += ["--resume", "victim"]
    done = lane_cli(ws, *args, env=env)
    assert done.rc == 3 and done.last_status.startswith("[tts-prod] status=failed reason=run_not_found")
    assert _entries(outside) == {"keep.txt"} and (outside / "keep.txt").read_text() == "untouched"
    assert done.train_status()["reason"] == "run_not_found"


@pytest.mark.parametrize("source", ["flag", "env", "config"])
def test_voice_profile_id_is_checked_before_any_stage(ws: Path, lane_cli: Any, source: str) -> None:
    bad = "../../escape"
    args, env = ["run", "--audio", "data/speech.wav"], {}
    if source == "flag":
        args += ["--voice-profile-id", bad]
    elif source == "env":
        env = {"VOICE_PROFILE_ID": bad}
    else:
        cfg = ws / "configs" / "lane.yaml"
        cfg.write_text(cfg.read_text().replace("voice_profile_id: demo_voice", f'voice_profile_id: "{bad}"'))
    done = lane_cli(ws, *args, env=env)
    assert done.rc == 3 and "reason=config_invalid" in done.last_status
    assert not (ws / "runs").exists() or not any((ws / "runs").iterdir()), "no stage may start"
    assert not (ws.parent / "escape").exists()


@pytest.mark.parametrize("command", [["status", "../../etc"], ["report", "/etc"], ["status", "--lane", "../x"]])
def test_read_commands_refuse_path_ids(ws: Path, lane_cli: Any, command: list[str]) -> None:
    done = lane_cli(ws, *command, "--root", str(ws))
    assert done.rc == 3 and ("run_not_found" in done.err or "unknown_lane" in done.err), done.err
    assert not (ws / "reports").exists() or not list((ws / "reports").glob("readiness-*"))


def test_profiles_and_lanes_by_name_only(tmp_path: Path) -> None:
    from lane.core.config import load_profile
    from lane.core.lanes import load_lane

    with pytest.raises(LaneError) as err:
        load_profile("../../lanes/tts_prod_train_nemo", tmp_path)
    assert err.value.code == "config_invalid"
    with pytest.raises(LaneError) as err2:
        load_lane(tmp_path, "ｔｔｓ")
    assert err2.value.code == "unknown_lane"
    assert json.dumps(BAD)  # the list itself is printable (no surrogate noise)
