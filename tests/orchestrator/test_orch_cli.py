"""`lane run` and the seed scripts through the real CLI in a subprocess: every early failure the issue
lists ends with its reason code, a non-zero exit, train_status written, the line in the orchestrator
log, and nothing heavy started (no run directory). The Docker tests use the real `docker` client,
which cannot reach an engine on this machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from lane.core.reasons import exit_code

MANAGED_LINE = "[tts-prod] status=blocked reason=managed_job_not_implemented"
NO_TRANSCRIPT = ("--transcript", "")


def _assert_early(done: Any, code: str, lane: str = "tts_prod_train_nemo", status: str | None = None) -> dict[str, Any]:
    assert done.rc == exit_code(code) != 0, (done.out, done.err)
    st = done.train_status(lane)
    assert st["reason"] == code and st["exit_code"] == done.rc and st["lane"] == lane
    assert st["status"] == (status or ("blocked" if done.rc == 2 else "failed"))
    assert f"reason={code}" in done.last_status
    assert f"error: {code}:" in done.log and done.last_status in done.log
    assert not (done.root / "runs").exists()  # failed before any stage started
    return st


# ------------------------------------------------------------------------------ runbook commands
def test_managed_job_runbook_command(ws: Path, seed_script: Callable[..., Any]) -> None:
    done = seed_script(ws, "train_production_voice.sh", env={"TRAIN_BACKEND": "managed_job"})
    assert done.rc == 2
    assert done.out.strip().splitlines()[-1] == MANAGED_LINE  # exactly, as the seed fixes it
    _assert_early(done, "managed_job_not_implemented", status="blocked")


def test_managed_job_status_file_uses_the_operators_lane_name(ws: Path, seed_script: Callable[..., Any]) -> None:
    done = seed_script(ws, "train_production_voice.sh", env={"TRAIN_BACKEND": "managed_job", "TRAIN_LANE": "tts_prod_train"})
    assert done.last_status == MANAGED_LINE
    assert done.train_status("tts_prod_train")["status"] == "blocked"
    assert not (ws / "artifacts" / "train_status.tts_prod_train_nemo.json").exists()


def test_local_docker_runbook_command_ends_docker_build_failed(ws: Path, speech_flac: Path,
                                                               seed_script: Callable[..., Any]) -> None:
    """The runbook's local_docker command with its recording staged: the real docker client cannot
    reach an engine here, so the build fails, and the log holds docker's own last lines."""
    if not shutil.which("docker"):
        pytest.skip("no docker client installed")
    probe = subprocess.run(["docker", "info"], capture_output=True, text=True)
    if probe.returncode == 0:
        pytest.skip("a Docker engine is reachable here: the build would really run")
    src = ws / "data" / "knowledge_audio_source"
    src.mkdir(parents=True)
    shutil.copy(speech_flac, src / "auntie_dottie.flac")
    done = seed_script(ws, "train_production_voice.sh", *NO_TRANSCRIPT,
                       env={"TRAIN_BACKEND": "local_docker", "AUDIO_PATH": "data/knowledge_audio_source/auntie_dottie.flac"})
    st = _assert_early(done, "docker_build_failed")
    assert st["backend"] == "local_docker"
    log = done.log
    assert "docker: building voice-lane:" in log
    assert "docker build failed: last" in log and "--- end of tail ---" in log
    tail = log.split("docker build failed: last", 1)[1]
    assert "docker" in tail.lower() and ("daemon" in tail.lower() or "connect" in tail.lower())


# ------------------------------------------------------------------------------ bad input
def test_unknown_backend(ws: Path, lane_cli: Callable[..., Any]) -> None:
    _assert_early(lane_cli(ws, "run", "--backend", "cloud", "--audio", "data/speech.wav"), "unknown_backend")


def test_unknown_lane(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "run", "--audio", "data/speech.wav", env={"TRAIN_LANE": "tts_prod_train_pytorch"})
    _assert_early(done, "unknown_lane", lane="tts_prod_train_pytorch")


def test_unsafe_lane_name_never_becomes_a_path(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "run", "--lane", "../../etc/x", "--audio", "data/speech.wav")
    _assert_early(done, "unknown_lane", lane="unknown")


def test_espnet_fallback_blocks(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "run", "--lane", "tts_prod_train_espnet", "--audio", "data/speech.wav")
    _assert_early(done, "espnet_runtime_unavailable", lane="tts_prod_train_espnet", status="blocked")


