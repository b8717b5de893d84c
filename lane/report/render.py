"""Rendering the readiness report: reports/readiness-<run_id>.md and .html from the collected context,
through the Jinja2 templates beside this module."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.fsutil import atomic_write_text
from .collect import collect_report

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _markdown(text: str) -> Any:
    """Markdown (a stage's table media) as HTML, with markdown-it-py (tables enabled); raw HTML off."""
    import markupsafe
    from markdown_it import MarkdownIt

    return markupsafe.Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def _env() -> Any:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(["html", "html.j2"]), trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["cell"] = lambda v: "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")
    env.filters["tf"] = lambda v: "—" if v is None else str(bool(v)).lower()
    env.filters["num"] = _num
    env.filters["md"] = _markdown
    return env


def render_report(root: str | os.PathLike[str], run_id: str) -> list[Path]:
    """Write reports/readiness-<run_id>.md and .html; returns both paths (md first)."""
    ctx = collect_report(root, run_id)
    env = _env()
    reports = Path(root).resolve() / "reports"
    md = atomic_write_text(reports / f"readiness-{run_id}.md", env.get_template("readiness.md.j2").render(**ctx))
    html = atomic_write_text(reports / f"readiness-{run_id}.html", env.get_template("readiness.html.j2").render(**ctx))
    for path in (md, html):  # the temp file behind the atomic write is 0600; a reviewer must be able to read it
        os.chmod(path, 0o644)
    return [md, html]
