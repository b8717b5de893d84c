"""`lane serve` over HTTP on loopback with a real tiny voice: the OpenAI client round trip, the seed's
speak contract, streaming, the live-voice registry (GO only, picked up without a restart), metrics."""

from __future__ import annotations

import base64
import io
import json
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import pytest
import soundfile as sf
from serve_helpers import add_candidate, make_live, metric, seal

LONG = ("The first sentence is here. A second one follows it. Then there is a third. The fourth sentence "
        "comes next. Here is the fifth. And the sixth one ends it.")


def _wav(data: bytes) -> tuple[int, int, float]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnchannels(), w.getframerate(), w.getnframes() / w.getframerate()


def test_openai_client_round_trip(served_root: Path, serve_app: Any) -> None:
    import openai

    url, _ = serve_app(served_root)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed-for-speech", timeout=120)
    models = list(client.models.list())
    assert [m.id for m in models if not getattr(m, "alias_of", None)] == ["tiny"]
    aliases = {m.id: m.alias_of for m in models if getattr(m, "alias_of", None)}  # OpenAI's voice names
    assert aliases["alloy"] == "tiny" and aliases["shimmer"] == "tiny" and len(aliases) == 13
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
    with pytest.raises(openai.NotFoundError) as missing:  # the SDK shows the server's own message
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hello.")
    assert missing.value.code == "not_found" and "no voice 'nobody'" in str(missing.value)
    assert missing.value.body["message"] == "no voice 'nobody'; served: tiny"  # type: ignore[index]
    for fmt, media in (("flac", "audio/flac"), ("opus", "audio/ogg; codecs=opus"), ("aac", "audio/aac")):
        r = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "Hello.", "response_format": fmt},
                       timeout=120)
        assert r.status_code == 200 and r.headers["content-type"] == media
        assert decode(r.content, fmt)[1] > 0.1
    alloy = client.audio.speech.create(model="tts-1", voice="alloy", input="Hello there.")  # OpenAI's own example
    assert alloy.response.headers["x-voice"] == "tiny" and decode(alloy.content, "mp3")[1] > 0.2
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="alloy", input=LONG,
                                                            response_format="mp3", stream_format="sse") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = [json.loads(line[6:]) for line in events.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in lines[-1:]] == ["speech.audio.done"] and lines[-1]["usage"]["input_tokens"] > 0
    deltas = [e for e in lines if e["type"] == "speech.audio.delta"]
    assert len(deltas) >= 6  # one or more a sentence
    assert decode(b"".join(base64.b64decode(e["audio"]) for e in deltas), "mp3")[1] > 6 * 0.2


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


def decode(data: bytes, fmt: str) -> tuple[int, float]:
    """(sample rate, seconds) of an answer in `fmt`."""
    if fmt == "pcm":
        return 24000, len(data) / 2 / 24000
    if fmt == "aac":
        import av

        with av.open(io.BytesIO(data)) as container:
            frames = list(container.decode(audio=0))
        return frames[0].sample_rate, sum(f.samples for f in frames) / frames[0].sample_rate
    audio, sr = sf.read(io.BytesIO(data))
    return sr, len(audio) / sr


