"""What a stage notebook shows after its one call into the lane: the stage's checks and the report
media it wrote (plots, audio, tables), so a notebook run by hand shows what the readiness report
will. Needs IPython (a notebook kernel)."""

from __future__ import annotations

from typing import Any

from ..core.media import collect, md_table
from ..core.stage import StageRun

_MARK = {True: "PASS", False: "FAIL", None: "n/a"}


def show_checks(st: StageRun) -> None:
    """The checks recorded so far, as a table."""
    from IPython.display import Markdown, display

    rows = [{"check": f"`{c.id}`", "result": _MARK[c.ok], "detail": c.detail} for c in st.checks]
    display(Markdown(md_table(rows, ["check", "result", "detail"], empty="_no checks recorded_")))


def show_media(st: StageRun, group: str | None = None) -> None:
    """The stage's report media in order, under their section headings; `group` limits it to one
    producer's index (e.g. "data" or "training" of the train stage)."""
    from IPython.display import Audio, Image, Markdown, display

    items = collect(st.run_dir, groups=[group] if group else None).get(st.stage, [])
    section = None
    for item in items:
        if item.section != section:
            section = item.section
            display(Markdown(f"### {section}"))
        path = st.stage_dir / item.path
        if item.kind == "image":
            display(Markdown(f"**{item.caption}**"))
            display(Image(filename=str(path)))
        elif item.kind == "audio":
            display(Markdown(item.caption))
            display(Audio(filename=str(path)))
        else:
            display(Markdown(f"**{item.caption}**\n\n" + path.read_text(encoding="utf-8")))


def show(obj: Any) -> None:
    """Display any object (a summary dict prints as indented JSON)."""
    import json

    from IPython.display import display

    if isinstance(obj, dict):
        print(json.dumps(obj, indent=1, ensure_ascii=False, default=str)[:20000])
    else:
        display(obj)
