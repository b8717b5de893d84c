"""The `local_docker` backend: build the image from docker/ (reused when its content hash is already
built, or a prebuilt `LANE_DOCKER_IMAGE`), then run the runner inside it: the workspace mounted at the
same paths, the calling uid:gid, no network, and the GPUs when asked.

Command lines are built by pure functions (`image_tag`, `build_command`, `run_command`) so tests
can pin them without an engine. Mounts use the same absolute path inside and out, so every path
the runner writes (train_status, run dirs, ARTIFACT lines) means the same file on the host.

Engine knobs (environment, read when the run starts):
- LANE_DOCKER: the client, `docker` (default; also against podman's Docker API via DOCKER_HOST) or `podman`;
- LANE_DOCKER_IMAGE: use this image as it is (no build; it must exist);
- LANE_DOCKER_GPUS: the `--gpus` value, `all` by default; `none` (or empty) runs without GPUs. With GPUs
  the runner inside must find one (LANE_REQUIRE_GPU): an engine that ignores `--gpus` (podman 4.3 does,
  and exits 0) ends the run `gpu_unavailable` instead of training on the CPU;
- LANE_DOCKER_NETWORK: the `--network` value, `none` by default: nothing is downloaded at run time;
- LANE_CONTAINER_ENGINE, LANE_BASE_IMAGE ...: passed on to scripts/container/build.sh.

Exit mapping:
- a read-write mount the calling uid cannot write                             -> workspace_not_writable;
- the client is missing, the engine is unreachable or the build fails         -> docker_build_failed;
- the container exits non-zero without the runner having finished this run   -> docker_run_failed;
- the runner inside finished (its train_status for this run id is final)     -> its own exit code.
Both docker failures write the last lines of the engine's output to the orchestrator log.
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
BUILD_SCRIPT = "scripts/container/build.sh"
HASHED = ("docker", "pyproject.toml", "README.md", "lane", "configs", "notebooks", ".dockerignore", BUILD_SCRIPT)
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


def default_base(repo: str | os.PathLike[str]) -> str:
    """The Dockerfile's default BASE_IMAGE (the production CUDA PyTorch image)."""
    for line in (Path(repo) / DOCKERFILE).read_text(encoding="utf-8").splitlines():
        if line.startswith("ARG BASE_IMAGE="):
            return line.split("=", 1)[1].strip()
    raise LaneError("docker_build_failed", f"{DOCKERFILE} declares no ARG BASE_IMAGE default")


