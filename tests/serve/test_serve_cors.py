"""CORS: none by default; for the origins in serve.allowed_origins, preflights are answered and
answers carry Access-Control-Allow-Origin and Vary: Origin. Checked with raw requests, then in headless
Chromium: a page from an allowed origin (another port on loopback) calls /v1/audio/speech and gets
audio; a page from an origin not listed cannot read anything."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import FLAGS, require_chromium

ORIGIN = "https://app.example"
PREFLIGHT = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type, x-stainless-os"}
SPEECH = {"model": "tts-1", "voice": "alloy", "input": "Hello from the page.", "response_format": "wav"}


def test_no_cors_by_default(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root)
    pre = httpx.options(f"{url}/v1/audio/speech", headers=PREFLIGHT)
    assert pre.status_code == 403 and pre.json()["error"]["code"] == "forbidden"
    assert "access-control-allow-origin" not in pre.headers
    post = httpx.post(f"{url}/v1/audio/speech", json=SPEECH, headers={"Origin": ORIGIN})
    assert post.status_code == 403 and "access-control-allow-origin" not in post.headers


def test_cors_for_the_configured_origins(served_root: Path, serve_app: Any) -> None:
    url, _ = serve_app(served_root, allowed_origins=(ORIGIN,))
    pre = httpx.options(f"{url}/v1/audio/speech", headers=PREFLIGHT)
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in pre.headers["vary"] and "POST" in pre.headers["access-control-allow-methods"]
    assert "x-stainless-os" in pre.headers["access-control-allow-headers"]  # what OpenAI's JS client sends
    post = httpx.post(f"{url}/v1/audio/speech", json=SPEECH, headers={"Origin": ORIGIN}, timeout=120)
    assert post.status_code == 200 and post.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in post.headers["vary"] and "retry-after" in post.headers["access-control-expose-headers"].lower()
    other = {**PREFLIGHT, "Origin": "https://evil.example"}
    refused = httpx.options(f"{url}/v1/audio/speech", headers=other)
    assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    forged = httpx.post(f"{url}/v1/audio/speech", json=SPEECH, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403  # the Origin check refuses what it refused before


@pytest.fixture
def page_server() -> Iterator[Any]:
    """start() -> the origin of a loopback server that answers every GET with an empty page."""
    servers: list[http.server.ThreadingHTTPServer] = []

    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>app</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    def start() -> str:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()


CALL = """async (url) => {
  try {
    const r = await fetch(url + "/v1/audio/speech", {method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({model: "tts-1", voice: "alloy", input: "Hello from the page.", response_format: "wav"})});
    const b = await r.arrayBuffer();
    return {status: r.status, type: r.headers.get("content-type"), bytes: b.byteLength,
            voice: r.headers.get("x-voice")};
  } catch (e) { return {error: String(e)}; }
}"""


def test_a_page_on_an_allowed_origin_speaks_in_chromium(served_root: Path, serve_app: Any, page_server: Any,
                                                        tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = require_chromium()
    allowed, other = page_server(), page_server()
    url, _ = serve_app(served_root, allowed_origins=(allowed,))
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=chromium,
                                                        headless=True, args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(allowed + "/")
            got = page.evaluate(CALL, url)
            assert got == {"status": 200, "type": "audio/wav", "bytes": got.get("bytes"), "voice": "tiny"}, got
            assert got["bytes"] > 10000
            page.goto(other + "/")
            refused = page.evaluate(CALL, url)
            assert "error" in refused and "Failed to fetch" in refused["error"], refused
        finally:
            browser.close()
