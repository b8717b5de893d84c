"""The one gate for identifiers that become paths: run id, voice profile id, lane, profile, stage, job
id. Whatever their source (a flag, an environment variable, a config file, an HTTP request), they
pass here before any file is written:

- a strict pattern: ASCII letters and digits, then letters, digits, `_`, `.`, `-`, at most 100
  characters, never `..` (so no absolute path, no separator, no parent step, and no unicode
  look-alike such as a fullwidth solidus or a Cyrillic letter);
- and the path it names, resolved (symlinks followed), must stay inside its root.

Paths in a job request (audio, transcript, consent: lane/jobs.py) go through `within` against the
configured data root ("data path").

A bad run or job id is `run_not_found` (nothing by that name can exist), a bad lane `unknown_lane`,
anything else `config_invalid`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from .reasons import LaneError

IdKind = Literal["run id", "voice profile id", "lane", "profile", "stage", "job id", "data path"]
PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def _code(kind: IdKind) -> str:
    return {"run id": "run_not_found", "job id": "run_not_found", "lane": "unknown_lane"}.get(kind, "config_invalid")


def check_id(kind: IdKind, value: object) -> str:
    """`value` when it is a safe identifier; LaneError otherwise (run_not_found / config_invalid)."""
    text = value if isinstance(value, str) else ""
    if not PATTERN.fullmatch(text) or ".." in text:
        raise LaneError(_code(kind), f"{kind} {value!r} is not an identifier: ASCII letters, digits, '_', '.' and '-' "
                        "only, starting with a letter or digit, at most 100 characters")
    return text


def within(root: str | os.PathLike[str], *parts: str, kind: IdKind = "run id") -> Path:
    """root/parts..., refused when its resolved location (symlinks followed) leaves `root`."""
    base = Path(root).resolve()
    path = base.joinpath(*parts)
    real = path.resolve()
    if real != base and base not in real.parents:
        raise LaneError(_code(kind), f"{kind} {'/'.join(parts)!r} resolves to {real}, outside {base}")
    return path


def id_path(root: str | os.PathLike[str], folder: str, kind: IdKind, value: object) -> Path:
    """root/folder/<value> for a checked identifier, inside root (e.g. runs/<run id>)."""
    return within(root, folder, check_id(kind, value), kind=kind)
