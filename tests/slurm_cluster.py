"""A real single-node Slurm cluster for tests, started through scripts/slurm/cluster.sh.

Import what a test module needs; this is a plain module, not a conftest, so nothing here is active
until imported:

    import slurm_cluster
    from slurm_cluster import job_info, sbatch, wait_for_job

    slurm_env = slurm_cluster.slurm_env  # a module attribute, so pytest finds the fixture here

`slurm_env` is a session-scoped fixture returning the environment variables clients need
(`SLURM_CONF`, `LANE_SLURM_DIR`); pass `env={**os.environ, **slurm_env}` to subprocesses.

Policy: the fixture skips only when Slurm is not installed and we are not in CI. With `CI=true`
(or `LANE_SLURM_INSTALL=1`) it installs the Debian packages when they are missing, and any failure
to install or start the cluster fails the test instead of skipping it: CI must exercise the real
scheduler. With Slurm installed, a cluster that does not come up always fails.

Where the cluster lives: `$LANE_SLURM_DIR` when set (an already running cluster there is reused and
left running), else a fresh short directory under /tmp (MUNGE and slurmstepd use unix sockets in it,
which limits the path length), stopped and removed at the end of the session (kept when
`LANE_SLURM_KEEP=1`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from lane.backends.slurm import parse_job_line

REPO = Path(__file__).resolve().parent.parent
CLUSTER_SH = REPO / "scripts" / "slurm" / "cluster.sh"

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
TERMINAL_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "TIMEOUT",
})
_TRUE = {"1", "true", "yes", "on"}


class SlurmClusterError(RuntimeError):
    """The cluster could not be installed or started."""


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def in_ci() -> bool:
    return _truthy("CI")


def install_allowed() -> bool:
    return in_ci() or _truthy("LANE_SLURM_INSTALL")


def _which(name: str) -> str | None:
    # the daemons live in /usr/sbin, which is not on every user's PATH
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def slurm_missing() -> list[str]:
    """The daemon and client programs that are not installed."""
    return [name for name in (*DAEMONS, *CLIENTS) if _which(name) is None]


def _cluster_sh(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/sbin"])
    return subprocess.run(["bash", str(CLUSTER_SH), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, stdin=subprocess.DEVNULL, env=env)


def _log_tails(state_dir: Path, lines: int = 15) -> str:
    out = []
    for log in sorted((state_dir / "log").glob("*.log")):
        try:
            tail = log.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"--- {log}\n" + "\n".join(tail))
    return "\n".join(out)


def cluster_env(state_dir: str | os.PathLike[str]) -> dict[str, str]:
    state = Path(state_dir).resolve()
    return {"SLURM_CONF": str(state / "slurm.conf"), "LANE_SLURM_DIR": str(state)}


def start_cluster(state_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Install Slurm if it is missing and allowed (CI or LANE_SLURM_INSTALL=1), then
    `cluster.sh up STATE_DIR`. Returns the variables clients need. Raises SlurmClusterError."""
    missing = slurm_missing()
    if missing:
        if not install_allowed():
            raise SlurmClusterError(f"Slurm is not installed (missing: {', '.join(missing)}); run "
                                    f"`bash {CLUSTER_SH.relative_to(REPO)} install` or set LANE_SLURM_INSTALL=1")
        proc = _cluster_sh("install", timeout=900)
        if proc.returncode != 0 or slurm_missing():
            raise SlurmClusterError(f"cluster.sh install failed (rc={proc.returncode}, still missing "
                                    f"{slurm_missing()}):\n{proc.stdout}\n{proc.stderr}")
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    try:
        proc = _cluster_sh("up", str(state), timeout=180)
    except subprocess.TimeoutExpired as exc:
        raise SlurmClusterError(f"cluster.sh up {state} timed out after 180 s\n{_log_tails(state)}") from exc
    if proc.returncode != 0:
        raise SlurmClusterError(f"cluster.sh up {state} failed (rc={proc.returncode}):\n{proc.stdout}"
                                f"\n{proc.stderr}\n{_log_tails(state)}")
    return cluster_env(state)


def stop_cluster(state_dir: str | os.PathLike[str]) -> None:
    """`cluster.sh down STATE_DIR`: cancel the jobs, stop the daemons `up` started."""
    proc = _cluster_sh("down", str(state_dir), timeout=120)
    if proc.returncode != 0:
        raise SlurmClusterError(f"cluster.sh down {state_dir} failed (rc={proc.returncode}):\n"
                                f"{proc.stdout}\n{proc.stderr}")


