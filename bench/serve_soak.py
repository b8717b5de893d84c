"""The hostile half of bench/bench_serve.py: the first mp3 byte of a 4,096-character request, /healthz
and speech under 200 idle sockets, and the soak (mixed clients for minutes). Clients are httpx (async)
and raw sockets on loopback; the server is the real CLI, started by bench_serve.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

MORE = [
    "The committee met on Tuesday to discuss the new budget for the coming year.",
    "She opened the window, and a cool breeze carried the smell of rain into the room.",
    "If the train is late again, we will take the bus that leaves from the corner.",
    "Every morning he walks the dog along the river before the city wakes up.",
    "The museum will be closed for repairs until the end of next month.",
]
LONG_4096 = ""
while len(LONG_4096) < 4096:
    LONG_4096 += " ".join(MORE) + " "
LONG_4096 = LONG_4096[:4096].rsplit(" ", 1)[0]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, round(q * (len(s) - 1)))], 4)


def load_now() -> dict[str, Any]:
    """The machine's load: load average and the busiest other processes over one second."""
    import os

    import psutil

    procs = list(psutil.process_iter(["pid", "name", "cmdline"]))
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
    time.sleep(1.0)
    busy = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            cpu = p.cpu_percent(None)
            if cpu >= 5 and p.pid != os.getpid():
                busy.append({"cpu_pct": round(cpu), "cmd": " ".join(p.info["cmdline"] or [p.info["name"]])[:120]})
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "busy_processes": sorted(busy, key=lambda b: -b["cpu_pct"])}


def error_code(status: int, body: bytes) -> str:
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        err = json.loads(body)["error"]
        return f"{status} {err['code'] if isinstance(err, dict) else err}"
    return str(status)


async def one(client: httpx.AsyncClient, kind: str, path: str, body: dict[str, Any], *,
              read_bps: float | None = None, abandon_s: float | None = None) -> dict[str, Any]:
    """One request: read to the end (at `read_bps` bytes a second when given), or leave (close the
    connection) after `abandon_s` seconds, or at the first audio when abandon_s is 0."""
    row: dict[str, Any] = {"kind": kind, "status": None, "ttfb": None, "latency": None, "bytes": 0}
    if not abandon_s:
        return await _one(client, row, path, body, read_bps, abandon_s)
    try:
        return await asyncio.wait_for(_one(client, row, path, body, read_bps, None), abandon_s)
    except TimeoutError:
        row["status"] = "abandoned"
        return row


async def _one(client: httpx.AsyncClient, row: dict[str, Any], path: str, body: dict[str, Any],
               read_bps: float | None, abandon_s: float | None) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", path, json=body) as resp:
            row["status"] = resp.status_code
            if resp.status_code != 200:
                row["code"] = error_code(resp.status_code, await resp.aread())
                row["retry_after"] = float(resp.headers.get("retry-after") or 1)
                return row
            async for chunk in resp.aiter_raw():
                row["ttfb"] = row["ttfb"] or time.perf_counter() - t0
                row["bytes"] += len(chunk)
                if abandon_s is not None:
                    row["status"] = "abandoned"
                    return row
                if read_bps:
                    await asyncio.sleep(len(chunk) / read_bps)
            row["latency"] = time.perf_counter() - t0
    except httpx.HTTPError as exc:
        row["status"] = f"client error: {type(exc).__name__}"
    return row


async def mp3_first_byte(base: str, voice: str, text: str, bundle: Path, repeats: int = 3) -> dict[str, Any]:
    """Time to the first mp3 byte of a 4,096-character request on an otherwise idle server (the client
    leaves after it: the rest would take minutes to synthesize), and beside each, the time the voice
    itself takes for the first sentence in this process (the floor under the current load)."""
    from lane.bundle.voice import OnnxVoice
    from lane.serve.synth import sentences

    local = OnnxVoice(bundle, threads=2, spin=False)
    local.synthesize("Hello.")
    first_sentence = sentences(text)[0]
    firsts, floors = [], []
    for _ in range(repeats):
        async with httpx.AsyncClient(base_url=base, timeout=300) as client:
            t0 = time.perf_counter()
            async with client.stream("POST", "/v1/audio/speech", json={"model": "tts-1", "voice": voice, "input": text,
                                                                       "response_format": "mp3"}) as resp:
                assert resp.status_code == 200, await resp.aread()
                async for chunk in resp.aiter_raw():
                    if chunk:
                        firsts.append(time.perf_counter() - t0)
                        break
        await asyncio.sleep(3)  # the abandoned request's sentence ends, its slot frees
        t0 = time.perf_counter()
        await asyncio.to_thread(local.synthesize, first_sentence)
        floors.append(time.perf_counter() - t0)
        await asyncio.sleep(1)
    median, floor = statistics.median(firsts), statistics.median(floors)
    return {"chars": len(text), "first_byte_s": [round(f, 3) for f in firsts], "median_s": round(median, 3),
            "target_s": 2.0, "first_sentence": first_sentence,
            "first_sentence_synthesis_alone_s": [round(f, 3) for f in floors],
            "server_overhead_median_s": round(median - floor, 3)}