@pytest.mark.parametrize("fmt", ["mp3", "wav", "aac", "opus", "pcm"])
def test_long_input_streams_sentence_by_sentence(served_root: Path, serve_app: Any, fmt: str) -> None:
    """The first audio reaches the client before the last sentence is synthesized: the voice is made
    to wait, at the last sentence, until the client holds audio (a server that did not stream would
    never get there)."""
    import threading

    from lane.serve.voices import load_engine

    first_seen, waited = threading.Event(), []

    def loader(path: Path, settings: Any) -> Any:
        engine = load_engine(path, settings)
        inner, calls = engine.vocode, []

        def gated(mel: Any) -> Any:
            calls.append(1)
            if len(calls) == 6:  # the last of the six sentences (the warm-up ran before this wrapper)
                waited.append(first_seen.wait(120))
            return inner(mel)

        engine.vocode = gated
        return engine

    url, _ = serve_app(served_root, loader=loader)
    chunks = []
    with httpx.stream("POST", f"{url}/v1/audio/speech", timeout=180,
                      json={"voice": "tiny", "input": LONG, "response_format": fmt}) as resp:
        assert resp.status_code == 200 and "content-length" not in resp.headers
        assert resp.headers["transfer-encoding"] == "chunked"
        for chunk in resp.iter_raw():
            if chunk:
                first_seen.set()
            chunks.append(chunk)
    assert waited == [True], "the first audio must leave before the last sentence is synthesized"
    data = b"".join(chunks)
    if fmt == "wav":
        assert data[:4] == b"RIFF" and data[40:44] == b"\xff\xff\xff\xff"  # a streamed WAV: length unknown
        data = data[44:]
        fmt = "pcm22"
    rate, seconds = (22050, len(data) / 2 / 22050) if fmt == "pcm22" else decode(data, fmt)
    assert rate in (22050, 24000) and seconds > 6 * 0.2
    metrics = httpx.get(f"{url}/metrics").text
    assert metric(metrics, "lane_serve_first_audio_seconds_count", endpoint="/v1/audio/speech") == 1
    assert metric(metrics, "lane_serve_pieces_total", voice="tiny") == 6


def test_only_live_go_voices_speak_and_promotions_need_no_restart(served_root: Path, serve_app: Any,
                                                                  tiny_bundle: Path) -> None:
    from lane.bundle import store
    from lane.core.stage import now_iso

    # a NO-GO candidate made the live link by hand: present, never served
    seal(served_root, add_candidate(served_root, tiny_bundle, "nogo", "run-nogo"), "NO-GO")
    store.switch(served_root, "nogo", "run-nogo", why="promote", at=now_iso())
    url, app = serve_app(served_root)
    with httpx.Client(base_url=url, timeout=120) as http:
        assert [m["id"] for m in http.get("/v1/models").json()["data"] if "alias_of" not in m] == ["tiny"]
        refused = http.post("/v1/audio/speech", json={"voice": "nogo", "input": "Hello.", "response_format": "wav"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "bundle_not_promoted"
        assert "NO-GO" in refused.json()["error"]["message"]
        # promoted while the server runs: served at once (a request naming it looks again, at most once a second)
        make_live(served_root, tiny_bundle, "second", "run-go-2")
        time.sleep(1.1)
        ok = http.post("/v1/audio/speech", json={"voice": "second", "input": "Hello.", "response_format": "wav"})
        assert ok.status_code == 200 and ok.headers["x-voice"] == "second"
        # a new GO run of `tiny` promoted: the next look serves it
        cand = make_live(served_root, tiny_bundle, "tiny", "run-go-3").resolve()
        app.state.lane.registry.refresh()
        assert http.get("/api/voice", params={"voice": "tiny"}).json()["run_id"] == "run-go-3"
        # a live file changed on disk: verified again, refused
        (cand / "tokenizer.json").write_text("{}")
        app.state.lane.registry.refresh()
        gone = http.post("/api/voice/speak", json={"text": "Hello.", "voice": "tiny"})
        assert gone.status_code == 503 and gone.json()["error"] == "bundle_invalid"
        assert sorted(m["id"] for m in http.get("/v1/models").json()["data"] if "alias_of" not in m) == ["second"]


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
    assert metric(text, "lane_serve_request_seconds_count", endpoint="/api/voice/speak", status="200") == 1
    assert metric(text, "lane_serve_request_seconds_count", endpoint="/api/voice/speak", status="400") == 1
    assert metric(text, "lane_serve_rejected_total", layer="app", code="empty_text") == 1
    assert metric(text, "lane_serve_audio_seconds_total", voice="tiny") > 0.3  # the warm-up is not counted
    assert metric(text, "lane_serve_pieces_total", voice="tiny") == 1
    assert metric(text, "lane_serve_synthesis_cpu_seconds_total", voice="tiny") > 0
    assert metric(text, "lane_serve_cpu_per_audio_second_count", voice="tiny") == 1
    assert metric(text, "process_resident_memory_bytes") > 0 and metric(text, "process_cpu_seconds_total") > 0
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
