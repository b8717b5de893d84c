"""The readiness report: reports/readiness-<run_id>.md and .html, rendered from `runs/<run_id>/` and the
workspace alone, with the verdict of lane.promotion (every piece of evidence verified again at render
time). Order: the verdict and its reasons in plain words, the quality table (pass / FAIL / advisory),
recordings to listen to side by side, the checklist, provenance, cost, the stages, the raw evidence
last (collapsed). The HTML embeds plots and audio inline (base64): one self-contained file a reviewer
can sign.

    collect    the context, from lane.promotion's evidence and decision plus the run's media
    render     Jinja2 templates (templates/), Markdown tables turned into HTML with markdown-it-py
"""

from __future__ import annotations

from .collect import collect_report
from .render import render_report

__all__ = ["collect_report", "render_report"]
