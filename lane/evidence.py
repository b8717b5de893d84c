"""What the verdict reads, each piece checked against the signed ledger before it counts.

The verdict is a function of signed evidence only. For a run, `gather` reads:

- the **ledger**: verified now (chain, signatures, certificates, head, the rollback witness), and the
  run's own entries: the latest one per stage says its status, verdict and certificate;
- the **configuration snapshot** (`runs/<id>/config.snapshot.json`, lane.core.snapshot): its sha256
  must be the one every entry of the run binds; the settings, lane, profile, thresholds, weights
  manifest and licence policy the rules judge by come from it, never from the live files (those that
  changed since are listed in `drift`, for the report);
- each stage's **result.json**: its sha256 must be the one its entry binds, and its certificate
  (checks, artifacts, with the entry's status and verdict) recomputed now must equal the entry's;
  a stage whose entry names upstream artifacts that its upstream stage no longer certifies ran on
  stale input and does not count;
- `settings.json`: bound the same way (the report shows its sources);
- the run's **own candidate** `bundles/<voice>/candidates/<run_id>` (voice from the snapshot; never the
  `bundle_path` a status file names): a real directory whose manifest names this run and voice.

Anything that does not match is listed in `uncertified` with the file named: the evidence rule makes it
NO-GO (`ledger_broken`). train_status.json is read for display and for which stages belong to the
latest attempt; it can only take evidence away, never add any.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.fsutil import read_json, rel, sha256_file
from .core.ledger import LedgerEntry
from .core.reasons import LaneError

STAGE_ACTIONS = ("verify", "train", "export", "validate")


@dataclass
class Evidence:
    """What the rules read: the run directory, each piece certified by the ledger, verified now."""

    root: Path
    run_id: str
    run_dir: Path
    settings: dict[str, Any]  # the snapshot's (settings.json's when there is no snapshot: display only)
    meta: dict[str, Any]  # settings.json
    status: dict[str, Any]  # train_status.json: display, and which stages belong to the latest attempt
    records: dict[str, Any]  # the latest attempt's stage records (train_status), for display
    results: dict[str, dict[str, Any] | None]
    gates: dict[str, dict[str, Any]]
    entries: dict[str, LedgerEntry] = field(default_factory=dict)  # stage -> the run's latest ledger entry
    profile: dict[str, Any] = field(default_factory=dict)
    profile_problem: str = ""
    lane_stages: tuple[str, ...] = ()
    lane_promotable: bool = False
    lane_status: str = ""
    ledger_ok: bool = False
    ledger_problem: str = ""
    ledger_reason: str = "ledger_broken"
    witness: str = ""
    snapshot: Any = None  # lane.core.snapshot.Snapshot
    weights: dict[str, Any] = field(default_factory=dict)  # the snapshot's weights section
    policy: Any = None  # the snapshot's lane.core.licenses.LicensePolicy
    uncertified: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    bundle_dir: Path | None = None
    bundle_problems: list[str] = field(default_factory=list)
    candidate_problems: list[str] = field(default_factory=list)
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    evaluators: dict[str, Any] = field(default_factory=dict)  # validate's evaluators by role (class, id, sha256)

    def check(self, stage: str, check_id: str) -> dict[str, Any] | None:
        for c in (self.results.get(stage) or {}).get("checks") or []:
            if c.get("id") == check_id:
                return dict(c)
        return None

    def stat(self, stage: str, key: str) -> Any:
        return ((self.results.get(stage) or {}).get("stats") or {}).get(key)

    @property
    def profile_promotable(self) -> bool:
        return bool(self.profile.get("promotable", False)) and not self.settings.get("allow_from_scratch")

    @property
    def thresholds(self) -> dict[str, Any]:
        return dict((self.profile.get("eval") or {}).get("thresholds") or {})


def read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _bound(entries: list[LedgerEntry], kind: str, path: str) -> set[Any]:
    """Every sha256 the run's entries bind for (kind, path)."""
    return {r.get("sha256") for e in entries for r in e.get("evidence") or []
            if r.get("kind") == kind and r.get("path") == path}