def build_command(tag: str, repo: str | os.PathLike[str], docker: str = "docker",
                  env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """scripts/container/build.sh TAG and its environment: the engine is LANE_CONTAINER_ENGINE when set,
    else the client itself; the base is LANE_BASE_IMAGE when set ("debootstrap": the local Debian base),
    else the Dockerfile's production default."""
    env = dict(os.environ if env is None else env)
    env.setdefault("LANE_CONTAINER_ENGINE", docker)
    if env.get("LANE_BASE_IMAGE", "") == "debootstrap":
        env.pop("LANE_BASE_IMAGE")
    elif not env.get("LANE_BASE_IMAGE"):
        env["LANE_BASE_IMAGE"] = default_base(repo)
    return ["bash", str(Path(repo) / BUILD_SCRIPT), tag], env


def writable_by(path: Path, uid: int, gid: int, groups: Sequence[int] = ()) -> bool:
    """Whether `uid` (primary group `gid`, supplementary `groups`) may create files in the folder
    `path`, by its owner and mode bits (root may always)."""
    if uid == 0:
        return True
    st = path.stat()
    if st.st_uid == uid:
        return bool(st.st_mode & 0o300 == 0o300)
    if st.st_gid == gid or st.st_gid in groups:
        return bool(st.st_mode & 0o030 == 0o030)
    return bool(st.st_mode & 0o003 == 0o003)


def check_writable(mount_list: Sequence[tuple[Path, Path, bool]], uid: int, gid: int,
                   groups: Sequence[int] = ()) -> None:
    """LaneError(workspace_not_writable) naming the first read-write mount `uid` cannot write: the
    container runs as that uid, so the runner inside would fail on it half-way."""
    for host, _inside, ro in mount_list:
        if ro:
            continue
        if host.exists() and not host.is_dir():
            raise LaneError("workspace_not_writable", f"{host} is not a folder (mounted read-write)")
        where = host  # a folder still to be made: the caller makes it, so its parent must take it
        while not where.exists() and where != where.parent:
            where = where.parent
        if not writable_by(where, uid, gid, groups):
            st = where.stat()
            raise LaneError("workspace_not_writable",
                            f"{where} (owner {st.st_uid}:{st.st_gid}, mode {st.st_mode & 0o7777:04o}) is not writable "
                            f"for uid {uid} gid {gid}, the user the container runs as"
                            + ("" if where == host else f" (it would hold {host})"))


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


def anchor_mounts(root: Path, env: Mapping[str, str] | None = None,
                  ) -> tuple[list[tuple[Path, Path, bool]], dict[str, str]]:
    """The trust anchors as the host resolves them (lane.core.anchors), for the runner inside: the
    signing key (created here on first use) and the trusted-keys file read-only, the witness folder
    read-write, each at its own path and named by its variable. Without them the runner inside would
    sign with a throw-away key in the container's HOME, and nothing it signed would verify here."""
    from ..core import anchors, signing

    key = signing.load_signer(root, env).path
    out: list[tuple[Path, Path, bool]] = [(key, key, True)]
    names = {"LANE_SIGNING_KEY": str(key)}
    trusted = anchors.trusted_file(root, env)
    if trusted.is_file():
        out.append((trusted, trusted, True))
        names["LANE_TRUSTED_KEYS"] = str(trusted)
    witness = anchors.witness_dir(root, env)
    witness.mkdir(parents=True, exist_ok=True, mode=0o700)
    out.append((witness, witness, False))
    names["LANE_WITNESS_DIR"] = str(witness)
    return out, names


def container_name(run_id: str) -> str:
    return f"voice-lane-{run_id}"


def gpus_flag(env: Mapping[str, str]) -> str | None:
    """The `--gpus` value LANE_DOCKER_GPUS asks for (default `all`); None for `none` or empty."""
    value = env.get("LANE_DOCKER_GPUS", "all").strip()
    return None if value.lower() in ("", "none", "0", "no") else value


def run_command(tag: str, settings: Settings, root: Path, repo: Path, run_id: str, *, resume: bool = False,
                uid: int | None = None, gid: int | None = None, env: Mapping[str, str] | None = None,
                docker: str = "docker",
                anchors: tuple[list[tuple[Path, Path, bool]], dict[str, str]] | None = None) -> list[str]:
    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    env = os.environ if env is None else env
    gpus = gpus_flag(env)
    network = env.get("LANE_DOCKER_NETWORK", "").strip() or "none"
    # no --rm: with podman 4.3's Docker API, `docker run --rm` reports exit 0 whatever the container
    # returned (the container is gone before the client asks); `run` removes it afterwards instead
    cmd = [docker, "run", *(["--gpus", gpus] if gpus else []), "--ipc=host", "--network", network,
           "--user", f"{uid}:{gid}", "--workdir", str(root), "--name", container_name(run_id)]
    anchor_vols, anchor_env = anchors or ([], {})
    for host, inside, ro in [*mounts(root, repo, settings), *anchor_vols]:
        cmd += ["--volume", f"{host}:{inside}:{'ro' if ro else 'rw'}"]
    passed = {"LANE_RUN_ID": run_id, "HOME": "/tmp", "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg",
              "LANE_REQUIRE_CLEAN_TREE": "1" if settings.require_clean_tree else "0", **anchor_env}
    if gpus:  # the runner inside checks that the engine really gave it one (lane.core.gpu)
        passed["LANE_REQUIRE_GPU"] = f"docker --gpus {gpus}"
    for key, value in passed.items():
        cmd += ["--env", f"{key}={value}"]
    for var in sorted(ENV_VARS):  # the operator's own variables travel as they are
        if var in env and var not in passed and var not in ("TRAIN_BACKEND", "LANE_KERNEL"):
            cmd += ["--env", var]
    cmd += [tag, *inner_args(settings, root, resume, run_id)]
    return cmd


def _stream(cmd: list[str], ctx: RunContext, prefix: str, log_lines: bool,
            env: Mapping[str, str] | None = None) -> tuple[int, list[str]]:
    """Run `cmd`, echo its output live (and to the orchestrator log when `log_lines`); return the
    exit code and the last TAIL_LINES lines."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                                errors="replace", env=None if env is None else dict(env))
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


def client(env: Mapping[str, str] | None = None) -> str | None:
    """The container client: LANE_DOCKER (a name on PATH or a path), else `docker`, else `podman`."""
    env = os.environ if env is None else env
    wanted = env.get("LANE_DOCKER", "").strip()
    if wanted:
        return shutil.which(wanted)
    return shutil.which("docker") or shutil.which("podman")


def _inspect(tag: str, docker: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(inspect_command(tag, docker), capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise LaneError("docker_build_failed", f"the engine did not answer `{Path(docker).name} image inspect` "
                        "in 120 s") from None


def ensure_image(ctx: RunContext, repo: Path = REPO, docker: str | None = None) -> str:
    docker = docker or client()
    if not docker:
        raise LaneError("docker_build_failed", "no container client is installed (no `docker` or `podman` on PATH, "
                        "or LANE_DOCKER names none)")
    given = os.environ.get("LANE_DOCKER_IMAGE", "").strip()
    tag = given or image_tag(repo)
    found = _inspect(tag, docker)
    if found.returncode == 0:
        ctx.log.say(f"docker: reusing image {tag} ({found.stdout.strip()[:19]})")
        return tag
    if given:
        said = ((found.stderr or found.stdout).strip().splitlines() or ["no output"])[-1]
        raise LaneError("docker_build_failed", f"LANE_DOCKER_IMAGE={given} is not an image the engine has: {said[:200]}")
    cmd, env = build_command(tag, repo, docker)
    ctx.log.say(f"docker: building {tag} from {repo / DOCKERFILE} ({env['LANE_CONTAINER_ENGINE']}, "
                f"base {env.get('LANE_BASE_IMAGE', 'debootstrap')})")
    rc, tail = _stream(cmd, ctx, "docker build| ", log_lines=True, env=env)
    if rc != 0:
        _log_tail(ctx, "docker build failed", tail)
        last = next((t for t in reversed(tail) if t.strip()), "no output")
        raise LaneError("docker_build_failed", f"the image build exited {rc}: {last.strip()[:200]}")
    return tag


def run(ctx: RunContext, repo: Path = REPO) -> int:
    from ..core import status as run_status

    uid, gid = os.getuid(), os.getgid()
    check_writable(mounts(ctx.root, repo, ctx.settings), uid, gid, os.getgroups())
    docker = client()
    tag = ensure_image(ctx, repo, docker)
    assert docker is not None
    for name in MOUNT_DIRS:  # created here, so the engine does not create them root-owned
        (ctx.root / name).mkdir(parents=True, exist_ok=True)
    cmd = run_command(tag, ctx.settings, ctx.root, repo, ctx.run_id, resume=ctx.resume, uid=uid, gid=gid,
                      docker=docker, anchors=anchor_mounts(ctx.root))
    ctx.log.say("docker: " + " ".join(cmd))
    try:
        rc, tail = _stream(cmd, ctx, "", log_lines=False)  # the runner inside logs to the same (mounted) file
    finally:
        subprocess.run([docker, "rm", "--force", container_name(ctx.run_id)], capture_output=True, timeout=120,
                       check=False)
    if rc == 0:
        return 0
    final = run_status.final(run_status.read(ctx.root, ctx.run_id, ctx.settings.lane), ctx.run_id)
    if final is not None and final.get("exit_code") == rc:
        return rc  # the runner inside finished and already printed its [tts-prod] line
    _log_tail(ctx, "docker run failed", tail)
    last = next((t for t in reversed(tail) if t.strip()), "no output")
    raise LaneError("docker_run_failed", f"container exited {rc}: {last.strip()[:200]}")
