"""local_docker with a real engine: podman 4.3 + runc serving the Docker API, driven by the real
`docker` CLI; the image built from docker/Dockerfile on a debootstrapped Debian base with the host's
CPU torch (tests/container_engine.py, once per session). The lane is the four fixture notebooks
(tests/fixtures/notebooks/pass.ipynb, the runner, papermill and a real kernel inside the container);
NeMo training is not in this lean image, so the bundle's model files are the fixture's placeholders.
Nothing is mocked."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import container_engine
import pytest
from cli_runs import Done, run_lane
from lane_runs import STAGES, install_notebooks

container_env = container_engine.container_env  # the session fixture (engine + image), made visible here
# a hang guard, not a clock: the first test also pays for the session's image build, which on a fresh
# machine starts from debootstrap (~7 min on two shared cores)
pytestmark = pytest.mark.timeout(1800)

REPO = Path(__file__).resolve().parents[2]
LANE = "tts_prod_train_nemo"
VOICE = "container_voice"
# inside the verify stage, before anything else: the container has no route out. A stage that could
# download (weights, a pip package, an NLTK corpus) fails here instead of quietly reaching the net.
OFFLINE = """
import socket
online = []
for where in (("deb.debian.org", 80), ("1.1.1.1", 443)):  # by name, and by address (no DNS involved)
    try:
        socket.create_connection(where, timeout=5).close()
        online.append(where)
    except OSError as exc:
        print(f"offline: {where[0]}: {type(exc).__name__}: {exc}")