def certified_file(ev: Evidence, entries: list[LedgerEntry], kind: str, path: Path) -> bool:
    """True when every entry of the run that binds `path` binds its current sha256 (and one does)."""
    rpath = rel(path, ev.root)
    hashes = _bound(entries, kind, rpath)
    if not hashes:
        ev.uncertified.append(f"{rpath} is not bound by any ledger entry of run {ev.run_id}")
        return False
    now = sha256_file(path) if path.is_file() else None
    if hashes != {now}:
        ev.uncertified.append(f"{rpath} " + ("is missing" if now is None else "differs from what the ledger certified"))
        return False
    return True


def _run_entries(root: Path, run_id: str) -> list[LedgerEntry]:
    from .core.ledger import read_entries

    return [e for e in read_entries(root) if e.get("runId") == run_id and e.get("stage_id") in STAGE_ACTIONS]


def _config(ev: Evidence, entries: list[LedgerEntry]) -> None:
    """Settings, lane, profile, weights and licence policy from the certified snapshot."""
    from .core.snapshot import Snapshot, drift, frozen_policy, path_of

    path = path_of(ev.run_dir)
    if not path.is_file():
        ev.uncertified.append(f"{rel(path, ev.root)} is missing: the run's configuration was never frozen")
        ev.profile_problem = "no configuration snapshot"
        return
    if not certified_file(ev, entries, "config_snapshot", path):
        ev.profile_problem = "the configuration snapshot is not the one the ledger certified"
        return
    try:
        snap = Snapshot.read(path)
        ev.snapshot, ev.settings = snap, snap.settings
        ev.drift = drift(ev.root, snap)
        ev.weights = dict(snap.doc.get("weights") or {})
        ev.policy = frozen_policy(path, ev.root)
        lane = snap.section("lane")
        ev.lane_stages, ev.lane_promotable, ev.lane_status = tuple(lane["stages"]), bool(lane["promotable"]), lane["status"]
        ev.profile = snap.section("profile")
    except LaneError as err:
        ev.profile_problem = f"{err.code}: {err.detail}"


def _upstream_stale(ev: Evidence, entry: LedgerEntry) -> str:
    """'' unless the entry names an upstream artifact its upstream stage's counted result no longer has."""
    for row in entry.get("upstream") or []:
        res = ev.results.get(str(row.get("stage"))) or {}
        have = {(a.get("path"), a.get("sha256")) for a in res.get("artifacts") or []}
        if (row.get("path"), row.get("sha256")) not in have:
            return f"{row.get('stage')}'s {row.get('path')}"
    return ""


def _stages(ev: Evidence, names: list[str], entries: list[LedgerEntry]) -> None:
    """Each stage's result (certified against its entry) and its gate: the entry's verdict and
    certificate, the integrity re-checked on disk now."""
    from .core.gates import certify, evaluate, later_hashes
    from .core.stage import result_path

    latest = {str(e["stage_id"]): e for e in entries}
    attempt = set(ev.records) if ev.records else set(latest)
    ev.entries = {n: latest[n] for n in names if n in latest and n in attempt}
    for n in names:
        res = read(result_path(ev.run_dir, n)) if n in ev.entries else None
        if res is not None and not isinstance(res, dict):
            res = None
        entry = ev.entries.get(n)
        if entry is not None and res is not None:
            certified_file(ev, [entry], "stage_result", result_path(ev.run_dir, n))
            if certify(res, ev.run_id, n, str(entry.get("status")), str(entry.get("verdict"))) != entry.get("certificateHash"):
                ev.uncertified.append(f"{rel(result_path(ev.run_dir, n), ev.root)}: its certificate is not the ledger's")
        ev.results[n] = res
    for i, n in enumerate(names):
        entry, res = ev.entries.get(n), ev.results.get(n)
        if entry is None:
            continue
        later = later_hashes([r for r in (ev.results.get(m) for m in names[i + 1:]) if r is not None])
        gate: dict[str, Any] = dict(evaluate(res, ev.root, later).as_dict()) if res is not None else \
            {"integrity_ok": False, "first_fail": None}
        gate.update(verdict=entry.get("verdict") or "FAIL", certificate_hash=entry.get("certificateHash"))
        stale = _upstream_stale(ev, entry)
        if stale:
            gate.update(verdict="FAIL", first_fail="stale_upstream", stale=stale)
        ev.gates[n] = gate


