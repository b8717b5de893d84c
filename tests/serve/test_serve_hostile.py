"""`lane serve` against clients that try to starve it, on loopback with the real tiny voice: idle and
trickling sockets (the connection layer closes or evicts them, /healthz and speech still answer),
connections all busy (503 with Retry-After, never a hang), clients that leave (their slots are free
after at most the sentence being synthesized), a client that stops reading (dropped, slot freed), and
OpenAI's own client retrying through an overload. Every wait is for a signal from the server (a
metric, a closed socket), never a clock: the limits below are only there to fail a hung server."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from serve_helpers import hold_slot, metric, release_slot, wait_for

STORY = " ".join(f"This is sentence number {n} of a story that goes on for quite a while." for n in range(1, 41))


def server_metric(app: Any, name: str, **labels: str) -> float:
    """A metric read in-process (no connection needed: some tests fill every connection)."""
    return metric(app.state.lane.metrics.render().decode(), name, **labels)


def connect(url: str, **opts: int) -> socket.socket:
    u = urlsplit(url)
    s = socket.socket()
    for opt, value in opts.items():
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, opt), value)
    s.settimeout(120)
    s.connect((u.hostname, u.port))
    return s


def post(path: str, body: dict[str, Any], url: str) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def closed_by_server(s: socket.socket) -> bool:
    """Blocks until the server closes `s` (True) or sends something (False)."""
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def test_idle_and_half_sent_sockets_never_shut_anyone_out(served_root: Path, serve_app: Any) -> None:
    """200 idle sockets and 20 that stopped halfway through their headers, against a limit of 32
    connections: each newcomer closes the oldest idle one; /healthz and speech answer."""
    url, app = serve_app(served_root, max_connections=32)
    idle = [connect(url) for _ in range(200)]
    half = [connect(url) for _ in range(20)]
    for s in half:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            assert http.get("/healthz").json()["status"] == "ok"
            speech = http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": "Hello there.",
                                                         "response_format": "wav"})
            assert speech.status_code == 200 and speech.headers["x-voice"] == "tiny"
        assert closed_by_server(idle[0])  # the oldest went first
        assert server_metric(app, "lane_serve_closed_total", reason="evicted") >= 220 - 32
        assert server_metric(app, "lane_serve_connections") <= 32
    finally:
        for s in idle + half:
            s.close()


def test_silent_and_trickling_clients_are_closed_by_their_timeouts(served_root: Path, serve_app: Any) -> None:
    url, app = serve_app(served_root, idle_timeout_s=2, header_timeout_s=0.5)
    silent = connect(url)
    assert closed_by_server(silent)
    trickle = connect(url)
    trickle.send(b"G")  # the request has begun: its deadline runs
    stop = threading.Event()

    def drip() -> None:  # a byte at a time: each resets no clock, the request's deadline stands
        for ch in b"ET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"a" * 100000:
            if stop.wait(0.05):
                return
            try:
                trickle.send(bytes([ch]))
            except OSError:
                return

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        assert closed_by_server(trickle)
    finally:
        stop.set()
        dripper.join()
        silent.close()
        trickle.close()
    assert server_metric(app, "lane_serve_closed_total", reason="idle") >= 1
    assert server_metric(app, "lane_serve_closed_total", reason="header_timeout") == 1


def test_when_every_connection_is_busy_a_newcomer_gets_503_and_retry_after(served_root: Path,
                                                                          serve_app: Any) -> None:
    url, app = serve_app(served_root, max_connections=3, max_inflight=1, max_queue=8, queue_timeout_s=600)
    thread = app.state.server_thread
    held = hold_slot(thread, app)
    waiting = [connect(url) for _ in range(3)]
    try:
        for s in waiting:
            s.sendall(post("/v1/audio/speech", {"voice": "tiny", "input": "Hello.", "response_format": "wav"}, url))
        wait_for("three requests queued", lambda: server_metric(app, "lane_serve_queued") == 3)
        late = connect(url)
        late.sendall(post("/v1/audio/speech", {"voice": "tiny", "input": "Hello."}, url))
        answer = b""
        while chunk := late.recv(65536):
            answer += chunk
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: " in head.lower()
        assert json.loads(body)["error"]["code"] == "overloaded"  # OpenAI's shape: it was a /v1 request
        assert server_metric(app, "lane_serve_rejected_total", layer="connection", code="overloaded") == 1
    finally:
        release_slot(thread, held)
    for s in waiting:  # the queued ones are answered once the slot is free
        assert s.recv(12).startswith(b"HTTP/1.1 200")
        s.close()


def test_clients_that_leave_free_their_slots_within_a_sentence(served_root: Path, serve_app: Any) -> None:
    """Four long requests (mp3 and pcm streamed, flac and the seed's wav whole) whose clients go away:
    nothing more than the sentences already being synthesized is made for them, and every slot is free."""
    url, app = serve_app(served_root)
    requests = [("/v1/audio/speech", {"voice": "tiny", "input": STORY, "response_format": "mp3"}),
                ("/v1/audio/speech", {"voice": "tiny", "input": STORY, "response_format": "pcm"}),
                ("/v1/audio/speech", {"voice": "tiny", "input": STORY, "response_format": "flac"}),
                ("/api/voice/speak", {"text": STORY})]
    clients = [connect(url) for _ in requests]
    for s, (path, body) in zip(clients, requests, strict=True):
        s.sendall(post(path, body, url))
    wait_for("four requests synthesizing", lambda: server_metric(app, "lane_serve_inflight") == 4)
    pieces_then = server_metric(app, "lane_serve_pieces_total", voice="tiny")
    for s in clients:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset, at once
        s.close()
    wait_for("every slot free", lambda: server_metric(app, "lane_serve_inflight") == 0)
    wait_for("four abandoned", lambda: server_metric(app, "lane_serve_abandoned_total", endpoint="/v1/audio/speech")
             + server_metric(app, "lane_serve_abandoned_total", endpoint="/api/voice/speak") == 4)
    made = server_metric(app, "lane_serve_pieces_total", voice="tiny") - pieces_then
    assert made <= 4, f"{made} sentences synthesized for clients that had left"
    assert server_metric(app, "lane_serve_pieces_total", voice="tiny") < 4 * 40 / 2
    with httpx.Client(base_url=url, timeout=120) as http:  # and the server answers as before
        assert http.post("/api/voice/speak", json={"text": "Hello."}).status_code == 200


def test_a_client_that_stops_reading_is_dropped_and_its_slot_freed(served_root: Path, serve_app: Any) -> None:
    url, app = serve_app(served_root, send_timeout_s=0.5)
    s = connect(url, SO_RCVBUF=4096)
    try:
        s.sendall(post("/v1/audio/speech", {"voice": "tiny", "input": STORY, "response_format": "pcm"}, url))
        wait_for("dropped as stalled", lambda: server_metric(app, "lane_serve_closed_total", reason="stalled") == 1)
        wait_for("its slot free", lambda: server_metric(app, "lane_serve_inflight") == 0)
        assert server_metric(app, "lane_serve_abandoned_total", endpoint="/v1/audio/speech") == 1
    finally:
        s.close()


def test_the_openai_client_gets_through_an_overload_with_its_own_retries(served_root: Path,
                                                                         serve_app: Any) -> None:
    """One slot (taken) and two places in the queue: of six SDK calls two wait and four are refused with
    Retry-After; once the slot is free, the SDK's own two retries (waiting what Retry-After says, the
    short queue taking any that come back together) bring every call through."""
    import openai

    url, app = serve_app(served_root, max_inflight=1, max_queue=2, queue_timeout_s=600)
    thread = app.state.server_thread
    held = hold_slot(thread, app)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=600)  # max_retries: the default, 2
    results: list[Any] = []

    def call(i: int) -> None:
        try:
            results.append(client.audio.speech.create(model="tts-1", voice="alloy", input=f"Call number {i}.",
                                                      response_format="wav").content[:4])
        except openai.APIError as exc:
            results.append(exc)

    callers = [threading.Thread(target=call, args=(i,)) for i in range(6)]
    for t in callers:
        t.start()
    wait_for("four refusals and two waiting", lambda: server_metric(app, "lane_serve_queued") == 2 and server_metric(
        app, "lane_serve_rejected_total", layer="admission", code="overloaded") >= 4)
    release_slot(thread, held)
    for t in callers:
        t.join()
    assert results == [b"RIFF"] * 6, results
    assert server_metric(app, "lane_serve_retry_after_seconds_count") >= 4
