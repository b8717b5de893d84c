"""`lane serve` is safe by default: loopback only, a token for training, Host and Origin checks, body and
text limits, a concurrency limit (503 + Retry-After), a per-request deadline; every refusal is
{"error": <reason code>, "detail": ...}."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from serve_helpers import TOKEN, hold_slot, metric, release_slot, wait_for

REPO = Path(__file__).resolve().parents[2]


def raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library fixes the headers) and read the whole answer."""
    u = urlsplit(url)
    with socket.create_connection((u.hostname, u.port), timeout=30) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def post_head(length: str, host: str = "127.0.0.1") -> bytes:
    return (f"POST /api/voice/speak HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


def test_binds_loopback_by_default() -> None:
    from lane.serve import load_settings

    assert load_settings(".", env={}).host == "127.0.0.1"


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "+5"])
def test_invalid_content_length_is_a_json_400(served_root: Path, serve_app: Any, length: str) -> None:
    url, _ = serve_app(served_root)
    status, headers, body = raw(url, post_head(length) + b'{"text": "hi"}')
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"] == "request_invalid"


def test_oversized_bodies_and_texts_are_refused(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root, max_body_bytes=4096, max_text_chars=500)
    status, _, body = raw(url, post_head("100000"))  # refused on the header alone, no body sent
    assert status == 413 and json.loads(body)["error"] == "request_too_large"
    chunked = (b"POST /api/voice/speak HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    part = b"x" * 3000
    for _ in range(3):
        chunked += f"{len(part):x}\r\n".encode() + part + b"\r\n"
    status, _, body = raw(url, chunked + b"0\r\n\r\n")
    assert status == 413 and json.loads(body)["error"] == "request_too_large"
    resp = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "word " * 200})
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
    resp = httpx.post(f"{url}/api/voice/speak", json={"text": "word " * 200})
    assert resp.status_code == 413 and resp.json()["error"] == "request_too_large"  # the seed's shape
    resp = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "Hi.", "speed": -1})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "speed"
    resp = httpx.post(f"{url}/v1/audio/speech", json={"voice": "../../etc", "input": "Hi."})
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "request_invalid"
    resp = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "Hi.", "response_format": "ogg"})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "response_format"