def _candidate(ev: Evidence) -> None:
    """The run's own candidate (never a path a status file names), checked to be exactly that."""
    from .bundle import store
    from .bundle.check import validate_voice_bundle
    from .bundle.manifest import BundleManifest

    voice = ev.settings.get("voice_profile_id")
    if not voice or ev.snapshot is None:
        return
    try:
        cand = store.candidate_dir(ev.root, str(voice), ev.run_id)
    except LaneError:
        return
    named = ev.status.get("bundle_path")
    if named and (ev.root / str(named)).resolve() != cand:
        ev.candidate_problems.append(f"the status file names {named}; the run's own candidate is {rel(cand, ev.root)}")
    if not cand.exists() and not cand.is_symlink():
        return
    ev.bundle_dir = cand
    if cand.is_symlink() or cand.resolve() != cand:
        ev.candidate_problems.insert(0, f"{rel(cand, ev.root)} is a link to {cand.resolve()}, not the run's own bundle")
    ev.bundle_problems = validate_voice_bundle(cand, ev.root).problems
    try:
        ev.manifest = BundleManifest.read(cand).data or {}
    except (OSError, ValueError):
        ev.manifest = {}
    if ev.manifest and (ev.manifest.get("run_id"), ev.manifest.get("voice_profile_id")) != (ev.run_id, voice):
        ev.candidate_problems.insert(0, f"its manifest names run {ev.manifest.get('run_id')} voice "
                                        f"{ev.manifest.get('voice_profile_id')}, not run {ev.run_id} voice {voice}")
    validation = read(cand / "validation.json") or {}
    ev.metrics, ev.evaluators = validation.get("metrics") or {}, validation.get("evaluators") or {}


def gather(root: str | os.PathLike[str], run_id: str) -> Evidence:
    """Everything the rules need, for runs/<run_id>/, each piece checked against the ledger now."""
    from .core import ledger
    from .core.ids import id_path

    rootp = Path(root).resolve()
    run_dir = id_path(rootp, "runs", "run id", run_id)
    if not run_dir.is_dir():
        raise LaneError("run_not_found", f"runs/{run_id} does not exist under {rootp}")
    meta = read(run_dir / "settings.json") or {}
    status: dict[str, Any] = read(run_dir / "train_status.json") or {}
    ev = Evidence(rootp, run_id, run_dir, dict(meta.get("settings") or {}), meta, status,
                  dict(status.get("stages") or {}), {}, {})
    verdict = ledger.verify(rootp)
    ev.ledger_ok, ev.ledger_problem, ev.ledger_reason, ev.witness = \
        verdict.ok, verdict.problem or "", verdict.reason if not verdict.ok else "ledger_broken", verdict.witness
    entries = _run_entries(rootp, run_id)
    _config(ev, entries)
    if (run_dir / "settings.json").is_file():
        certified_file(ev, entries, "run_settings", run_dir / "settings.json")
    asked = set(ev.settings.get("stages") or ev.lane_stages or STAGE_ACTIONS)
    names = [n for n in STAGE_ACTIONS if n in asked or any(e["stage_id"] == n for e in entries)]
    _stages(ev, names, entries)
    _candidate(ev)
    if not ev.metrics and ev.results.get("validate") is not None:
        summary = read(run_dir / "validate" / "metrics.json") or {}
        ev.metrics, ev.evaluators = dict(summary.get("metrics") or {}), dict(summary.get("evaluators") or {})
    return ev