async def idle_flood(base: str, voice: str, sentence: str, port: int, n: int = 200) -> dict[str, Any]:
    """/healthz and one sentence of speech while `n` idle sockets are open."""
    socks = [await asyncio.open_connection("127.0.0.1", port) for _ in range(n)]
    health, speech = [], []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            for _ in range(3):
                t0 = time.perf_counter()
                assert (await client.get("/healthz")).status_code == 200
                health.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                r = await client.post("/v1/audio/speech", json={"voice": voice, "input": sentence,
                                                                "response_format": "mp3"})
                assert r.status_code == 200
                speech.append(time.perf_counter() - t0)
    finally:
        for _, w in socks:
            w.close()
    return {"idle_sockets": n, "healthz_s": [round(x, 3) for x in health],
            "one_sentence_mp3_s": [round(x, 3) for x in speech]}


class Soak:
    def __init__(self, base: str, voice: str, sentences: list[str], seconds: float, pid: int, port: int) -> None:
        self.base, self.voice, self.sentences, self.port, self.pid = base, voice, sentences, port, pid
        self.until = time.perf_counter() + seconds
        self.rows: list[dict[str, Any]] = []
        self.health: list[float] = []
        self.rss: list[int] = []

    def live(self) -> bool:
        return time.perf_counter() < self.until

    async def loop(self, kind: str, make: Any, **opts: Any) -> None:
        rnd = random.Random(kind)
        limits = httpx.Limits(max_keepalive_connections=0 if "abandon_s" in opts else 1)
        async with httpx.AsyncClient(base_url=self.base, timeout=600, limits=limits) as client:
            while self.live():
                path, body = make(rnd)
                row = await one(client, kind, path, body, **opts)
                self.rows.append(row)
                await asyncio.sleep(row.get("retry_after", 0) or rnd.uniform(0.2, 1.0))

    def speech(self, fmt: str, n: tuple[int, int] = (1, 3)) -> Any:
        def make(rnd: random.Random) -> tuple[str, dict[str, Any]]:
            text = " ".join(rnd.choice(self.sentences + MORE) for _ in range(rnd.randint(*n)))
            return "/v1/audio/speech", {"model": "tts-1", "voice": self.voice, "input": text, "response_format": fmt}
        return make

    async def idle(self, n: int) -> None:
        """`n` idle sockets, reopened as the server closes them."""
        socks: list[Any] = []
        while self.live():
            socks = [s for s in socks if not s[0].at_eof()]
            while len(socks) < n:
                socks.append(await asyncio.open_connection("127.0.0.1", self.port))
            await asyncio.sleep(0.5)
        for _, w in socks:
            w.close()

    async def probe(self) -> None:
        async with httpx.AsyncClient(base_url=self.base, timeout=60) as client:
            while self.live():
                t0 = time.perf_counter()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/healthz")).status_code == 200:
                        self.health.append(time.perf_counter() - t0)
                with contextlib.suppress(OSError, ValueError):
                    status = Path(f"/proc/{self.pid}/status").read_text()
                    self.rss.append(int(status.split("VmRSS:")[1].split()[0]) * 1024)
                await asyncio.sleep(0.5)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    return {(x.name, tuple(sorted(x.labels.items()))): float(x.value)
            for f in text_string_to_metric_families(text) for x in f.samples}


