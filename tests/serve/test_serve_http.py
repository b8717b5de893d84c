"""`lane serve` over HTTP on loopback with a real tiny voice: the OpenAI client round trip, the seed's
speak contract, streaming, the live-voice registry (GO only, picked up without a restart), metrics."""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from serve_helpers import add_candidate, make_live, seal

LONG = ("The first sentence is here. A second one follows it. Then there is a third. The fourth sentence "
        "comes next. Here is the fifth. And the sixth one ends it.")


def _wav(data: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnchannels(), w.getframerate(), w.getnframes() / w.getframerate()


def test_openai_client_round_trip(served_root: Path, serve_app: Any) -> None:
    import openai

    url, _ = serve_app(served_root)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed-for-speech", timeout=120)
    assert [m.id for m in client.models.list()] == ["tiny"]
    wav = client.audio.speech.create(model="tts-1", voice="tiny", input="Hello there. How are you?",
                                     response_format="wav")
    channels, rate, seconds = _wav(wav.content)
    assert (channels, rate) == (1, 22050) and seconds > 0.3
    mp3 = client.audio.speech.create(model="tiny", voice="alloy", input="Hello there.")  # the voice in `model`; mp3 default
    audio, sr = sf.read(io.BytesIO(mp3.content))
    assert sr == 22050 and audio.size > 0.2 * sr
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="tiny", input=LONG,
                                                            response_format="pcm", speed=1.25) as resp:
        pcm = b"".join(resp.iter_bytes())
        assert resp.headers["content-type"] == "audio/pcm" and resp.headers["x-sample-rate"] == "24000"
    assert len(pcm) % 2 == 0 and len(pcm) / 2 / 24000 > 1.0
    with pytest.raises(openai.NotFoundError) as missing:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hello.")
    assert missing.value.response.json()["error"] == "not_found"
    for fmt, media in (("flac", "audio/flac"), ("opus", "audio/ogg; codecs=opus")):
        r = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "Hello.", "response_format": fmt},
                       timeout=120)
        assert r.status_code == 200 and r.headers["content-type"] == media
        assert sf.read(io.BytesIO(r.content))[0].size > 0


def test_seed_speak_contract_and_probes(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root)
    with httpx.Client(base_url=url, timeout=120) as http:
        resp = http.post("/api/voice/speak", json={"text": "Hello from the lane."})
        assert resp.status_code == 200 and resp.headers["content-type"] == "audio/wav"
        assert int(resp.headers["content-length"]) == len(resp.content)
        channels, rate, seconds = _wav(resp.content)
        assert (channels, rate) == (1, 22050) and seconds > 0.3
        assert "x-voice-lane-unpromoted" not in resp.headers
        for body in ({"text": ""}, {"text": "   "}, {}):
            bad = http.post("/api/voice/speak", json=body)
            assert (bad.status_code, bad.json()["error"]) == (400, "empty_text")
        bad = http.post("/api/voice/speak", content=b"{not json", headers={"content-type": "application/json"})
        assert (bad.status_code, bad.json()["error"]) == (400, "request_invalid")
        bad = http.post("/api/voice/speak", json={"text": 42})
        assert (bad.status_code, bad.json()["error"]) == (400, "request_invalid")
        assert http.get("/healthz").json() == {"status": "ok", "voice": "tiny", "voices": ["tiny"]}
        assert http.get("/readyz").json() == {"status": "ready", "voices": ["tiny"]}
        voice = http.get("/api/voice").json()
        assert voice["voice_profile_id"] == "tiny" and voice["sample_rate"] == 22050 and voice["run_id"] == "run-go-1"
        assert http.get("/nowhere").json()["error"] == "not_found"
        assert http.put("/api/voice/speak").json()["error"] == "request_invalid"


def test_long_input_streams_sentence_by_sentence(served_root: Path, serve_app: Any) -> None:
    """The first audio arrives before the last sentence is synthesized."""
    from lane.serve.voices import load_engine

    done: list[float] = []

    def loader(path: Path, settings: Any) -> Any:
        engine = load_engine(path, settings)
        inner = engine.synthesize

        def timed(text: str, pace: float = 1.0) -> Any:
            out = inner(text, pace)
            done.append(time.monotonic())
            return out

        engine.synthesize = timed
        return engine

    url, _ = serve_app(served_root, loader=loader)
    done.clear()
    t0 = time.monotonic()
    first = None
    chunks = []
    with httpx.stream("POST", f"{url}/v1/audio/speech", timeout=120,
                      json={"voice": "tiny", "input": LONG, "response_format": "wav"}) as resp:
        assert resp.status_code == 200 and "content-length" not in resp.headers
        assert resp.headers["transfer-encoding"] == "chunked"
        for chunk in resp.iter_raw():
            if first is None and chunk:
                first = time.monotonic()
            chunks.append(chunk)
    total = time.monotonic() - t0
    assert len(done) == 6 and first is not None
    assert first < done[-1], "the first audio must leave before the last sentence is synthesized"
    assert first - t0 < total
    data = b"".join(chunks)
    assert data[:4] == b"RIFF" and data[40:44] == b"\xff\xff\xff\xff"  # a streamed WAV: length unknown
    samples = np.frombuffer(data[44:], dtype="<i2")
    assert samples.size / 22050 > 6 * 0.2
    metrics = httpx.get(f"{url}/metrics").text
    assert 'lane_serve_first_audio_seconds_count{endpoint="/v1/audio/speech"} 1.0' in metrics
    assert 'lane_serve_rtf_count{voice="tiny"}' in metrics and 'lane_serve_audio_seconds_total{voice="tiny"}' in metrics


