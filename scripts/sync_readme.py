"""Regenerate the generated parts of README.md (the reason-code and settings tables) from the code.

    .venv/bin/python scripts/sync_readme.py          # rewrite README.md in place
    .venv/bin/python scripts/sync_readme.py --check  # exit 1 if README.md is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lane.core.config import settings_table_markdown
from lane.core.reasons import table_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = {"reasons": table_markdown, "settings": settings_table_markdown}


def render(text: str) -> str:
    for name, table in BLOCKS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md lacks the {start} ... {end} markers")
        text = pattern.sub(lambda _, start=start, end=end, table=table: f"{start}\n{table()}{end}", text)
    return text


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv:
        if new != text:
            print("README.md reason or settings table is stale: run python scripts/sync_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