assert not online, f"the container reached {online}: the run is not offline"
with_consent = False  # the workspace root is mounted read-only; consent records are made outside runs
"""


def _run(root: Path, env: dict[str, str], *args: str) -> Done:
    return run_lane(root, "run", "--backend", "local_docker", "--audio", "data/speech.wav", "--transcript", "",
                    "--voice-profile-id", VOICE, *args, env=env, timeout=900)


def _run_id(done: Done) -> str:
    m = re.search(r"run_id=(\S+)", done.last_status)
    assert m, done.out + done.err
    return m.group(1)


@pytest.fixture
def cws(ws: Path) -> Path:
    install_notebooks(ws, dict.fromkeys(STAGES, "pass"), {"verify": OFFLINE})
    return ws


def test_a_lane_runs_in_the_container_offline_as_the_caller(cws: Path, container_env: dict[str, str]) -> None:
    from lane.serve.settings import load_settings
    from lane.serve.voices import servable_problems

    done = _run(cws, {**container_env, "LANE_DOCKER_GPUS": "none"})
    assert done.rc == 0, done.out[-6000:] + done.err[-3000:]
    run_id = _run_id(done)
    assert done.last_status == f"[tts-prod] status=completed reason=ok run_id={run_id} lane={LANE}"
    log = done.log
    assert f"docker: reusing image {container_env['LANE_DOCKER_IMAGE']}" in log
    cmd = next(x for x in log.splitlines() if x.startswith("docker: ") and " run " in x and " --name " in x)
    assert " --network none " in cmd and f" --user {os.getuid()}:{os.getgid()} " in cmd and "--gpus" not in cmd
    assert "offline: " in (cws / "runs" / run_id / "verify.html").read_text(errors="replace")  # the probe failed

    st = done.train_status()
    assert (st["status"], st["reason"], st["exit_code"]) == ("completed", "ok", 0)
    assert all(st["stages"][s]["verdict"] == "PASS" for s in STAGES)
    settings = json.loads((cws / "runs" / run_id / "settings.json").read_text())
    assert settings["settings"]["backend"] == "local"  # the runner that wrote it ran inside, as local
    report = cws / st["report_path"]
    assert report.is_file() and report.read_text().startswith("# Verdict: ")

    # the host verifies what the container signed (the anchors were mounted, not made inside)
    verify = run_lane(cws, "ledger", "verify")
    assert verify.rc == 0, verify.out + verify.err

    # every file the container wrote on the mounts belongs to the calling user
    written = [p for d in ("artifacts", "runs", "reports", "bundles") for p in (cws / d).rglob("*")]
    assert len(written) > 20
    wrong = [f"{p} {p.stat().st_uid}:{p.stat().st_gid}" for p in written
             if (p.stat().st_uid, p.stat().st_gid) != (os.getuid(), os.getgid())]
    assert wrong == []

    # lane serve on the host admits the bundle as a candidate (its admission rule, with
    # --allow-unpromoted: the run is not a live GO voice)
    cand = cws / "bundles" / VOICE / "candidates" / run_id
    assert (cand / "manifest.json").is_file()
    serve = load_settings(cws, source=cand, port=0, allow_unpromoted=True)
    assert servable_problems(cand, serve) == []
    strict = load_settings(cws, source=cand, port=0, allow_unpromoted=False)
    assert "not a live voice" in servable_problems(cand, strict)[0]


def test_a_gpu_the_engine_does_not_give_ends_gpu_unavailable(cws: Path, container_env: dict[str, str]) -> None:
    """The backend's default asks for `--gpus all`; podman 4.3 without NVIDIA hooks accepts the flag
    and starts the container without a GPU. The runner inside finds none before any stage."""
    env = {k: v for k, v in container_env.items() if k != "LANE_DOCKER_GPUS"}
    done = _run(cws, env)
    assert done.rc == 2, done.out[-4000:] + done.err[-2000:]
    assert done.last_status.startswith("[tts-prod] status=blocked reason=gpu_unavailable ")
    st: dict[str, Any] = done.train_status()
    assert st["reason"] == "gpu_unavailable" and "docker --gpus all asks for a GPU" in st["detail"]
    assert "torch.cuda.is_available() is False" in st["detail"]
    assert not st.get("stages")  # nothing ran, let alone trained
    cmd = next(x for x in done.log.splitlines() if x.startswith("docker: ") and " run " in x and " --name " in x)
    assert " --gpus all " in cmd
    # the exit code is the runner's: with podman's Docker API `docker run --rm` would report 0, so the
    # backend runs without --rm and removes the container afterwards
    gone = subprocess.run(["docker", "ps", "--all", "--quiet", "--filter", f"name=voice-lane-{_run_id(done)}"],
                          capture_output=True, text=True, env={**os.environ, **container_env}, check=True)
    assert gone.stdout.strip() == ""


def test_the_container_writes_as_the_uid_it_is_given(cws: Path, container_env: dict[str, str],
                                                    tmp_path_factory: pytest.TempPathFactory) -> None:
    """The tests run as root, where "files belong to the caller" proves little. The host CLI cannot
    run as another user on this VM (its Python lives under /root, mode 0700), so this runs the
    backend's own command line (run_command) built for uid:gid 4242:4242 with the real engine, on a
    workspace that user owns: everything the runner writes through the mounts is 4242's."""
    import subprocess

    from lane.backends.docker import anchor_mounts, check_writable, container_name, mounts, run_command
    from lane.core.config import Settings
    from lane.core.reasons import LaneError
    from lane.core.stage import new_run_id

    uid = gid = 4242
    keys = tmp_path_factory.mktemp("anchors-4242")  # outside the workspace, as anchors must be
    env = {"LANE_SIGNING_KEY": str(keys / "signing-ed25519.pem"), "LANE_WITNESS_DIR": str(keys / "witness")}
    anchors = anchor_mounts(cws, env)  # makes the key and the witness folder, as the backend does
    settings = Settings(audio="data/speech.wav", transcript=None, voice_profile_id=VOICE)
    for name in ("artifacts", "bundles", "reports", "runs", ".cache"):
        (cws / name).mkdir(exist_ok=True)
    with pytest.raises(LaneError) as info:  # still root's: the backend would stop here
        check_writable(mounts(cws, REPO, settings), uid, gid)
    assert info.value.code == "workspace_not_writable"
    subprocess.run(["chown", "-R", f"{uid}:{gid}", str(cws), str(keys)], check=True)
    check_writable(mounts(cws, REPO, settings), uid, gid)
    run_id = new_run_id()
    cmd = run_command(container_env["LANE_DOCKER_IMAGE"], settings, cws, REPO, run_id,
                      uid=uid, gid=gid, env={"LANE_DOCKER_GPUS": "none"}, docker=container_env["LANE_DOCKER"],
                      anchors=(anchors[0], {**anchors[1], "LANE_TRUSTED_KEYS": str(keys / "trusted-keys")}))
    env = {**os.environ, **container_env}
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    finally:  # what the backend's run() does after the container
        subprocess.run([cmd[0], "rm", "--force", container_name(run_id)], capture_output=True, env=env, check=False)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr[-2000:]
    assert f"[tts-prod] status=completed reason=ok run_id={run_id}" in p.stdout
    written = [q for d in ("artifacts", "runs", "reports", "bundles") for q in (cws / d).rglob("*")]
    assert len(written) > 20
    assert {(q.stat().st_uid, q.stat().st_gid) for q in written} == {(uid, gid)}


def test_the_podman_client_runs_the_same_lane(cws: Path, container_env: dict[str, str]) -> None:
    """LANE_DOCKER=podman: the backend drives podman's own CLI (same store, same containers.conf)."""
    done = _run(cws, {**container_env, "LANE_DOCKER": "podman", "LANE_DOCKER_GPUS": "none"})
    assert done.rc == 0, done.out[-4000:] + done.err[-2000:]
    assert done.last_status.startswith("[tts-prod] status=completed reason=ok ")
    cmd = next(x for x in done.log.splitlines() if x.startswith("docker: ") and " run " in x and " --name " in x)
    assert cmd.split()[1].endswith("/podman") and " --network none " in cmd
