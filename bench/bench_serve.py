"""Load benchmark and soak of `lane serve`: writes bench/results/serve_cpu.json.

The server is the real CLI (`python -m lane serve BUNDLE`, a subprocess, its default settings unless
given) over an untrained production-size bundle (bench/prodbundle.py: FastPitch 45.7 M + the HiFi-GAN
v2-width generator, durations pinned to natural speech), served with --allow-unpromoted (it is not a
GO voice). The client is httpx over loopback: 1, 4 and 16 concurrent clients, each for --seconds,
each posting OpenAI-shaped requests (POST /v1/audio/speech, wav, streamed) for sentences of about 5 s
and reading the answer to its end. A 503 (overloaded) is counted as an error and its Retry-After is
honoured, as a client should. Recorded per level: requests, errors by status, throughput (requests/s
and audio seconds per second), latency p50/p95 (to the last byte), time to first byte p50/p95.
Separately, one client and a long text (six ~5 s sentences): time to first byte against the whole;
the first mp3 byte of a 4,096-character request (OpenAI's longest input; target <= 2 s on the 2-core
box); /healthz and a one-sentence request while 200 idle sockets are open.

Then the soak (serve_soak.py, --soak-s, default 10 minutes): mixed clients at once against the same
server (OpenAI-shaped mp3 requests read to the end, 4,096-character requests, clients that abandon long
requests after their first audio or before it, slow readers taking wav at a fraction of real time, the
seed's /api/voice/speak, 100 idle sockets reopened as the server closes them, a /healthz probe every
half second), reporting per kind of client requests, errors by status and reason code, latency and
time to first byte p50/p95/p99, throughput, the server's RSS high-water mark (the kernel's VmHWM), its
CPU seconds per audio second, and what its counters say (refusals by layer, connections closed by
reason, abandoned requests). The machine's load (other processes by CPU) is recorded with the result.

    nice .venv/bin/python bench/bench_serve.py [--bundle DIR] [--seconds 30] [--levels 1 4 16] [--soak-s 600]

Bounded: about 2 minutes, plus the soak, plus the server's start (and the bundle's build, once, ~3 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from benchlib import machine
from serve_soak import LONG_4096, idle_flood, load_now, mp3_first_byte, soak

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SENTENCES = [
    "The quick brown fox jumps over the lazy dog, and then it runs away fast.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Although the weather was cold, the children played outside in the park.",
]
LONG = " ".join(SENTENCES * 2)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 4)


async def one(client: httpx.AsyncClient, text: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    ttfb = None
    size = 0
    async with client.stream("POST", "/v1/audio/speech", json={"model": "tts-1", "voice": VOICE[0], "input": text,
                                                               "response_format": "wav"}) as resp:
        async for chunk in resp.aiter_raw():
            if ttfb is None and chunk:
                ttfb = time.perf_counter() - t0
            size += len(chunk)
        return {"status": resp.status_code, "latency": time.perf_counter() - t0, "ttfb": ttfb, "bytes": size,
                "retry_after": float(resp.headers.get("retry-after") or 0)}


async def worker(client: httpx.AsyncClient, until: float, k: int, out: list[dict[str, Any]]) -> None:
    i = k
    while time.perf_counter() < until:
        try:
            r = await one(client, SENTENCES[i % len(SENTENCES)])
        except httpx.HTTPError as exc:
            r = {"status": f"error: {type(exc).__name__}", "latency": None, "ttfb": None, "bytes": 0, "retry_after": 1}
        out.append(r)
        i += 1
        if r["status"] != 200:
            await asyncio.sleep(r["retry_after"] or 1)


async def level(base: str, clients: int, seconds: float, sr: int) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client, t0 + seconds, k, out) for k in range(clients)))
        wall = time.perf_counter() - t0
    ok = [r for r in out if r["status"] == 200]
    errors: dict[str, int] = {}
    for r in out:
        if r["status"] != 200:
            errors[str(r["status"])] = errors.get(str(r["status"]), 0) + 1
    audio_s = sum((r["bytes"] - 44) / 2 / sr for r in ok)
    return {"clients": clients, "wall_s": round(wall, 1), "requests": len(out), "ok": len(ok), "errors": errors,
            "throughput_rps": round(len(ok) / wall, 3), "audio_s_per_s": round(audio_s / wall, 3),
            "latency_p50_s": pct([r["latency"] for r in ok], 0.5), "latency_p95_s": pct([r["latency"] for r in ok], 0.95),
            "ttfb_p50_s": pct([r["ttfb"] for r in ok if r["ttfb"]], 0.5),
            "ttfb_p95_s": pct([r["ttfb"] for r in ok if r["ttfb"]], 0.95),
            "audio_s_per_request": round(audio_s / len(ok), 2) if ok else None}


async def long_text(base: str, repeats: int = 3) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        rows = [await one(client, LONG) for _ in range(repeats)]
    return {"text_chars": len(LONG), "sentences": 6, "ttfb_s": [round(r["ttfb"], 3) for r in rows],
            "total_s": [round(r["latency"], 3) for r in rows],
            "ttfb_over_total": round(statistics.fmean(r["ttfb"] / r["latency"] for r in rows), 3)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(bundle: Path, port: int, extra: list[str], log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "lane", "serve", str(bundle), "--allow-unpromoted", "--port", str(port), *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tempfile.gettempdir(), env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"server exited {proc.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("server did not become ready")


VOICE = ["prod_v2"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bundle", type=Path, help="a bundle dir (default: the untrained production-size v2 bundle)")
    ap.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "lane-bench-prod")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--levels", type=int, nargs="*", default=[1, 4, 16])
    ap.add_argument("--soak-s", type=float, default=600.0, help="the soak's length (0: no soak)")
    ap.add_argument("--server-args", default="", help="extra `lane serve` flags, e.g. '--max-inflight 8'")
    ap.add_argument("--out", type=Path, default=REPO / "bench/results/serve_cpu.json")
    args = ap.parse_args()
    if args.bundle is None:
        from prodbundle import production_bundle

        args.bundle = production_bundle(args.workspace, "v2")
    manifest = json.loads((args.bundle / "manifest.json").read_text())
    VOICE[0] = manifest["voice_profile_id"]
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="lane-bench-serve-", suffix=".log")[1])
    result: dict[str, Any] = {"bench": "serve", "machine": machine(niceness=os.nice(0)),
                              "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                              "bundle": {"voice": VOICE[0], "vocoder": manifest["models"]["vocoder"].get("type"),
                                         "files_bytes": sum(f["bytes"] for f in manifest["files"].values()),
                                         "note": "untrained production-size FastPitch 45.7 M + HiFi-GAN v2 width"},
                              "server": f"python -m lane serve BUNDLE --allow-unpromoted {args.server_args}".strip(),
                              "seconds_per_level": args.seconds, "sentences": SENTENCES}
    proc = start_server(args.bundle, port, args.server_args.split(), log)
    try:
        base = f"http://127.0.0.1:{port}"
        result["server_settings"] = httpx.get(f"{base}/healthz").json()
        result["load_at_start"] = load_now()
        result["mp3_first_byte_4096_chars"] = asyncio.run(mp3_first_byte(base, VOICE[0], LONG_4096, args.bundle))
        print(json.dumps(result["mp3_first_byte_4096_chars"]), flush=True)
        result["idle_flood"] = asyncio.run(idle_flood(base, VOICE[0], SENTENCES[0], port))
        print(json.dumps(result["idle_flood"]), flush=True)
        result["long_text"] = asyncio.run(long_text(base))
        result["levels"] = []
        for n in args.levels:
            result["levels"].append(asyncio.run(level(base, n, args.seconds, int(manifest["sample_rate"]))))
            print(json.dumps(result["levels"][-1]), flush=True)
        if args.soak_s > 0:
            result["soak"] = asyncio.run(soak(base, VOICE[0], SENTENCES, args.soak_s, proc.pid, port))
            print(json.dumps(result["soak"]["summary"]), flush=True)
        result["load_at_end"] = load_now()
        metrics = httpx.get(f"{base}/metrics").text
        result["server_rtf_lines"] = [ln for ln in metrics.splitlines() if ln.startswith("lane_serve_rtf_")
                                      and ("_sum" in ln or "_count" in ln)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["long_text"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
