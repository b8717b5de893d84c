"""The container path: the image build, cold and warm, and the fixture lane's wall time through
local_docker against the local backend, side by side.

    .venv/bin/python bench/bench_container.py [--runs 3] [--no-cold]

It starts podman's Docker API service with scripts/container/engine.sh in a fresh /tmp folder and
stops it by its pid at the end. Cold: the image, its base (voice-lane-base:bookworm), the dangling
layers and the build's pip cache mount are removed first, so the build starts from `debootstrap`
as on a fresh machine (the host's apt and pip sources stay as they are). Warm: the same build
again, nothing changed. Then the four fixture `pass` notebooks in one workspace, `lane run` local
and local_docker (`--network none`, no GPU) interleaved, seconds from launch to the final
[tts-prod] line. Writes bench/results/container_cpu.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import machine

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
STAGES = ["verify", "train", "export", "validate"]
sys.path.insert(0, str(REPO / "tests"))


def workspace(path: Path) -> Path:
    """configs/, the fixture notebooks as the workspace's own (verify without the consent record,
    which a read-only workspace root cannot take), a few seconds of espeak speech."""
    import yaml
    from lane_runs import install_notebooks

    from lane.data.espeak import speak

    shutil.copytree(REPO / "configs", path / "configs")
    install_notebooks(path, dict.fromkeys(STAGES, "pass"), {"verify": "with_consent = False"})
    (path / "data").mkdir()
    speak("The quick brown fox jumps over the lazy dog, and then it rests.", path / "data" / "speech.wav")
    cfg_path = path / "configs" / "lane.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["settings"].update(audio="data/speech.wav", stages=STAGES)
    cfg_path.write_text(yaml.safe_dump(cfg))
    return path


def timed_run(ws: Path, backend: str, env: dict[str, str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "lane", "run", "--backend", backend, "--root", str(ws)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ws, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    final, at = "", 0.0
    for line in proc.stdout:
        if line.startswith("[tts-prod]"):
            final, at = line.strip(), time.perf_counter() - t0
    rc = proc.wait()
    assert rc == 0 and "status=completed reason=ok" in final, (backend, rc, final)
    return {"backend": backend, "to_final_line_s": round(at, 3), "to_exit_s": round(time.perf_counter() - t0, 3)}


def podman(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, env=env, check=False)


def make_cold(env: dict[str, str], tag: str, base: str) -> None:
    podman("rmi", "-f", tag, base, env=env)
    podman("image", "prune", "-f", env=env)  # the dangling intermediate layers of earlier builds
    for d in glob.glob("/var/tmp/buildah-cache*"):  # podman's RUN --mount=type=cache folders
        shutil.rmtree(d, ignore_errors=True)


def build(env: dict[str, str], tag: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    p = subprocess.run(["bash", str(REPO / "scripts" / "container" / "build.sh"), tag], capture_output=True,
                       text=True, env=env, check=False)
    seconds = round(time.perf_counter() - t0, 1)
    assert p.returncode == 0, p.stderr[-3000:]
    steps = [x.removeprefix("build.sh: ") for x in p.stderr.splitlines() if x.startswith("build.sh: ")]
    return {"seconds": seconds, "steps": steps}


def image_size(env: dict[str, str], tag: str) -> str:
    return podman("image", "ls", "--format", "{{.Size}}", tag, env=env).stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="runs per backend (interleaved)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold build (keep the cached layers)")
    ap.add_argument("--tag", default="voice-lane:dev")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "container_cpu.json")
    args = ap.parse_args()

    import container_engine

    state = Path(tempfile.mkdtemp(prefix="vle-bench-", dir="/tmp"))
    work = Path(tempfile.mkdtemp(prefix="bench-container-"))
    info = machine()
    builds: dict[str, Any] = {}
    try:
        env = {**os.environ, **container_engine.start_engine(state), "PYTHONUNBUFFERED": "1", "LANE_BASE_IMAGE": ""}
        info["engine"] = podman("--version", env=env).stdout.strip() + " (runc), docker CLI " + subprocess.run(
            ["docker", "--version"], capture_output=True, text=True, check=False).stdout.strip()
        if not args.no_cold:
            make_cold(env, args.tag, os.environ.get("LANE_LOCAL_BASE", "voice-lane-base:bookworm"))
            builds["cold"] = build(env, args.tag)
        builds["warm"] = build(env, args.tag)
        builds["image_size"] = image_size(env, args.tag)
        env.setdefault("LANE_SIGNING_KEY", str(work / "keys" / "signing-ed25519.pem"))
        env.update(LANE_DOCKER_IMAGE=args.tag, LANE_DOCKER_GPUS="none")
        ws = workspace(work / "ws")
        timed_run(ws, "local", env)  # warm-up: page cache, kernelspec, first imports
        timed_run(ws, "local_docker", env)
        rows = [timed_run(ws, backend, env) for _ in range(args.runs) for backend in ("local", "local_docker")]
    finally:
        subprocess.run(["bash", str(container_engine.ENGINE_SH), "stop", str(state)], capture_output=True, check=False)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)

    def med(backend: str) -> float:
        return round(statistics.median(r["to_final_line_s"] for r in rows if r["backend"] == backend), 3)

    result = {
        "name": "container_cpu",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": info,
        "command": "python bench/bench_container.py " + " ".join(sys.argv[1:]),
        "image": f"{args.tag}: debootstrap bookworm minbase, CPU torch, no extra (scripts/container/build.sh)",
        "builds": builds,
        "lane": "the four fixture `pass` notebooks (tests/fixtures/notebooks/pass.ipynb), demo profile",
        "runs": args.runs,
        "median_s_to_final_line": {"local": med("local"), "local_docker": med("local_docker")},
        "container_overhead_median_s": round(med("local_docker") - med("local"), 3),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("builds", "median_s_to_final_line", "container_overhead_median_s")},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