def test_forged_origin_and_rebinding_host_are_forbidden(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root)
    host = urlsplit(url).netloc
    speak = {"text": "Hello."}
    forged = httpx.post(f"{url}/api/voice/speak", json=speak, headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and forged.json()["error"] == "forbidden"
    assert "Origin" in forged.json()["detail"]
    null = httpx.post(f"{url}/api/voice/speak", json=speak, headers={"Origin": "null"})
    assert null.status_code == 403
    same = httpx.post(f"{url}/api/voice/speak", json=speak, headers={"Origin": f"http://{host}"}, timeout=120)
    assert same.status_code == 200
    rebound = httpx.get(f"{url}/healthz", headers={"Host": "evil.example"})
    assert rebound.status_code == 403 and "DNS rebinding" in rebound.json()["detail"]
    form = httpx.post(f"{url}/api/voice/speak", data={"text": "Hello."})  # a cross-site form could send this
    assert form.status_code == 400 and form.json()["error"] == "request_invalid"
    assert httpx.get(f"{url}/healthz", headers={"Host": f"localhost:{urlsplit(url).port}"}).status_code == 200


def test_training_needs_a_configured_token(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root)  # no token configured: training is off, not open
    resp = httpx.post(f"{url}/api/train/start", json={"audio_path": "data/x.flac"},
                      headers={"Authorization": "Bearer anything-at-all-here"})
    assert resp.status_code == 403 and resp.json()["error"] == "forbidden"
    assert httpx.get(f"{url}/api/train/status", params={"lane": "tts_prod_train"}).status_code == 403


class FakeJobs:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def submit(self, job_type: str, audio_path: str, **options: Any) -> dict[str, Any]:
        self.calls.append(("submit", job_type, audio_path, options))
        return {"run_id": "20260101T000000Z-abcdef", "state": "queued", "engine": "local", "job_id": None}

    def status(self, run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "state": "queued"}

    def cancel(self, run_id: str) -> dict[str, Any]:
        self.calls.append(("cancel", run_id))
        return {"run_id": run_id, "state": "cancelled"}

    def list(self) -> list[dict[str, Any]]:
        return []

    def close(self) -> None:
        pass


def test_training_endpoints_check_the_bearer_token(served_root: Path, serve_app: Any) -> None:
    jobs = FakeJobs()
    url, _ = serve_app(served_root, jobs=jobs, token=TOKEN)
    body = {"job_type": "tts_prod_train", "audio_path": "data/x.flac", "profile": "demo"}
    missing = httpx.post(f"{url}/api/train/start", json=body)
    assert missing.status_code == 401 and missing.json()["error"] == "unauthorized"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    wrong = httpx.post(f"{url}/api/train/start", json=body, headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and wrong.json()["detail"] == "wrong bearer token"
    assert httpx.get(f"{url}/api/train/jobs", headers={"Authorization": "Basic abc"}).status_code == 401
    assert jobs.calls == []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ok = httpx.post(f"{url}/api/train/start", json=body, headers=auth)
    assert ok.status_code == 202 and ok.json()["run_id"] == "20260101T000000Z-abcdef"
    assert jobs.calls == [("submit", "tts_prod_train", "data/x.flac", {"profile": "demo"})]
    assert httpx.get(f"{url}/api/train/status", params={"run_id": ok.json()["run_id"]}, headers=auth).json()["state"] == "queued"
    bad_id = httpx.get(f"{url}/api/train/status", params={"run_id": "../../etc/passwd"}, headers=auth)
    assert bad_id.status_code == 400 and bad_id.json()["error"] == "request_invalid"
    assert httpx.post(f"{url}/api/train/cancel", json={"run_id": ok.json()["run_id"]}, headers=auth).json()["state"] == "cancelled"


def test_training_paths_outside_the_data_root_are_refused_by_the_job_api(served_root: Path, serve_app: Any) -> None:
    from lane.jobs import Jobs

    (served_root / "data").mkdir()
    (served_root / "data" / "x.flac").write_bytes(b"fLaC")
    (served_root / "outside.flac").write_bytes(b"fLaC")
    jobs = Jobs(served_root, start=False)
    try:
        url, _ = serve_app(served_root, jobs=jobs, token=TOKEN)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("outside.flac", "/etc/passwd", "data/../outside.flac"):
            resp = httpx.post(f"{url}/api/train/start", json={"audio_path": path}, headers=auth)
            assert resp.status_code == 400 and resp.json()["error"] == "config_invalid", (path, resp.text)
        queued = httpx.post(f"{url}/api/train/start", json={"audio_path": "data/x.flac"}, headers=auth)
        assert queued.status_code == 202 and queued.json()["state"] == "queued"
        run_id = queued.json()["run_id"]
        listed = httpx.get(f"{url}/api/train/jobs", headers=auth).json()["jobs"]
        assert [j["run_id"] for j in listed] == [run_id]
        cancelled = httpx.post(f"{url}/api/train/cancel", json={"run_id": run_id}, headers=auth, timeout=60)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    finally:
        jobs.close()


def test_concurrency_limit_answers_503_with_retry_after(served_root: Path, serve_app: Any) -> None:
    url, app = serve_app(served_root, max_inflight=1, max_queue=0, retry_after_s=2)
    thread = app.state.server_thread
    held = hold_slot(thread, app)  # the one slot is taken (a request being synthesized)
    try:
        busy = httpx.post(f"{url}/api/voice/speak", json={"text": "Hello."})
        assert busy.status_code == 503 and busy.json()["error"] == "overloaded"
        assert int(busy.headers["retry-after"]) >= 2 and busy.headers["x-should-retry"] == "true"
        assert int(busy.headers["retry-after-ms"]) >= 2000  # what OpenAI's clients read first
        busy = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "Hello.", "response_format": "wav"})
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "overloaded"
        assert busy.json()["error"]["type"] == "server_error"
        # refused before any work is spent on the text (it is not even read for what it says)
        busy = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "你好" + "7" * 4000})
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "overloaded"
    finally:
        release_slot(thread, held)
    assert httpx.post(f"{url}/api/voice/speak", json={"text": "Hello."}, timeout=120).status_code == 200
    text = httpx.get(f"{url}/metrics").text
    assert metric(text, "lane_serve_rejected_total", layer="admission", code="overloaded") == 3
    assert metric(text, "lane_serve_retry_after_seconds_count") == 3


def test_a_queued_request_waits_at_most_queue_timeout_s(served_root: Path, serve_app: Any) -> None:
    url, app = serve_app(served_root, max_inflight=1, max_queue=1, queue_timeout_s=0.2)
    thread = app.state.server_thread
    held = hold_slot(thread, app)
    try:
        resp = httpx.post(f"{url}/v1/audio/speech", json={"voice": "tiny", "input": "Hello."}, timeout=120)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "overloaded"
        assert "no synthesis slot came free" in resp.json()["error"]["message"]
        assert metric(httpx.get(f"{url}/metrics").text, "lane_serve_queued") == 0  # it left the queue
    finally:
        release_slot(thread, held)


