"""The rendered HTML report as a reviewer's browser shows it: headless Chromium (Debian's `chromium`)
loads the file and dumps the DOM, and the DOM is checked: the verdict is the first heading, no line of
text is raw Markdown table syntax, and every audio player has a source."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from browser import FLAGS, require_chromium


def dump_dom(html: Path, tmp: Path) -> str:
    """The DOM after Chromium loaded the page (network off: the report must be self-contained)."""
    cmd = [require_chromium(), *FLAGS, f"--user-data-dir={tmp / 'chromium-profile'}", "--dump-dom", html.resolve().as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[tuple[str, str]] = []
        self.text: list[str] = []
        self.audios: list[dict[str, Any]] = []
        self.tables = 0
        self._stack: list[str] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading = [tag, ""]
        if tag == "audio":
            self.audios.append({"src": a.get("src"), "sources": []})
        if tag == "source" and self.audios:
            self.audios[-1]["sources"].append(a.get("src") or "")
        if tag == "table":
            self.tables += 1
        if tag not in ("source", "input", "img", "br", "meta", "link"):
            self._stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if self._heading is not None and tag == self._heading[0]:
            self.headings.append((self._heading[0], self._heading[1].strip()))
            self._heading = None
        if self._stack and tag in self._stack:
            while self._stack and self._stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading[1] += data
        if not any(t in ("style", "script", "title") for t in self._stack):
            self.text.append(data)


def _check(dom_text: str, verdict: str) -> _Dom:
    dom = _Dom()
    dom.feed(dom_text)
    assert dom.headings and dom.headings[0] == ("h1", verdict), dom.headings[:3]
    lines = [ln.strip() for ln in "".join(dom.text).splitlines()]
    raw = [ln for ln in lines if ln.startswith("|")]
    assert not raw, f"raw Markdown table text in the page: {raw[:3]}"
    assert dom.audios, "no audio player in the page"
    for a in dom.audios:
        assert a["src"] or any(s.startswith("data:audio/") for s in a["sources"]), a
    return dom


def test_go_report_in_chromium(completed_run: tuple[Path, Any], tmp_path: Path) -> None:
    root, outcome = completed_run
    html = root / "reports" / f"readiness-{outcome.run_id}.html"
    dom = _check(dump_dom(html, tmp_path), "GO")
    # the fixture's Markdown table media, the quality table and provenance are real HTML tables
    assert dom.tables >= 5
    headings = [h for _, h in dom.headings]
    assert headings.index("Quality") < headings.index("Promotion checklist") < headings.index("Raw evidence")


def test_no_go_report_in_chromium(workspace: Path, runner: Any, tmp_path: Path) -> None:
    outcome = runner(workspace, {"verify": "check_fails"})
    html = workspace / "reports" / f"readiness-{outcome.run_id}.html"
    dom_text = dump_dom(html, tmp_path)
    dom = _Dom()
    dom.feed(dom_text)
    assert dom.headings[0] == ("h1", "NO-GO") and dom.headings[1][1] == "Why NO-GO"
    assert not [ln for ln in "".join(dom.text).splitlines() if ln.strip().startswith("|")]