def deltas(before: str, after: str) -> dict[str, Any]:
    """What the server's own counters say happened between two scrapes of /metrics."""
    a, b = samples(before), samples(after)

    def by(name: str, *keys: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, labels), v in b.items():
            if n == name:
                d = v - a.get((n, labels), 0.0)
                if d:
                    lab = dict(labels)
                    key = " ".join(lab.get(k, "") for k in keys)
                    out[key] = round(out.get(key, 0.0) + d, 3)
        return out

    audio = sum(by("lane_serve_audio_seconds_total", "voice").values())
    cpu = sum(by("lane_serve_synthesis_cpu_seconds_total", "voice").values())
    process_cpu = b.get(("process_cpu_seconds_total", ()), 0) - a.get(("process_cpu_seconds_total", ()), 0)
    return {"audio_seconds": round(audio, 1), "synthesis_cpu_s_per_audio_s": round(cpu / audio, 4) if audio else None,
            "process_cpu_s": round(process_cpu, 1),
            "process_cpu_s_per_audio_s": round(process_cpu / audio, 4) if audio else None,
            "requests_by_status": by("lane_serve_requests_total", "status"),
            "rejected_by_layer_code": by("lane_serve_rejected_total", "layer", "code"),
            "closed_by_reason": by("lane_serve_closed_total", "reason"),
            "abandoned": by("lane_serve_abandoned_total", "endpoint"),
            "pieces": sum(by("lane_serve_pieces_total", "voice").values())}


def summary(s: Soak, seconds: float, before: str, after: str) -> dict[str, Any]:
    kinds: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in s.rows}):
        rows = [r for r in s.rows if r["kind"] == kind]
        ok = [r for r in rows if r["status"] == 200]
        kinds[kind] = {"requests": len(rows), "ok": len(ok),
                       "not_ok": dict(Counter(r.get("code") or str(r["status"]) for r in rows if r["status"] != 200)),
                       "latency_p50_p95_p99_s": [pct([r["latency"] for r in ok], q) for q in (0.5, 0.95, 0.99)],
                       "ttfb_p50_p95_p99_s": [pct([r["ttfb"] for r in rows if r["ttfb"]], q) for q in (0.5, 0.95, 0.99)]}
    server = deltas(before, after)
    hwm = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        hwm = int(Path(f"/proc/{s.pid}/status").read_text().split("VmHWM:")[1].split()[0]) * 1024
    ok_all = sum(k["ok"] for k in kinds.values())
    return {"seconds": round(seconds, 1), "requests": len(s.rows), "ok": ok_all,
            "throughput_ok_per_s": round(ok_all / seconds, 3),
            "audio_s_per_s": round(server["audio_seconds"] / seconds, 3),
            "errors_by_code": dict(Counter(r.get("code") or str(r["status"]) for r in s.rows
                                           if r["status"] not in (200, "abandoned"))),
            "rss_high_water_mb": round((hwm or max(s.rss, default=0)) / 2**20, 1),
            "rss_sampled_max_mb": round(max(s.rss, default=0) / 2**20, 1),
            "healthz_p50_p99_max_s": [pct(s.health, 0.5), pct(s.health, 0.99), round(max(s.health, default=0), 4)],
            "by_kind": kinds, "server": server}


async def soak(base: str, voice: str, sentences: list[str], seconds: float, pid: int, port: int) -> dict[str, Any]:
    s = Soak(base, voice, sentences, seconds, pid, port)
    long = lambda _r: ("/v1/audio/speech", {"model": "tts-1", "voice": voice, "input": LONG_4096,  # noqa: E731
                                            "response_format": "mp3"})
    seed = lambda r: ("/api/voice/speak", {"text": r.choice(sentences)})  # noqa: E731
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        before = (await client.get("/metrics")).text
    t0 = time.perf_counter()
    await asyncio.gather(
        *(s.loop("mp3", s.speech("mp3")) for _ in range(3)), s.loop("long_4096_mp3", long),
        s.loop("abandon_after_first_audio", long, abandon_s=0.0), s.loop("abandon_after_1s", s.speech("flac", (4, 8)),
                                                                         abandon_s=1.0),
        *(s.loop("slow_reader_wav_24kBps", s.speech("wav", (2, 4)), read_bps=24000) for _ in range(2)),
        s.loop("seed_wav", seed), s.idle(100), s.probe())
    wall = time.perf_counter() - t0
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        after = (await client.get("/metrics")).text
    return {"clients": {"mp3": 3, "long_4096_mp3": 1, "abandon_after_first_audio": 1, "abandon_after_1s": 1,
                        "slow_reader_wav_24kBps": 2, "seed_wav": 1, "idle_sockets": 100, "healthz_probe": 1},
            "summary": summary(s, wall, before, after)}
