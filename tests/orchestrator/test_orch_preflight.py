"""Preflight pieces the orchestrator and the verify stage share: the lane registry, the head check on
a real git repository, the audio inventory on real (espeak-made) and broken inputs, the config schema,
and the settings precedence."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lane.core.config import resolve_settings, validate_config_file
from lane.core.lanes import load_lane
from lane.core.reasons import LaneError
from lane.data.probe import inspect_audio
from lane.stages.checks import check_head

REPO = Path(__file__).resolve().parents[2]


def _code(fn, *a, **kw) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(LaneError) as info:
        fn(*a, **kw)
    return info.value.code


# ------------------------------------------------------------------------------ lanes
def test_lane_registry_resolves_aliases_and_legacy_job_types() -> None:
    nemo = load_lane(REPO, "tts_prod_train_nemo")
    assert (nemo.status, nemo.promotable, nemo.runtime) == ("primary", True, "nemo")
    for name in ("tts_prod_train", "train", "tts_voice_train"):
        spec = load_lane(REPO, name)
        assert spec.id == "tts_prod_train_nemo" and spec.name == name and spec.promotable
        assert spec.chain == (name, "tts_prod_train_nemo")
    assert load_lane(REPO, "tts_prod_train_espnet").runtime == "espnet"
    exp = load_lane(REPO, "audiocraft_experimental")
    assert not exp.promotable and exp.not_promotable_reason == "experimental_lane"


@pytest.mark.parametrize("name", ["nope", "../configs/lane", "", ".hidden"])
def test_unknown_lane(name: str) -> None:
    assert _code(load_lane, REPO, name) == "unknown_lane"


def test_bad_lane_files_are_config_invalid(tmp_path: Path) -> None:
    d = tmp_path / "configs" / "lanes"
    d.mkdir(parents=True)
    base = {"status": "alias", "promotable": True, "runtime": "nemo", "stages": ["verify"], "description": "x"}
    (d / "a.yaml").write_text(yaml.safe_dump({**base, "id": "a", "alias_of": "b"}))
    (d / "b.yaml").write_text(yaml.safe_dump({**base, "id": "b", "alias_of": "a"}))
    assert _code(load_lane, tmp_path, "a") == "config_invalid"  # alias cycle
    (d / "c.yaml").write_text(yaml.safe_dump({**base, "id": "c", "status": "primary", "runtime": "tensorflow"}))
    assert _code(load_lane, tmp_path, "c") == "config_invalid"
    (d / "e.yaml").write_text(yaml.safe_dump({**base, "id": "other", "status": "primary"}))
    assert _code(load_lane, tmp_path, "e") == "config_invalid"  # id differs from the file name


# ------------------------------------------------------------------------------ head
@pytest.fixture
def git_repo(tmp_path: Path) -> tuple[Path, str]:
    if not shutil.which("git"):
        pytest.skip("git not installed")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, env=env)
    (tmp_path / "f.txt").write_text("one\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "f.txt"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "one"], check=True, env=env)
    sha = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], check=True, capture_output=True,
                         text=True).stdout.strip()
    return tmp_path, sha


def test_head_check(git_repo: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> None:
    root, sha = git_repo
    assert check_head(root, sha, False).ok
    assert check_head(root, sha[:10], True).ok  # clean tree, short sha
    assert not check_head(root, "0" * 40, False).ok
    assert not check_head(root, sha[:5], False).ok  # too short to be a deliberate pin
    (root / "f.txt").write_text("two\n")  # tracked change: dirty
    assert check_head(root, sha, False).ok
    info = check_head(root, sha, True)
    assert not info.ok and "uncommitted" in info.detail
    nogit = tmp_path_factory.mktemp("nogit")
    assert not check_head(nogit, sha, False).ok  # no git at all: cannot prove the head


# ------------------------------------------------------------------------------ audio
def test_audio_inputs_that_are_valid(speech: Path, speech_flac: Path, tmp_path: Path) -> None:
    inv = inspect_audio(speech_flac)
    (f,) = inv.files
    assert inv.kind == "file" and f.sample_rate == 22050 and f.channels == 1 and 2.0 < f.duration_s < 10.0
    assert f.format == "FLAC"
    # a folder of recordings, with one broken file among them: the good one is kept, the bad one counted
    d = tmp_path / "recs"
    d.mkdir()
    shutil.copy(speech, d / "a.wav")
    (d / "broken.wav").write_text("not audio")
    inv = inspect_audio(d)
    assert inv.kind == "directory" and len(inv.files) == 1 and len(inv.problems) == 1
    # LJSpeech layout and a NeMo manifest are audio inputs too
    lj = tmp_path / "lj"
    (lj / "wavs").mkdir(parents=True)
    shutil.copy(speech, lj / "wavs" / "LJ001-0001.wav")
    (lj / "metadata.csv").write_text("LJ001-0001|The quick brown fox.|The quick brown fox.\n")
    assert inspect_audio(lj).kind == "ljspeech"
    man = tmp_path / "train.json"
    man.write_text(json.dumps({"audio_filepath": str(speech), "text": "x", "duration": 1.0}) + "\n")
    inv = inspect_audio(man)
    assert inv.kind == "nemo_manifest" and inv.files[0].sample_rate == 22050
    # relative paths resolve against the workspace root
    shutil.copy(speech, tmp_path / "rel.wav")
    assert inspect_audio("rel.wav", root=tmp_path).files[0].channels == 1


def test_bad_audio_inputs_are_missing_audio_path(tmp_path: Path) -> None:
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    (empty_dir / "notes.txt").write_text("no audio here")
    text_flac = tmp_path / "speech.flac"
    text_flac.write_text("this is a text file wearing a .flac suffix\n" * 20)
    zero = tmp_path / "zero.flac"
    zero.write_bytes(b"")
    all_broken = tmp_path / "broken"
    all_broken.mkdir()
    (all_broken / "x.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    man = tmp_path / "m.jsonl"
    man.write_text(json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "text": "x"}) + "\n")
    for bad in (empty_dir, text_flac, zero, all_broken, tmp_path / "missing.flac", man, None, ""):
        assert _code(inspect_audio, bad) == "missing_audio_path", bad


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_audio(speech: Path, tmp_path: Path) -> None:
    p = tmp_path / "locked.wav"
    shutil.copy(speech, p)
    p.chmod(0)
    assert _code(inspect_audio, p) == "missing_audio_path"


# ------------------------------------------------------------------------------ config
def test_config_schema(tmp_path: Path) -> None:
    assert validate_config_file(REPO / "configs" / "lane.yaml", REPO)["settings"]["lane"]
    for bad in ({"settings": {"backend": "cloud"}}, {"settings": {"stages": ["verify", "deploy"]}},
                {"settings": {"cell_timeout_s": 0}}, {"settings": {"colour": "red"}},
                {"settings": {"expected_head": "not-a-sha"}}):
        p = tmp_path / "lane.yaml"
        p.write_text(yaml.safe_dump(bad))
        assert _code(validate_config_file, p, REPO) == "config_invalid", bad


def test_precedence_flag_over_env_over_config_over_default(tmp_path: Path) -> None:
    """flags > environment > config file > defaults, for every source of every kind of value."""
    cfg = tmp_path / "lane.yaml"
    cfg.write_text(yaml.safe_dump({"settings": {"lane": "cfg_lane", "backend": "local_docker", "profile": "cfgprof",
                                                "cell_timeout_s": 11, "require_clean_tree": True}}))
    env = {"TRAIN_LANE": "env_lane", "TRAIN_BACKEND": "managed_job", "LANE_CELL_TIMEOUT_S": "22"}
    flags = {"lane": "flag_lane", "audio": None, "profile": None}
    s = resolve_settings(flags, env, cfg, tmp_path)
    assert s.lane == "flag_lane" and s.sources["lane"] == "flag"              # flag beats env and config
    assert s.backend == "managed_job" and s.sources["backend"] == "env:TRAIN_BACKEND"  # env beats config
    assert s.cell_timeout_s == 22                                             # env, coerced to int
    assert s.profile == "cfgprof" and s.sources["profile"] == "config:lane.yaml"  # config beats default
    assert s.require_clean_tree is True
    assert s.voice_profile_id == "demo_voice" and s.sources["voice_profile_id"] == "default"
    assert s.audio == "data/demo/longform.flac"  # a None flag means "not given"
    s2 = resolve_settings({}, {}, None, tmp_path)  # no config file at all: defaults
    assert (s2.lane, s2.backend) == ("tts_prod_train_nemo", "local")
