"""Where bundles live, and the one switch that makes a candidate live.

    bundles/<voice_profile_id>/
        candidates/<run_id>/        every run's export (validated in place by that run's validate)
        voice_bundle -> candidates/<run_id>      the live voice: a symlink, switched atomically
        history.jsonl               every switch: run id, previous run id, when, why (promote/rollback)

A NO-GO run never touches `voice_bundle`: only `switch` does, and only `lane.promotion` calls it (for
a GO run, or to roll back to the previous live run), with a ledger entry that proves the switch
(lane.bundle.live): a link made any other way is never served. The switch writes a new symlink beside the old
one and renames it over it, so a reader sees the old voice or the new one, never neither.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import TypedDict

from ..core.fsutil import atomic_write_text
from ..core.ids import id_path
from ..core.reasons import LaneError

LIVE = "voice_bundle"
CANDIDATES = "candidates"
HISTORY = "history.jsonl"
def voice_dir(root: str | os.PathLike[str], voice_id: str) -> Path:
    return id_path(root, "bundles", "voice profile id", voice_id)


def candidate_dir(root: str | os.PathLike[str], voice_id: str, run_id: str) -> Path:
    return id_path(voice_dir(root, voice_id), CANDIDATES, "run id", run_id)


def live_path(root: str | os.PathLike[str], voice_id: str) -> Path:
    return voice_dir(root, voice_id) / LIVE


def live_run(root: str | os.PathLike[str], voice_id: str) -> str | None:
    """The run id whose candidate is live, or None."""
    link = live_path(root, voice_id)
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    return target.name if target.parent.name == CANDIDATES else None


def run_of(bundle_dir: str | os.PathLike[str]) -> tuple[str, str] | None:
    """(voice id, run id) when `bundle_dir` is (or links to) a candidate, else None."""
    real = Path(bundle_dir).resolve()
    if real.parent.name != CANDIDATES:
        return None
    return real.parent.parent.name, real.name


class Switch(TypedDict):
    """One line of a voice's history.jsonl: which run went live, which was live before, when, why."""

    run_id: str
    previous: str | None
    at: str
    why: str  # promote | rollback


def history(root: str | os.PathLike[str], voice_id: str) -> list[Switch]:
    path = voice_dir(root, voice_id) / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _adopt_legacy(link: Path) -> None:
    """A live bundle from before candidates existed (a real directory) becomes a candidate first."""
    if link.is_dir() and not link.is_symlink():
        legacy = link.parent / CANDIDATES / f"legacy-{int(link.stat().st_mtime)}"
        legacy.parent.mkdir(parents=True, exist_ok=True)
        os.replace(link, legacy)
        os.symlink(Path(CANDIDATES) / legacy.name, link)


_LINK = object()


def switch(root: str | os.PathLike[str], voice_id: str, run_id: str, *, why: str, at: str,
           previous: str | object | None = _LINK) -> str | None:
    """Make `candidates/<run_id>` the live bundle; returns the run id that was live before. `previous`
    is what the history records as the earlier live run (lane.promotion passes the ledger's; by
    default, the run the link pointed at)."""
    target = candidate_dir(root, voice_id, run_id)
    if not target.is_dir():
        raise LaneError("bundle_invalid", f"no candidate bundle at {target}")
    link = live_path(root, voice_id)
    _adopt_legacy(link)
    before = live_run(root, voice_id) if previous is _LINK else previous if isinstance(previous, str) else None
    tmp = link.with_name(f".{LIVE}.new-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(Path(CANDIDATES) / run_id, tmp)
    os.replace(tmp, link)
    hist = voice_dir(root, voice_id) / HISTORY
    rows = [*history(root, voice_id), Switch(run_id=run_id, previous=before, at=at, why=why)]
    atomic_write_text(hist, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    return before


def replace_candidate(tmp: Path, final: Path) -> None:
    """Rename a freshly built bundle into `candidates/<run_id>` (a re-export of the same run replaces
    its own earlier candidate; no other run's bundle is touched)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