def test_a_request_past_its_deadline_is_504(served_root: Path, serve_app: Any) -> None:
    url, app = serve_app(served_root, request_timeout_s=0.001)
    resp = httpx.post(f"{url}/api/voice/speak", json={"text": "A sentence that takes a while."}, timeout=120)
    assert resp.status_code == 504 and resp.json()["error"] == "request_timeout"
    synth = app.state.lane.synth
    synth.pool.submit(lambda: None).result(timeout=60)  # the abandoned synthesis has finished ...
    wait_for("the slot given back", lambda: metric(httpx.get(f"{url}/metrics").text, "lane_serve_inflight") == 0)
    release_slot(app.state.server_thread, hold_slot(app.state.server_thread, app))  # ... and it can be taken again


def test_settings_come_from_flags_env_then_the_config_file(tmp_path: Path) -> None:
    import yaml

    from lane.core.reasons import LaneError
    from lane.serve import load_settings

    (tmp_path / "configs").mkdir()
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    cfg = {"serve": {"max_inflight": 2, "request_timeout_s": 5, "allowed_hosts": ["tts.lan"], "token_file": str(token_file)}}
    (tmp_path / "configs" / "lane.yaml").write_text(yaml.safe_dump(cfg))
    s = load_settings(tmp_path, env={})
    assert (s.max_inflight, s.request_timeout_s, s.allowed_hosts, s.token) == (2, 5.0, ("tts.lan",), TOKEN)
    assert load_settings(tmp_path, env={}, max_inflight=8).max_inflight == 8  # a flag wins
    assert load_settings(tmp_path, env={"LANE_SERVE_TOKEN": "x" * 20}).token == "x" * 20  # the environment wins
    with pytest.raises(LaneError, match="at least 16"):
        load_settings(tmp_path, env={"LANE_SERVE_TOKEN": "short"})
    every = {"max_queue": 0, "queue_timeout_s": 3, "max_connections": 16, "header_timeout_s": 2, "idle_timeout_s": 1,
             "send_timeout_s": 4, "max_pieces": 10, "max_audio_s": 60, "voice_aliases": {"alloy": "jane", "nova": None},
             "zeroconf": True, "allowed_origins": ["https://app.example"]}
    (tmp_path / "configs" / "lane.yaml").write_text(yaml.safe_dump({"serve": every}))
    from lane.core.config import validate_config_file

    validate_config_file(tmp_path / "configs" / "lane.yaml", REPO)  # the schema knows every setting
    s = load_settings(tmp_path, env={})
    assert (s.max_queue, s.max_connections, s.send_timeout_s, s.zeroconf) == (0, 16, 4.0, True)
    assert s.aliases == {"alloy": "jane", "nova": None}
    for bad in ({"voice_aliases": {"../x": "jane"}}, {"max_queue": -1}, {"zeroconf": "yes"}):
        (tmp_path / "configs" / "lane.yaml").write_text(yaml.safe_dump({"serve": bad}))
        with pytest.raises(LaneError):
            load_settings(tmp_path, env={})
    (tmp_path / "configs" / "lane.yaml").write_text(yaml.safe_dump({"serve": {"max_inflightt": 2}}))
    with pytest.raises(LaneError) as bad:
        load_settings(tmp_path, env={})
    assert bad.value.code == "config_invalid" and "max_inflightt" in bad.value.detail


def test_a_bug_is_a_500_that_is_counted_and_guarded(served_root: Path, serve_app: Any) -> None:
    """An exception no handler expects (here the voice itself fails) is `internal_error` in the route's
    error shape, with the security headers, and counted like every other answer."""
    from lane.serve.voices import load_engine

    def loader(path: Path, settings: Any) -> Any:
        engine = load_engine(path, settings)

        def broken(mel: Any) -> Any:  # the warm-up ran before this wrapper
            raise RuntimeError("the vocoder fell over")

        engine.vocode = broken
        return engine

    url, _ = serve_app(served_root, loader=loader)
    for path, body in (("/v1/audio/speech", {"voice": "tiny", "input": "Hello."}), ("/api/voice/speak", {"text": "Hi."})):
        resp = httpx.post(f"{url}{path}", json=body, timeout=120)
        assert resp.status_code == 500 and resp.headers["x-content-type-options"] == "nosniff", resp.text
        err = resp.json()["error"]
        assert (err["code"] if isinstance(err, dict) else err) == "internal_error"
        assert "the vocoder fell over" in resp.text
    text = httpx.get(f"{url}/metrics").text
    assert metric(text, "lane_serve_requests_total", endpoint="/v1/audio/speech", method="POST", status="500") == 1
    assert metric(text, "lane_serve_errors_total", code="internal_error") == 2
    assert metric(text, "lane_serve_inflight") == 0  # the failed requests gave their slots back