@pytest.mark.parametrize("kind", ["dir_without_audio", "text_renamed_flac", "zero_bytes", "missing"])
def test_bad_audio_path(ws: Path, lane_cli: Callable[..., Any], kind: str) -> None:
    target = ws / "data" / "input"
    if kind == "dir_without_audio":
        target.mkdir()
        (target / "readme.txt").write_text("recordings go here\n")
    elif kind == "text_renamed_flac":
        target = ws / "data" / "speech.flac"
        target.write_text("definitely not audio\n" * 50)
    elif kind == "zero_bytes":
        target = ws / "data" / "empty.flac"
        target.write_bytes(b"")
    done = lane_cli(ws, "run", env={"AUDIO_PATH": str(target.relative_to(ws))})
    st = _assert_early(done, "missing_audio_path")
    assert target.name in st["detail"]


def test_expected_head_mismatch(ws: Path, lane_cli: Callable[..., Any]) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q", str(ws)], check=True, env=env)
    subprocess.run(["git", "-C", str(ws), "add", "configs"], check=True, env=env)
    subprocess.run(["git", "-C", str(ws), "commit", "-qm", "ws"], check=True, env=env)
    head = subprocess.run(["git", "-C", str(ws), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    wrong = ("1" if head[0] != "1" else "2") + head[1:]
    done = lane_cli(ws, "run", "--audio", "data/speech.wav", env={"EXPECTED_HEAD": wrong})
    st = _assert_early(done, "deterministic_head_mismatch", status="blocked")
    assert head in st["detail"] and wrong in st["detail"]
    # the right head passes the head check and the run goes on to the next check (here: the audio)
    done = lane_cli(ws, "run", "--expected-head", head, "--audio", "data/nothing.flac")
    _assert_early(done, "missing_audio_path")
    assert f"head: HEAD {head}" in done.log


def test_precedence_through_the_cli(ws: Path, lane_cli: Callable[..., Any]) -> None:
    """config says managed_job; the environment overrides it with a bad backend; a flag overrides both."""
    cfg = ws / "configs" / "lane.yaml"
    data = yaml.safe_load(cfg.read_text())
    data["settings"]["backend"] = "managed_job"
    cfg.write_text(yaml.safe_dump(data))
    assert lane_cli(ws, "run").last_status == MANAGED_LINE  # config > default
    assert "reason=unknown_backend" in lane_cli(ws, "run", env={"TRAIN_BACKEND": "cloud"}).last_status  # env > config
    done = lane_cli(ws, "run", "--backend", "managed_job", env={"TRAIN_BACKEND": "cloud"})  # flag > env
    assert done.last_status == MANAGED_LINE
    assert "backend=managed_job(flag)" in done.log


def test_invalid_config_file(ws: Path, lane_cli: Callable[..., Any]) -> None:
    bad = ws / "bad.yaml"
    bad.write_text(yaml.safe_dump({"settings": {"stages": ["verify", "deploy"]}}))
    done = lane_cli(ws, "run", "--config", str(bad), "--audio", "data/speech.wav")
    _assert_early(done, "config_invalid")


def test_lanes_command_lists_the_registry(ws: Path, lane_cli: Callable[..., Any]) -> None:
    done = lane_cli(ws, "lanes", "--root", str(ws))
    assert done.rc == 0
    for lane in ("tts_prod_train_nemo", "tts_prod_train", "tts_prod_train_espnet", "audiocraft_experimental",
                 "train", "tts_voice_train"):
        assert lane in done.out


def test_input_relative_to_the_current_directory_is_anchored(ws: Path, tmp_path: Path, speech: Path) -> None:
    """An audio path that exists relative to the operator's cwd (not the root) reaches the stages as an
    absolute path, since the stage kernels run elsewhere; a path under the root stays root-relative."""
    from lane.core.config import Settings
    from lane.orchestrator import _anchor_paths

    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    shutil.copy(speech, cwd / "take1.wav")
    s = Settings(audio="take1.wav", transcript="data/speech.wav")
    old = os.getcwd()
    try:
        os.chdir(cwd)
        _anchor_paths(s, ws)
    finally:
        os.chdir(old)
    assert s.audio == str(cwd / "take1.wav")
    assert s.transcript == "data/speech.wav"  # exists under the root: left root-relative