def cluster_running(state_dir: str | os.PathLike[str]) -> bool:
    state = Path(state_dir)
    if not (state / "slurm.conf").exists():
        return False
    proc = _cluster_sh("status", str(state), timeout=60)
    return proc.returncode == 0


# ---------------------------------------------------------------------------------------- client helpers

def slurm(env: Mapping[str, str], *args: str, timeout: float = 30,
          cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Slurm client (`slurm(env, "squeue", "-h")`) against the test cluster."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=cwd, env={**os.environ, **env}, stdin=subprocess.DEVNULL)


def sbatch(env: Mapping[str, str], *args: str, cwd: str | os.PathLike[str] | None = None) -> str:
    """`sbatch --parsable ARGS...`; returns the job id."""
    proc = slurm(env, "sbatch", "--parsable", *args, cwd=cwd)
    if proc.returncode != 0:
        raise AssertionError(f"sbatch {' '.join(args)} failed (rc={proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip().split(";")[0]


def job_info(env: Mapping[str, str], job_id: str) -> dict[str, str]:
    """`scontrol show job -o JOB_ID` as a dict ({} when the controller no longer knows the job)."""
    proc = slurm(env, "scontrol", "show", "job", "-o", str(job_id))
    if proc.returncode != 0 or not proc.stdout.strip():
        return {}
    return parse_job_line(proc.stdout.strip().splitlines()[0])


def wait_for_job(env: Mapping[str, str], job_id: str, states: frozenset[str] | set[str] = TERMINAL_STATES,
                 timeout: float = 60, poll: float = 0.2) -> dict[str, str]:
    """Poll until the job's JobState is one of `states`; returns its fields. AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    info: dict[str, str] = {}
    while time.monotonic() < deadline:
        info = job_info(env, job_id)
        if info.get("JobState") in states:
            return info
        time.sleep(poll)
    raise AssertionError(f"job {job_id} not in {sorted(states)} after {timeout:.0f}s: "
                         f"JobState={info.get('JobState')} Reason={info.get('Reason')}")


# ---------------------------------------------------------------------------------------- fixture

class _Session:
    """The cluster shared by every module that imports `slurm_env`: a session fixture imported into
    several test modules is instantiated once per module, so they share it through this object
    (started by the first, stopped when the last one finalizes)."""

    env: dict[str, str] | None = None
    users = 0
    state = Path()
    owned = False
    was_running = False
    startup_s = 0.0


def _acquire() -> dict[str, str]:
    if _Session.env is not None:
        _Session.users += 1
        return dict(_Session.env)
    missing = slurm_missing()
    if missing and not install_allowed():
        pytest.skip(f"Slurm is not installed (missing {', '.join(missing)}); "
                    f"`bash scripts/slurm/cluster.sh install` or LANE_SLURM_INSTALL=1 enables these tests")
    given = os.environ.get("LANE_SLURM_DIR")
    if given:
        state, owned, was_running = Path(given), False, cluster_running(given)
    else:
        # short path: unix socket paths (munge, slurmstepd) are limited to 108 bytes
        state, owned, was_running = Path(tempfile.mkdtemp(prefix="lane-slurm-", dir="/tmp")), True, False
    t0 = time.monotonic()
    try:
        env = start_cluster(state)
    except (SlurmClusterError, OSError, subprocess.SubprocessError) as exc:
        kept = ""
        if owned:
            with contextlib.suppress(SlurmClusterError, OSError, subprocess.SubprocessError):
                stop_cluster(state)
            if (state / "log").is_dir():
                kept = f" (state and logs kept in {state})"
            else:
                shutil.rmtree(state, ignore_errors=True)
        pytest.fail(f"could not start the Slurm test cluster{' (CI=true)' if in_ci() else ''}{kept}: {exc}",
                    pytrace=False)
    _Session.env, _Session.users, _Session.state = env, 1, state
    _Session.owned, _Session.was_running = owned, was_running
    _Session.startup_s = time.monotonic() - t0
    return dict(env)


def _release() -> None:
    _Session.users -= 1
    if _Session.users > 0 or _Session.env is None:
        return
    try:
        if not _Session.was_running:
            stop_cluster(_Session.state)
        if _Session.owned and not _truthy("LANE_SLURM_KEEP"):
            shutil.rmtree(_Session.state, ignore_errors=True)
    finally:
        _Session.env = None
        _Session.users = 0


@pytest.fixture(scope="session")
def slurm_env() -> Iterator[dict[str, str]]:
    """Environment variables (SLURM_CONF, LANE_SLURM_DIR) of a running single-node Slurm cluster."""
    env = _acquire()
    try:
        yield env
    finally:
        _release()
