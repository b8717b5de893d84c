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


def test_selection_curve_and_evaluators_in_chromium(completed_copy: tuple[Path, Any], tmp_path: Path) -> None:
    """The checkpoint-selection section (plot + table, the exported step marked) and the quality table's
    Evaluator column, as Chromium renders them. The selection record is the train stage's artifact: the
    report shows it only while its hash matches the certified one."""
    import json

    from lane.core.fsutil import sha256_file
    from lane.nemo.select import FORMULA, plot_selection
    from lane.report import render_report

    root, outcome = completed_copy
    train = root / "runs" / outcome.run_id / "train"
    history = [{"step": s, "score": sc, "cer": c, "spk_sim": 0.8, "kept": k, "file": f"step_{s:07d}.pt"}
               for s, sc, c, k in ((50, 1.1, 0.5, True), (100, 1.3, 0.3, True), (150, 1.2, 0.4, False))]
    record = {"schema": "lane.checkpoint_selection/1", "formula": FORMULA, "every": 50, "keep": 2, "n_texts": 3,
              "texts": ["a"], "vocoder": "Griffin-Lim", "evaluators": "pocketsphinx (p), ge2e (g)", "best_step": 100,
              "best_score": 1.3, "last_step": 150, "wall_s": 12.5, "share": 0.05, "history": history}
    (train / "select.json").write_text(json.dumps(record))
    assert plot_selection(record, train / "media" / "selection.png")
    result = json.loads((train / "result.json").read_text())
    art = {"kind": "checkpoint_selection", "path": f"runs/{outcome.run_id}/train/select.json",
           "sha256": sha256_file(train / "select.json")}
    result["artifacts"] = [*result.get("artifacts", []), art]
    (train / "result.json").write_text(json.dumps(result))
    md, html = render_report(root, outcome.run_id)
    text = md.read_text()
    assert "## Checkpoint selection" in text and "| 100 | 1.3 | 0.3 | 0.8 | **exported** |" in text
    assert "not the last step 150" in text and "| Evaluator |" in text

    dom_text = dump_dom(html, tmp_path)
    dom = _Dom()
    dom.feed(dom_text)
    assert "Checkpoint selection" in [h for _, h in dom.headings]
    assert 'alt="Held-out score per step; the exported checkpoint is marked"' in dom_text
    assert "<th>Evaluator</th>" in dom_text
    page = "".join(dom.text)
    assert "exported" in page and not [ln for ln in page.splitlines() if ln.strip().startswith("|")]

    (train / "select.json").write_text(json.dumps({**record, "best_step": 150}))  # edited after the fact
    md, _ = render_report(root, outcome.run_id)
    assert "changed since the train stage certified it" in md.read_text()
