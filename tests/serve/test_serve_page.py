"""The try-a-voice page (GET /) driven in headless Chromium (Debian's `chromium`, through Playwright's
driver with executable_path: no browser download): pick the voice, type a sentence, press Play; an
audio/wav answer comes back and the <audio> element has a duration > 0. The page runs under its own
Content-Security-Policy (inline script and style by hash only): a violation would be a console error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from browser import FLAGS, require_chromium


def test_page_plays_a_sentence_in_chromium(served_root: Path, serve_app: Any, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = require_chromium()
    url, _ = serve_app(served_root)
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(str(tmp_path / "profile"), executable_path=chromium,
                                                        headless=True,
                                                        args=[*FLAGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(url + "/")
            page.wait_for_selector("#voice option", state="attached", timeout=30000)
            assert page.eval_on_selector("#voice", "s => s.value") == "tiny"
            page.fill("#text", "Hello from the page. A second sentence follows.")
            with page.expect_response(lambda r: r.url.endswith("/v1/audio/speech"), timeout=120000) as answer:
                page.click("#play")
            resp = answer.value
            assert resp.status == 200 and resp.headers["content-type"] == "audio/wav"
            duration = 0.0
            for _ in range(300):  # polled from here: the page's CSP forbids wait_for_function's eval
                duration = page.eval_on_selector("#player", "a => a.duration") or 0.0
                if duration == duration and duration > 0:  # not NaN
                    break
                page.wait_for_timeout(100)
            assert duration > 0.5
            assert page.is_visible("#download") and page.get_attribute("#download", "href").startswith("blob:")
            assert not errors, errors
        finally:
            browser.close()
