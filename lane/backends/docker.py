"""The `local_docker` backend: build the GPU image from docker/ (reused when its content hash is
already built), then run the runner inside it with `--gpus all --ipc=host`.

Command lines are built by pure functions (`image_tag`, `build_command`, `run_command`) so tests
can pin them without an engine. Mounts use the same absolute path inside and out, so every path
the runner writes (train_status, run dirs, ARTIFACT lines) means the same file on the host.

Exit mapping:
- the client is missing, the engine is unreachable or `docker build` fails -> docker_build_failed;
- the container exits non-zero without the runner having finished this run   -> docker_run_failed;
- the runner inside finished (its train_status for this run id is final)     -> its own exit code.
Both failures write the last lines of docker's output to the orchestrator log.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..core.config import ENV_VARS, Settings
from ..core.reasons import LaneError
from .base import RunContext, inner_args

IMAGE_REPO = "voice-lane"
DOCKERFILE = "docker/Dockerfile"
HASHED = ("docker", "pyproject.toml", "README.md", "lane", "configs", "notebooks", ".dockerignore")
MOUNT_DIRS = ("data", "artifacts", "bundles", "reports", "runs", "models", ".cache")
TAIL_LINES = 40
REPO = Path(__file__).resolve().parents[2]


def content_hash(repo: str | os.PathLike[str], parts: Sequence[str] = HASHED) -> str:
    """sha256 over the files under `parts` (sorted relative paths and their bytes); caches skipped."""
    base = Path(repo)
    h = hashlib.sha256()
    for part in parts:
        p = base / part
        files = [p] if p.is_file() else sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else []
        for f in files:
            relp = f.relative_to(base).as_posix()
            if "__pycache__" in f.parts or f.suffix in (".pyc", ".pyo"):
                continue
            h.update(relp.encode() + b"\0")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def image_tag(repo: str | os.PathLike[str]) -> str:
    return f"{IMAGE_REPO}:{content_hash(repo)[:16]}"


def inspect_command(tag: str, docker: str = "docker") -> list[str]:
    return [docker, "image", "inspect", "--format", "{{.Id}}", tag]


def build_command(tag: str, repo: str | os.PathLike[str], docker: str = "docker",
                  build_args: Mapping[str, str] | None = None) -> list[str]:
    cmd = [docker, "build", "--file", str(Path(repo) / DOCKERFILE), "--tag", tag,
           "--label", f"org.opencontainers.image.revision={tag.split(':', 1)[1]}"]
    for key, value in sorted((build_args or {}).items()):
        cmd += ["--build-arg", f"{key}={value}"]
    cmd.append(str(Path(repo)))
    return cmd


def mounts(root: Path, repo: Path, settings: Settings) -> list[tuple[Path, Path, bool]]:
    """(host, container, read_only) bind mounts, same path on both sides. The repo is read-only;
    the workspace's output folders are read-write; an input outside the root is mounted read-only."""
    out: list[tuple[Path, Path, bool]] = [(repo, repo, True)]
    if root != repo:
        out.append((root, root, True))
    for name in MOUNT_DIRS:
        p = root / name
        out.append((p, p, name in ("data", "models")))
    for value in (settings.audio, settings.transcript, settings.weights_manifest):
        if value and Path(value).is_absolute():
            p = Path(value)
            parent = p if p.is_dir() else p.parent
            if not any(parent.is_relative_to(m[0]) for m in out):
                out.append((parent, parent, True))
    return out


def run_command(tag: str, settings: Settings, root: Path, repo: Path, run_id: str, *, resume: bool = False,
                uid: int | None = None, gid: int | None = None, env: Mapping[str, str] | None = None,
                docker: str = "docker") -> list[str]:
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    env = os.environ if env is None else env
    cmd = [docker, "run", "--rm", "--gpus", "all", "--ipc=host", "--user", f"{uid}:{gid}",
           "--workdir", str(root), "--name", f"voice-lane-{run_id}"]
    for host, inside, ro in mounts(root, repo, settings):
        cmd += ["--volume", f"{host}:{inside}:{'ro' if ro else 'rw'}"]
    passed = {"LANE_RUN_ID": run_id, "HOME": "/tmp", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg",
              "LANE_REQUIRE_CLEAN_TREE": "1" if settings.require_clean_tree else "0"}
    for key, value in passed.items():
        cmd += ["--env", f"{key}={value}"]
    for var in sorted(ENV_VARS):  # the operator's own variables travel as they are
        if var in env and var not in passed and var not in ("TRAIN_BACKEND", "LANE_KERNEL"):
            cmd += ["--env", var]
    cmd += [tag, *inner_args(settings, root, resume, run_id)]
    return cmd


def _stream(cmd: list[str], ctx: RunContext, prefix: str, log_lines: bool) -> tuple[int, list[str]]:
    """Run `cmd`, echo its output live (and to the orchestrator log when `log_lines`); return the
    exit code and the last TAIL_LINES lines."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                errors="replace")
    except OSError as exc:
        return 127, [f"cannot start {cmd[0]}: {exc}"]
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        tail.append(line)
        if log_lines:
            ctx.log.say(f"{prefix}{line}")
        else:
            print(line, flush=True)
    return proc.wait(), list(tail)


def _log_tail(ctx: RunContext, what: str, tail: list[str]) -> None:
    ctx.log.write(f"--- {what}: last {len(tail)} line(s) of docker output ---")
    for line in tail:
        ctx.log.write(f"| {line}")
    ctx.log.write("--- end of tail ---")


def ensure_image(ctx: RunContext, repo: Path = REPO, docker: str | None = None) -> str:
    docker = docker or shutil.which("docker")
    if not docker:
        raise LaneError("docker_build_failed", "the docker client is not installed (no `docker` on PATH)")
    tag = image_tag(repo)
    try:
        found = subprocess.run(inspect_command(tag, docker), capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise LaneError("docker_build_failed", "the Docker engine did not answer `docker image inspect` in 120 s") from None
    if found.returncode == 0:
        ctx.log.say(f"docker: reusing image {tag} ({found.stdout.strip()[:19]})")
        return tag
    ctx.log.say(f"docker: building {tag} from {repo / DOCKERFILE}")
    rc, tail = _stream(build_command(tag, repo, docker), ctx, "docker build| ", log_lines=True)
    if rc != 0:
        _log_tail(ctx, "docker build failed", tail)
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise LaneError("docker_build_failed", f"docker build exited {rc}: {last.strip()[:200]}")
    return tag


def run(ctx: RunContext, repo: Path = REPO) -> int:
    from ..core import status as run_status

    docker = shutil.which("docker")
    tag = ensure_image(ctx, repo, docker)
    assert docker is not None
    for name in MOUNT_DIRS:  # created here, so the engine does not create them root-owned
        (ctx.root / name).mkdir(parents=True, exist_ok=True)
    cmd = run_command(tag, ctx.settings, ctx.root, repo, ctx.run_id, resume=ctx.resume, docker=docker)
    ctx.log.say("docker: " + " ".join(cmd))
    rc, tail = _stream(cmd, ctx, "", log_lines=False)  # the runner inside logs to the same (mounted) file
    if rc == 0:
        return 0
    final = run_status.final(run_status.read(ctx.root, ctx.run_id, ctx.settings.lane), ctx.run_id)
    if final is not None and final.get("exit_code") == rc:
        return rc  # the runner inside finished and already printed its [tts-prod] line
    _log_tail(ctx, "docker run failed", tail)
    last = next((t for t in reversed(tail) if t.strip()), "no output")
    raise LaneError("docker_run_failed", f"container exited {rc}: {last.strip()[:200]}")
