"""Hostile request bodies against the real CLI server (`python -m lane serve`, a process of its own, so
its memory is its own): every malformed body is a 400 in the route's error shape and none is a 500;
text that normalises into something huge is cut into bounded pieces or refused before synthesis; text
the voice cannot say is `empty_text`; the server's resident memory stays under 1 GB throughout (read
from its own /metrics, prometheus-client's process collector)."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from nemo_runs import make_root
from net import free_port
from serve_helpers import make_live, metric, wait_for

GIB = 1 << 30
NUMBER = "7" * 290
BLOWUP = f"Please read this number aloud for me, slowly and clearly: {NUMBER}. Thank you."


@pytest.fixture(scope="module")
def cli_server(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = make_root(tmp_path_factory.mktemp("inputs") / "ws")
    make_live(root, tiny_bundle, "tiny", "run-go-1")
    port = free_port()
    log = (root / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "lane", "serve", "--root", str(root), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (root / "serve.log").read_text()
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for("the server ready", ready)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()


def send(url: str, path: str, raw: bytes) -> httpx.Response:
    return httpx.post(f"{url}{path}", content=raw, headers={"Content-Type": "application/json"}, timeout=300)


ONLY_OPENAI = [  # fields the seed's route does not have (it ignores them)
    b'{"input": "Hi.", "voice": "tiny", "response_format": ["wav"]}',
    b'{"input": "Hi.", "model": ' + b"1" * 5000 + b"}",
    b'{"input": "Hi.", "stream_format": "carrier-pigeon"}',
]
BODIES = [
    b"[" * 30000 + b"]" * 30000,
    b'{"input": "Hi.", "ignored": ' + b"[" * 30000 + b"]" * 30000 + b"}",
    b'{"input": "Hi.", "speed": ' + b"9" * 4001 + b"}",
    b'{"input": "Hi.", "speed": 1e999}',
    b'{"input": "Hi.", "speed": true}',
    b'{"input": "Hi.", "speed": "fast"}',
    b'{"input": 5}',
    b'{"input": ["Hi."]}',
    b'{"input": "Hi.", "voice": {"id": 3}}',
    b'{"input": "Hi.", "voice": ["tiny"]}',
    b"null", b"[]", b'"text"', b"12", b"\xff\xfe{", b'{"input": "Hi.\\ud800"}', b'{"input": "Hi."',
]


def test_malformed_bodies_are_400s_in_the_route_shape(cli_server: str) -> None:
    for raw in BODIES + ONLY_OPENAI:
        for path, key in (("/v1/audio/speech", "input"), ("/api/voice/speak", "text"))[: 1 if raw in ONLY_OPENAI else 2]:
            resp = send(cli_server, path, raw.replace(b'"input"', f'"{key}"'.encode()))
            assert resp.status_code == 400, (path, raw[:80], resp.status_code, resp.text[:300])
            err = resp.json()["error"]
            code = err["code"] if path.startswith("/v1") else err
            assert code == "request_invalid", (path, raw[:80], resp.text[:300])


def test_text_the_voice_cannot_say_is_empty_text(cli_server: str) -> None:
    for text in ("你好，世界。今天天气很好。", "😀🎉👍", "مرحبا بالعالم", "...!?", "   "):
        resp = httpx.post(f"{cli_server}/v1/audio/speech", json={"voice": "tiny", "input": text}, timeout=120)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "empty_text", (text, resp.text)
        seed = httpx.post(f"{cli_server}/api/voice/speak", json={"text": text}, timeout=120)
        assert seed.status_code == 400 and seed.json()["error"] == "empty_text", (text, seed.text)
    cjk = httpx.post(f"{cli_server}/v1/audio/speech", json={"voice": "tiny", "input": "你好世界"}, timeout=120)
    assert "no symbols for" in cjk.json()["error"]["message"]


def test_numbers_that_normalise_huge_are_bounded_and_memory_stays_under_1_gb(cli_server: str) -> None:
    jobs = [("/v1/audio/speech", {"voice": "tiny", "input": BLOWUP, "response_format": "mp3"}),
            ("/v1/audio/speech", {"voice": "tiny", "input": BLOWUP, "response_format": "flac"}),
            ("/api/voice/speak", {"text": BLOWUP})]
    with concurrent.futures.ThreadPoolExecutor(len(jobs)) as pool:
        answers = list(pool.map(lambda j: httpx.post(f"{cli_server}{j[0]}", json=j[1], timeout=600), jobs))
    assert [a.status_code for a in answers] == [200] * len(jobs), [a.text[:200] for a in answers]
    huge = httpx.post(f"{cli_server}/v1/audio/speech", json={"voice": "tiny", "input": "9" * 4096}, timeout=120)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"
    assert "serve.max_audio_s" in huge.json()["error"]["message"]
    slow = httpx.post(f"{cli_server}/v1/audio/speech", timeout=120,
                      json={"voice": "tiny", "input": "A sentence. " * 341, "speed": 0.25})
    assert slow.status_code == 413 and "serve.max" in slow.json()["error"]["message"]
    text = httpx.get(f"{cli_server}/metrics").text
    assert metric(text, "process_resident_memory_bytes") < GIB
    assert metric(text, "lane_serve_errors_total", code="internal_error") == 0


def test_no_answer_of_the_server_was_a_500(cli_server: str) -> None:
    """Runs last in this module: every request above is in the server's own count."""
    text = httpx.get(f"{cli_server}/metrics").text
    statuses = {line.split('status="')[1].split('"')[0] for line in text.splitlines()
                if line.startswith("lane_serve_requests_total{")}
    assert "400" in statuses and not any(s.startswith("5") and s != "503" for s in statuses), statuses
    assert metric(text, "process_resident_memory_bytes") < GIB


@pytest.fixture(scope="module")
def tiny_voice(tiny_bundle: Path) -> Any:
    from serve_helpers import settings_for

    from lane.bundle.manifest import BundleManifest
    from lane.serve.voices import Voice, load_engine

    engine = load_engine(tiny_bundle, settings_for(tiny_bundle.parent))
    return Voice("tiny", tiny_bundle, BundleManifest.load(tiny_bundle), engine, ())


def planned(voice: Any, text: str, **settings: Any) -> Any:
    from serve_helpers import settings_for

    from lane.serve.synth import plan

    return plan(voice, text, 1.0, settings_for(voice.path.parent, **settings))


def test_the_plan_cuts_what_normalisation_makes_long(tiny_voice: Any) -> None:
    from lane.core.reasons import LaneError
    from lane.serve.synth import MAX_PIECE

    p = planned(tiny_voice, BLOWUP)
    assert len(BLOWUP) < 400 and p.chars > 1400  # the number is spelled out ...
    assert max(len(piece) for piece in p.pieces) <= MAX_PIECE and len(p.pieces) >= 5  # ... in bounded pieces
    with pytest.raises(LaneError) as many:
        planned(tiny_voice, "Yes, this one. " * 300, max_pieces=100)
    assert many.value.code == "request_too_large" and "serve.max_pieces" in many.value.detail
    with pytest.raises(LaneError) as long:
        planned(tiny_voice, BLOWUP, max_audio_s=30)
    assert long.value.code == "request_too_large" and "serve.max_audio_s" in long.value.detail
    assert planned(tiny_voice, "Hello 你好 there.").pieces  # what it can say is said
