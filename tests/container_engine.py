"""A real container engine for tests: Debian's podman with runc, serving the Docker API on a unix
socket (scripts/container/engine.sh), and the lane's image built once per session
(scripts/container/build.sh: a debootstrapped Debian bookworm base, the host's CPU torch).

    import container_engine
    container_env = container_engine.container_env  # a module attribute, so pytest finds the fixture

`container_env` (session scope) returns the variables a client needs: DOCKER_HOST (the podman
socket, for the real `docker` CLI), CONTAINERS_CONF (runc, cgroupfs, ulimits), LANE_DOCKER_IMAGE
(the built image, so the backend does not build again) and LANE_CONTAINER_ENGINE.

Policy, as for Slurm (tests/slurm_cluster.py): the fixture skips only when the engine is not installed
and we are not in CI; with CI=true (or LANE_CONTAINER_INSTALL=1) it installs the packages, and any
failure to install, start or build fails the test. The service is started in a fresh short folder
under /tmp and stopped by its pid at the end of the session. Images stay in podman's store, so the
next session reuses the base image and the unchanged layers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENGINE_SH = REPO / "scripts" / "container" / "engine.sh"
BUILD_SH = REPO / "scripts" / "container" / "build.sh"
IMAGE = os.environ.get("LANE_TEST_IMAGE", "voice-lane:dev")
PROGRAMS = ("podman", "runc", "debootstrap")
_TRUE = {"1", "true", "yes", "on"}


class EngineError(RuntimeError):
    """The engine could not be installed, started, or the image built."""


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def missing() -> list[str]:
    return [p for p in PROGRAMS if _which(p) is None]


def install_allowed() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("CI", "LANE_CONTAINER_INSTALL"))


def _sh(script: Path, *args: str, timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env or {})}
    full["PATH"] = os.pathsep.join([full.get("PATH", ""), "/usr/sbin", "/sbin"])
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL, env=full)


def start_engine(state: Path) -> dict[str, str]:
    if missing():
        proc = _sh(ENGINE_SH, "install", timeout=900)
        if proc.returncode != 0 or missing():
            raise EngineError(f"engine.sh install failed (rc={proc.returncode}, still missing {missing()}):\n"
                              f"{proc.stdout}\n{proc.stderr}")
    proc = _sh(ENGINE_SH, "start", str(state), timeout=120)
    if proc.returncode != 0:
        log = (state / "service.log").read_text(errors="replace")[-3000:] if (state / "service.log").exists() else ""
        raise EngineError(f"engine.sh start failed (rc={proc.returncode}):\n{proc.stderr}\n{log}")
    return {"DOCKER_HOST": f"unix://{state}/podman.sock", "CONTAINERS_CONF": str(state / "containers.conf"),
            "LANE_CONTAINER_ENGINE": "podman", "LANE_DOCKER": "docker" if _which("docker") else "podman"}


def build_image(env: dict[str, str], tag: str = IMAGE) -> float:
    """build.sh TAG (the local Debian base); the seconds it took. Warm: the layer cache answers."""
    t0 = time.monotonic()
    proc = _sh(BUILD_SH, tag, timeout=1500, env={**env, "LANE_BASE_IMAGE": ""})
    if proc.returncode != 0:
        raise EngineError(f"build.sh {tag} failed (rc={proc.returncode}):\n{proc.stderr[-6000:]}")
    return time.monotonic() - t0


@pytest.fixture(scope="session")
def container_env() -> Iterator[dict[str, str]]:
    if missing() and not install_allowed():
        pytest.skip(f"no container engine ({', '.join(missing())} missing); run "
                    f"`bash {ENGINE_SH.relative_to(REPO)} install` or set LANE_CONTAINER_INSTALL=1")
    state = Path(tempfile.mkdtemp(prefix="vle-", dir="/tmp"))  # a short path: the socket lives there
    try:
        env = start_engine(state)
    except EngineError as err:
        shutil.rmtree(state, ignore_errors=True)
        pytest.fail(str(err))
    try:
        seconds = build_image(env)
        print(f"\ncontainer_engine: {IMAGE} built or reused in {seconds:.1f} s")
        yield {**env, "LANE_DOCKER_IMAGE": IMAGE}
    except EngineError as err:
        pytest.fail(str(err))
    finally:
        _sh(ENGINE_SH, "stop", str(state), timeout=60)
        shutil.rmtree(state, ignore_errors=True)
