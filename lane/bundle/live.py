"""The live voices against the signed ledger: a live bundle is proven by a promote (or rollback) entry,
never by its link alone.

Every switch of `bundles/<voice>/voice_bundle` that the lane makes (lane.promotion.promote, rollback)
appends a ledger entry whose `live` field names the voice, the run made live and the run that was live
before, and whose artifacts are the candidate's `manifest.json` and `provenance.dsse.json` with their
sha256 (so `lane ledger verify` re-hashes them like any artifact). From those entries:

- `rows(entries, voice)`: the voice's switches, in order, as the ledger records them;
- `audit(root)`: every voice's live link and `history.jsonl` against the ledger: a link the ledger did
  not make (by hand, or a promotion removed from the ledger), or a history that says otherwise, is a
  problem; history rows beyond the ledger's mean the ledger lost entries (`ledger_rolled_back`);
- `proof(root, voice, run_id, bundle)`: why a live bundle is not proven ([] when it is): the ledger
  verifies, its last switch of the voice names this run, and the candidate's files are the ones that
  entry names. `lane serve` serves nothing else (lane.promotion.servable).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

from ..core.fsutil import rel, sha256_file
from ..core.ledger import LedgerEntry
from ..core.stage import ArtifactRecord
from . import store

ACTIONS = ("promote", "rollback")
PROOF_FILES = (("voice_bundle_manifest", "manifest.json"), ("provenance", "provenance.dsse.json"))


class Live(TypedDict):
    """A promote/rollback entry's `live`: the voice, the run now live, the one before, the link."""

    voice: str
    run_id: str
    previous: str | None
    link: str


class SwitchFields(TypedDict):
    live: Live
    artifacts: list[ArtifactRecord]


class SwitchRow(TypedDict):
    """A switch of a voice's live link as the ledger records it."""

    action: str
    run_id: str | None
    previous: str | None
    artifacts: list[Any]


def entry_fields(root: str | os.PathLike[str], voice: str, run_id: str, previous: str | None,
                 candidate: Path) -> SwitchFields:
    """What a promote/rollback entry carries: `live` and the candidate's proof files as artifacts."""
    arts = [ArtifactRecord(kind=kind, path=rel(candidate / name, root), sha256=sha256_file(candidate / name))
            for kind, name in PROOF_FILES]
    return SwitchFields(live=Live(voice=voice, run_id=run_id, previous=previous, link=f"bundles/{voice}/{store.LIVE}"),
                        artifacts=arts)


def switch_entry(root: str | os.PathLike[str], action: str, voice: str, run_id: str, previous: str | None,
                 candidate: Path, *, lane: str | None, summary: str) -> LedgerEntry:
    """The ledger entry of a switch of the live link (what lane.promotion appends after promote or
    rollback): `live` (voice, run, previous) and the candidate's proof files as artifacts."""
    from ..core.ledger import action_entry
    from ..core.paths import commit_of

    fields = entry_fields(root, voice, run_id, previous, candidate)
    entry = action_entry(run_id=run_id, action=action, lane=lane, status="done", reason="ok", summary=summary,
                         commit_sha=commit_of(root).sha or "unknown", artifacts=fields["artifacts"],
                         live=dict(fields["live"]))
    entry["verdict"], entry["files_changed"] = "GO", [fields["live"]["link"]]
    return entry


def rows(entries: Sequence[Mapping[str, Any]], voice: str) -> list[SwitchRow]:
    """The voice's switches as the ledger records them: [{action, run_id, previous, artifacts}]."""
    out: list[SwitchRow] = []
    for e in entries:
        live = e.get("live")
        if e.get("stage_id") in ACTIONS and isinstance(live, Mapping) and live.get("voice") == voice:
            out.append(SwitchRow(action=e["stage_id"], run_id=live.get("run_id"), previous=live.get("previous"),
                                 artifacts=list(e.get("artifacts") or [])))
    return out


def _voices(root: Path, entries: Sequence[Mapping[str, Any]]) -> list[str]:
    named = {str(e["live"]["voice"]) for e in entries
             if e.get("stage_id") in ACTIONS and isinstance(e.get("live"), Mapping) and e["live"].get("voice")}
    bundles = root / "bundles"
    on_disk = {d.name for d in bundles.iterdir() if (d / store.LIVE).is_symlink() or (d / store.HISTORY).exists()} \
        if bundles.is_dir() else set()
    return sorted(named | on_disk)


def _audit_voice(root: Path, voice: str, entries: Sequence[Mapping[str, Any]]) -> tuple[list[str], bool]:
    """(problems, whether the history holds switches the ledger has lost)."""
    recorded = [(r["run_id"], r["previous"], r["action"]) for r in rows(entries, voice)]
    try:
        link = store.live_run(root, voice)
        hist = [(h.get("run_id"), h.get("previous"), h.get("why")) for h in store.history(root, voice)]
    except (OSError, ValueError) as exc:
        return [f"bundles/{voice}: unreadable ({type(exc).__name__}: {exc})"], False
    problems = []
    expected = recorded[-1][0] if recorded else None
    if link != expected:
        said = f"names run {expected}" if expected else "records no promotion of it"
        problems.append(f"bundles/{voice}/{store.LIVE} is {'run ' + link if link else 'not a live link'}, but the "
                        f"ledger {said} (a link made by hand, or a promotion removed from the ledger)")
    lost = len(hist) > len(recorded) and hist[:len(recorded)] == recorded
    if hist != recorded:
        problems.append(f"bundles/{voice}/{store.HISTORY} has {len(hist)} switch(es), the ledger {len(recorded)}"
                        + (": the ledger lost the newest ones" if lost else ": they disagree"))
    return problems, lost


def audit(root: str | os.PathLike[str]) -> tuple[list[str], bool]:
    """Every voice's live link and history against the ledger: (problems, rolled back)."""
    from ..core.ledger import read_entries

    rootp = Path(root).resolve()
    entries = read_entries(rootp)
    problems, rolled = [], False
    for voice in _voices(rootp, entries):
        found, lost = _audit_voice(rootp, voice, entries)
        problems += found
        rolled = rolled or lost
    return problems, rolled


def proof(root: str | os.PathLike[str], voice: str, run_id: str, bundle: Path) -> list[str]:
    """Why the live bundle of `voice` (run `run_id`, files at `bundle`) is not proven by the ledger."""
    from ..core import ledger

    res = ledger.verify(root)
    if not res.ok:
        return [f"the ledger does not verify ({res.reason}: {res.problem})"]
    recorded = rows(ledger.read_entries(root), voice)
    if not recorded:
        return [f"no promote entry in the ledger makes {voice} live (a link made by hand is not a promotion)"]
    last = recorded[-1]
    if last["run_id"] != run_id:
        return [f"the ledger's last {last['action']} of {voice} names run {last['run_id']}, not {run_id}"]
    named = {a.get("kind"): a.get("sha256") for a in last["artifacts"]}
    for kind, name in PROOF_FILES:
        path = bundle / name
        if not path.is_file() or named.get(kind) != sha256_file(path):
            return [f"{name} is not the file the ledger's {last['action']} entry names"]
    return []


def verify_cli(root: str | os.PathLike[str]) -> int:
    """`lane ledger verify`: the ledger (lane.core.ledger.verify_cli) and the live voices against it."""
    from ..core.ledger import verify_cli as ledger_cli

    problems, rolled = audit(root)
    return ledger_cli(root, problems, "ledger_rolled_back" if rolled else "ledger_broken")
