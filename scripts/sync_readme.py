"""Regenerate the generated parts of README.md (the reason-code table) from the code.

    .venv/bin/python scripts/sync_readme.py          # rewrite README.md in place
    .venv/bin/python scripts/sync_readme.py --check  # exit 1 if README.md is stale
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lane.core.reasons import table_markdown

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- reasons:start -->", "<!-- reasons:end -->"


def render(text: str) -> str:
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md lacks the {START} ... {END} markers")
    return pattern.sub(lambda _: f"{START}\n{table_markdown()}{END}", text)


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = render(text)
    if "--check" in sys.argv:
        if new != text:
            print("README.md reason table is stale: run python scripts/sync_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