def test_only_live_go_voices_speak_and_promotions_need_no_restart(served_root: Path, serve_app: Any,
                                                                  tiny_bundle: Path) -> None:
    from lane.bundle import store
    from lane.core.stage import now_iso

    # a NO-GO candidate made the live link by hand: present, never served
    seal(served_root, add_candidate(served_root, tiny_bundle, "nogo", "run-nogo"), "NO-GO")
    store.switch(served_root, "nogo", "run-nogo", why="promote", at=now_iso())
    url, app = serve_app(served_root)
    with httpx.Client(base_url=url, timeout=120) as http:
        assert [m["id"] for m in http.get("/v1/models").json()["data"]] == ["tiny"]
        refused = http.post("/v1/audio/speech", json={"voice": "nogo", "input": "Hello.", "response_format": "wav"})
        assert refused.status_code == 403 and refused.json()["error"] == "bundle_not_promoted"
        assert "NO-GO" in refused.json()["detail"]
        # promoted while the server runs: served at once (a request naming it looks again, at most once a second)
        make_live(served_root, tiny_bundle, "second", "run-go-2")
        time.sleep(1.1)
        ok = http.post("/v1/audio/speech", json={"voice": "second", "input": "Hello.", "response_format": "wav"})
        assert ok.status_code == 200 and ok.headers["x-voice"] == "second"
        # a new GO run of `tiny` made live: the next look serves it
        cand = add_candidate(served_root, tiny_bundle, "tiny", "run-go-3")
        seal(served_root, cand, "GO")
        store.switch(served_root, "tiny", "run-go-3", why="promote", at=now_iso())
        app.state.lane.registry.refresh()
        assert http.get("/api/voice", params={"voice": "tiny"}).json()["run_id"] == "run-go-3"
        # a live file changed on disk: verified again, refused
        (cand / "tokenizer.json").write_text("{}")
        app.state.lane.registry.refresh()
        gone = http.post("/api/voice/speak", json={"text": "Hello.", "voice": "tiny"})
        assert gone.status_code == 503 and gone.json()["error"] == "bundle_invalid"
        assert sorted(m["id"] for m in http.get("/v1/models").json()["data"]) == ["second"]


def test_an_unpromoted_bundle_is_refused_unless_asked(tmp_path: Path, tiny_bundle: Path, serve_app: Any) -> None:
    from nemo_runs import make_root

    from lane.core.reasons import LaneError
    from lane.serve import create_app, load_settings

    root = make_root(tmp_path / "ws")
    cand = add_candidate(root, tiny_bundle, "dev", "run-dev")  # validated, never promoted
    with pytest.raises(LaneError) as refused:
        create_app(load_settings(root, env={}, source=cand))
    assert refused.value.code == "bundle_not_promoted" and "not a live voice" in refused.value.detail
    url, _ = serve_app(root, source=cand, allow_unpromoted=True)
    resp = httpx.post(f"{url}/api/voice/speak", json={"text": "Hello."}, timeout=120)
    assert resp.status_code == 200 and resp.headers["x-voice-lane-unpromoted"] == "true"
    assert httpx.get(f"{url}/v1/models").json()["data"][0]["unpromoted"] is True
    # an empty bundles dir: the server starts, is not ready, and says why
    empty = make_root(tmp_path / "empty")
    url, _ = serve_app(empty)
    ready = httpx.get(f"{url}/readyz")
    assert ready.status_code == 503 and ready.json()["error"] == "not_found"


def test_metrics_count_requests_errors_and_audio(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root)
    with httpx.Client(base_url=url, timeout=120) as http:
        http.post("/api/voice/speak", json={"text": "Hello there."})
        http.post("/api/voice/speak", json={"text": ""})
        http.get("/nowhere")
        text = http.get("/metrics").text
    assert 'lane_serve_requests_total{endpoint="/api/voice/speak",method="POST",status="200"} 1.0' in text
    assert 'lane_serve_requests_total{endpoint="/api/voice/speak",method="POST",status="400"} 1.0' in text
    assert 'lane_serve_errors_total{code="empty_text"} 1.0' in text and 'lane_serve_errors_total{code="not_found"} 1.0' in text
    assert 'lane_serve_request_seconds_bucket{endpoint="/api/voice/speak",le="+Inf"} 2.0' in text
    audio = next(line for line in text.splitlines() if line.startswith('lane_serve_audio_seconds_total{voice="tiny"}'))
    assert float(audio.split()[-1]) > 0.3  # the warm-up is not counted: only requests
    assert "lane_serve_inflight 0.0" in text and "lane_serve_voices 1.0" in text


def test_cli_refuses_an_unpromoted_bundle(tmp_path: Path, tiny_bundle: Path, python_exe: str) -> None:
    import subprocess

    from nemo_runs import make_root

    root = make_root(tmp_path / "ws")
    cand = add_candidate(root, tiny_bundle, "dev", "run-dev")
    out = subprocess.run([python_exe, "-m", "lane", "serve", str(cand), "--port", "0"], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert out.returncode == 5, out.stdout + out.stderr
    assert "bundle_not_promoted" in out.stderr
