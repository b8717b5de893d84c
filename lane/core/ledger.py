"""The append-only, hash-chained, signed ledger: `reports/ledger.jsonl`, one entry per stage per run
(and one per promotion or rollback).

Each entry carries the seed's per-prompt report fields (stage id, files changed, behaviour summary,
checks run, verdict, firstFail, certificateHash, integrityOk, traceId, runId, commit sha, status)
plus `prev_hash` (the sha256 of the previous line's exact bytes, 64 zeros for the first entry) and
`signature`: an Ed25519 signature (lane.core.signing) over the entry without its signature.
`reports/ledger.head.json` records the entry count, the last line's hash, a version (the entry
count: it only grows) and a timestamp, signed too; every append also records the new head in the
rollback witness outside the workspace (lane.core.witness). Appends hold a file lock
(`reports/ledger.jsonl.lock`), so concurrent runs leave one valid chain. `reports/LEDGER.md` is
regenerated after every append. An entry may carry `evidence`: files the verdict reads (the run's
configuration snapshot, settings.json, the stage's result.json) by path and sha256, re-hashed like
artifacts.

`verify` recomputes the chain, every signature (by a trusted key), each entry's certificate from its
stored status, verdict, checks and artifacts, the head and the witness (`ledger_rolled_back` when the
head is older than the newest one this machine saw), and the artifact and evidence hashes on disk. It also
reads the runs the runner recorded (`runs/<id>/train_status.json`): every stage the runner finished
must have its entry, so neither a deleted ledger nor a dropped entry with the head rewritten passes.
A path recorded by several entries (later runs rewrite `artifacts/dataset_manifest.<lane>.json`, say)
is checked against its most recent entry only: older hashes are superseded, not broken.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack, cast

from .fsutil import atomic_write_json, atomic_write_text, canonical_json, read_json, sha256_bytes
from .gates import GateResult, artifact_problems, certificate_hash
from .reasons import exit_code
from .stage import ArtifactRecord, CheckRecord, UpstreamArtifact, now_iso

LEDGER = "reports/ledger.jsonl"
HEAD = "reports/ledger.head.json"
LEDGER_MD = "reports/LEDGER.md"
ENTRY_SCHEMA = "lane.ledger_entry/1"
ZERO_HASH = "0" * 64


def ledger_path(root: str | os.PathLike[str]) -> Path:
    return Path(root) / LEDGER


def head_path(root: str | os.PathLike[str]) -> Path:
    return Path(root) / HEAD


def _lock(root: str | os.PathLike[str]) -> Any:
    from filelock import FileLock

    path = ledger_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path) + ".lock", timeout=120)


def _lines(root: str | os.PathLike[str]) -> list[bytes]:
    path = ledger_path(root)
    if not path.exists():
        return []
    data = path.read_bytes()
    return [ln for ln in data.split(b"\n") if ln.strip()]


class LedgerEntry(TypedDict, total=False):
    """One line of the ledger (lane.ledger_entry/1): a stage's verdict (`make_entry`) or an action on a
    run (`action_entry`: `job`, `consent`, `consent_challenge` or `live` as the action records), with
    `prev_hash` and `signature` once stored. Keys follow the seed's per-prompt report shape."""

    schema: str
    ts: str
    stage_id: str
    lane: str | None
    files_changed: list[str]
    artifacts: list[ArtifactRecord]
    behavior_delta: str
    checks_run: list[CheckRecord]
    verdict: str | None
    firstFail: str | None
    certificateHash: str | None
    integrityOk: bool
    traceId: str
    runId: str
    commit_sha: str
    status: str
    reason: str
    evidence: list[ArtifactRecord]  # sha256 None: the file did not exist
    upstream: list[UpstreamArtifact]
    job: dict[str, Any]
    consent: dict[str, Any]
    consent_challenge: dict[str, Any]
    live: dict[str, Any]
    prev_hash: str
    signature: dict[str, str]  # keyid, public_key, sig (lane.core.signing)


class ActionRecord(TypedDict, total=False):
    """What an action entry records besides the common fields (one of them per action)."""

    job: dict[str, Any]
    consent: dict[str, Any]
    consent_challenge: dict[str, Any]
    live: dict[str, Any]


class LedgerHead(TypedDict):
    """The signed head (ledger.head.json): how many entries, the last one's hash, when."""

    entries: int
    last_hash: str
    version: int
    timestamp: str
    signature: dict[str, str]


def _rows(items: Sequence[Mapping[str, Any]]) -> list[ArtifactRecord]:
    return [ArtifactRecord(kind=a["kind"], path=a["path"], sha256=a["sha256"]) for a in items]


def make_entry(*, run_id: str, stage: str, lane: str | None, result: Mapping[str, Any] | None,
               gate: GateResult, status: str, reason: str, summary: str, commit_sha: str,
               trace_id: str | None = None, evidence: Sequence[Mapping[str, Any]] = (),
               upstream: Sequence[Mapping[str, Any]] = ()) -> LedgerEntry:
    """An entry (without prev_hash) in the seed's per-prompt report shape; `evidence`: the files the
    verdict reads besides the artifacts ({kind, path, sha256}; sha256 None: the file did not exist);
    `upstream`: the earlier stages' artifacts this stage ran on ({stage, kind, path, sha256})."""
    res = result or {}
    artifacts = _rows(res.get("artifacts") or [])
    entry = LedgerEntry({
        "schema": ENTRY_SCHEMA,
        "ts": now_iso(),
        "stage_id": stage,
        "lane": lane,
        "files_changed": sorted({a["path"] for a in artifacts}),
        "artifacts": artifacts,
        "behavior_delta": summary,
        "checks_run": list(res.get("checks") or []),
        "verdict": gate.verdict,
        "firstFail": gate.first_fail,
        "certificateHash": gate.certificate_hash,
        "integrityOk": gate.integrity_ok,
        "traceId": trace_id or f"lane:{uuid.uuid4()}",
        "runId": run_id,
        "commit_sha": commit_sha,
        "status": status,
        "reason": reason,
    })
    if evidence:
        entry["evidence"] = _rows(evidence)
    if upstream:
        entry["upstream"] = [UpstreamArtifact(stage=u["stage"], kind=u["kind"], path=u["path"], sha256=u["sha256"])
                             for u in upstream]
    return entry


def action_entry(*, run_id: str, action: str, lane: str | None, status: str, reason: str, summary: str,
                 commit_sha: str, artifacts: Sequence[Mapping[str, Any]] = (),
                 **record: Unpack[ActionRecord]) -> LedgerEntry:
    """An entry for something done to a run rather than a stage of it (a job submitted to a scheduler,
    a job that ended or was cancelled): no checks and no certificate; its artifacts' hashes are still
    verified. `record` adds what the action records (e.g. `job`: engine, job id, script hash)."""
    arts = _rows(artifacts)
    entry = LedgerEntry(schema=ENTRY_SCHEMA, ts=now_iso(), stage_id=action, lane=lane,
                        files_changed=sorted({a["path"] for a in arts}), artifacts=arts, behavior_delta=summary,
                        checks_run=[], verdict=None, firstFail=None, certificateHash=None, integrityOk=True,
                        traceId=f"lane:{uuid.uuid4()}", runId=run_id, commit_sha=commit_sha, status=status,
                        reason=reason)
    entry.update(record)
    return entry


def _payload(entry: Mapping[str, Any]) -> bytes:
    """What an entry's signature covers: the entry without its signature, as canonical JSON."""
    return canonical_json({k: v for k, v in entry.items() if k != "signature"}).encode("utf-8")


def _head_payload(entries: int, last_hash: str, version: int, timestamp: str) -> bytes:
    return canonical_json({"entries": entries, "last_hash": last_hash, "timestamp": timestamp,
                           "version": version}).encode("utf-8")


def _head(n: int, last: str, signer: Any) -> LedgerHead:
    """The signed head after `n` entries: version n (the ledger only grows), and when it was written."""
    ts = now_iso()
    return {"entries": n, "last_hash": last, "version": n, "timestamp": ts,
            "signature": signer.sign(_head_payload(n, last, n, ts))}


def append(root: str | os.PathLike[str], entry: Mapping[str, Any]) -> LedgerEntry:
    """Append one entry under the lock, chained to the last line and signed, and witness the new
    head outside the workspace; returns the stored entry."""
    from . import witness
    from .signing import load_signer

    signer = load_signer(root)
    path = ledger_path(root)
    with _lock(root):
        lines = _lines(root)
        prev = sha256_bytes(lines[-1]) if lines else ZERO_HASH
        stored = LedgerEntry(**{**dict(entry), "prev_hash": prev})  # type: ignore[typeddict-item]
        stored["signature"] = signer.sign(_payload(stored))
        line = canonical_json(stored).encode("utf-8")
        with open(path, "ab") as f:
            f.write(line + b"\n")
            f.flush()
            os.fsync(f.fileno())
        head = _head(len(lines) + 1, sha256_bytes(line), signer)
        atomic_write_json(head_path(root), head)
        witness.record(root, head)
        write_markdown(root, [json.loads(x) for x in [*lines, line]])
    return stored


# ----------------------------------------------------------------------------------------- verify
@dataclass
class VerifyResult:
    ok: bool
    entries: int
    first_broken_index: int | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)
    reason: str = "ok"  # ledger_broken, or ledger_rolled_back when the witness saw a newer head
    witness: str = ""  # what the head was compared with

    @property
    def summary(self) -> str:
        return f"{self.entries} entries; {self.witness}" if self.ok else f"{self.reason}: {self.problem}"


def _check_entries(lines: list[bytes], trusted: set[str]) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Chain, signature and certificate of every entry."""
    from .signing import verify_signature

    problems: list[tuple[int, str]] = []
    entries: list[dict[str, Any]] = []
    prev = ZERO_HASH
    for i, raw in enumerate(lines):
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            problems.append((i, f"entry {i}: not valid JSON ({exc})"))
            entries.append({})
            prev = sha256_bytes(raw)
            continue
        entries.append(entry)
        if entry.get("prev_hash") != prev:
            problems.append((i, f"entry {i}: prev_hash does not match the previous line "
                                f"(edited, dropped or reordered entry before it)"))
        if entry.get("certificateHash") is not None:  # promotion entries carry none
            cert = certificate_hash(str(entry.get("runId", "")), str(entry.get("stage_id", "")),
                                    entry.get("checks_run") or [], entry.get("artifacts") or [],
                                    str(entry.get("status", "")), str(entry.get("verdict", "")))
            if cert != entry.get("certificateHash"):
                problems.append((i, f"entry {i}: certificateHash does not match its status, verdict, checks and artifacts"))
        why = verify_signature(_payload(entry), entry.get("signature"), trusted)
        if why:
            problems.append((i, f"entry {i}: signature: {why}"))
        prev = sha256_bytes(raw)
    return entries, problems


def _check_artifacts(root: str | os.PathLike[str], entries: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Each path against the latest entry that recorded it: artifacts when that entry's integrity was
    true, evidence rows always (a row without sha256 says the file did not exist then: not checked)."""
    latest: dict[str, tuple[int, dict[str, Any], bool]] = {}
    for i, entry in enumerate(entries):
        rows = [(a, bool(entry.get("integrityOk", False))) for a in entry.get("artifacts") or []]
        rows += [(a, True) for a in entry.get("evidence") or []]
        for a, checked in rows:
            if isinstance(a, dict) and "path" in a:
                latest[str(a["path"])] = (i, a, checked and a.get("sha256") is not None)
    problems = []
    for _path, (i, a, checked) in sorted(latest.items(), key=lambda kv: kv[1][0]):
        if checked:
            problems += [(i, f"entry {i}: {p}") for p in artifact_problems([a], root)]
    return problems


def read_head(root: str | os.PathLike[str]) -> LedgerHead | None:
    """The head as stored (unverified), or None when it is missing or unreadable."""
    try:
        head = read_json(head_path(root))
    except (OSError, ValueError):
        return None
    if not isinstance(head, dict):
        return None
    return cast("LedgerHead", head)  # as stored: `verify` checks it


def _check_head(root: str | os.PathLike[str], lines: list[bytes], trusted: set[str]) -> list[tuple[int, str]]:
    from .signing import verify_signature

    hp = head_path(root)
    if not hp.exists():
        return [(0, "reports/ledger.head.json is missing")] if lines else []
    try:
        head = read_json(hp)
        last = sha256_bytes(lines[-1]) if lines else ZERO_HASH
        if head.get("entries") != len(lines) or (lines and head.get("last_hash") != last):
            return [(len(lines), f"ledger head records {head.get('entries')} entries, file has "
                                 f"{len(lines)}: an entry was dropped or appended outside the lane")]
        if head.get("version") != head["entries"] or not head.get("timestamp"):
            return [(len(lines), "ledger head has no version or timestamp (written before rollback protection, "
                                 "or edited)")]
        payload = _head_payload(int(head["entries"]), str(head["last_hash"]), int(head["version"]), str(head["timestamp"]))
        why = verify_signature(payload, head.get("signature"), trusted)
        return [(len(lines), f"ledger head: signature: {why}")] if why else []
    except (ValueError, AttributeError, KeyError, TypeError):
        return [(len(lines), "reports/ledger.head.json is not valid JSON")]


def recorded_stages(root: str | os.PathLike[str]) -> set[tuple[str, str]]:
    """(run id, stage) of every stage the runner finished, from the runs' own status copies."""
    out: set[tuple[str, str]] = set()
    for status in Path(root).glob("runs/*/train_status.json"):
        try:
            data = read_json(status)
        except (OSError, ValueError):
            out.add((status.parent.name, "?"))  # a run whose record is unreadable still needs its entries
            continue
        for name, rec in (data.get("stages") or {}).items():
            if isinstance(rec, dict) and rec.get("verdict"):
                out.add((str(data.get("run_id") or status.parent.name), str(name)))
    return out


def _check_runs(root: str | os.PathLike[str], entries: list[dict[str, Any]], n_lines: int) -> list[tuple[int, str]]:
    have = {(str(e.get("runId")), str(e.get("stage_id"))) for e in entries}
    missing = sorted(recorded_stages(root) - have)
    if not missing:
        return []
    if n_lines == 0:
        return [(0, f"{LEDGER} is missing or empty, but {len(missing)} recorded stage(s) exist under runs/ "
                    f"(first: {missing[0][0]} {missing[0][1]})")]
    run_id, stage = missing[0]
    return [(n_lines, f"no ledger entry for run {run_id} stage {stage} (and {len(missing) - 1} more): "
                      "entries were dropped")]


def verify(root: str | os.PathLike[str]) -> VerifyResult:
    """Recompute the chain, signatures, certificates, the head and the artifact hashes, and check that
    every stage the runner recorded has its entry, and that the head is not older than the witness."""
    from . import witness
    from .signing import trusted_keys

    lines = _lines(root)
    trusted = trusted_keys(root)
    entries, problems = _check_entries(lines, trusted)
    problems += _check_artifacts(root, entries)
    problems += _check_head(root, lines, trusted)
    problems += _check_runs(root, entries, len(lines))
    seen = witness.check(root, lines, read_head(root))
    problems += [(-1, p) for p in seen.rolled_back]  # first: a rollback explains whatever else is missing
    problems += [(len(lines), p) for p in seen.rewritten]
    problems.sort(key=lambda p: p[0])
    if not problems:
        return VerifyResult(True, len(lines), witness=seen.summary)
    first = problems[0][0]
    return VerifyResult(False, len(lines), first if first >= 0 else len(lines), problems[0][1], [p for _, p in problems],
                        "ledger_rolled_back" if seen.rolled_back else "ledger_broken", seen.summary)


def remember(root: str | os.PathLike[str]) -> None:
    """Witness the current head (after it verified): what a first look on this machine trusts."""
    from . import witness

    head = read_head(root)
    if head and head.get("version"):
        witness.record(root, head)


def verify_cli(root: str | os.PathLike[str], extra: Sequence[str] = (), extra_reason: str = "ledger_broken") -> int:
    """Print what `verify` found, and `extra` problems found beside the ledger (with their reason code);
    the exit code. A ledger that verifies with no extra problem is remembered by the witness."""
    res = verify(root)
    if res.ok and not extra:
        remember(root)
        print(f"ledger ok: {res.entries} entries; chain, signatures, certificates, head, artifacts, evidence and "
              f"recorded runs verified; {res.witness}")
        return 0
    reason = res.reason if not res.ok else extra_reason
    for p in [*res.problems, *extra]:
        print(f"{reason.replace('_', ' ')}: {p}")
    print(f"first broken entry: {res.first_broken_index if not res.ok else res.entries}")
    return exit_code(reason)


# -------------------------------------------------------------------------------------- rendering
def read_entries(root: str | os.PathLike[str]) -> list[LedgerEntry]:
    """Every line as written (not verified: `verify` does that); an unreadable line as a placeholder."""
    out: list[LedgerEntry] = []
    for raw in _lines(root):
        try:
            out.append(json.loads(raw))
        except ValueError:
            out.append(LedgerEntry(behavior_delta="<unreadable line>"))
    return out


def _cell(value: Any) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = ["# voice-lane execution ledger", "",
            "Generated from `reports/ledger.jsonl` after every append; verify with `lane ledger verify`.", "",
            "## Stage execution table", "",
            "| # | Run | Stage | Status | Commit | Verdict | Certificate Hash | Integrity OK | Notes |",
            "|---|---|---|---|---|---|---|---|---|"]
    for i, e in enumerate(entries):
        rows.append("| " + " | ".join(_cell(x) for x in (
            i, e.get("runId"), e.get("stage_id"), e.get("status"), str(e.get("commit_sha") or "")[:7],
            e.get("verdict"), e.get("certificateHash"), e.get("integrityOk"),
            e.get("behavior_delta"))) + " |")
    return "\n".join(rows) + "\n"


def write_markdown(root: str | os.PathLike[str], entries: Sequence[Mapping[str, Any]] | None = None) -> Path:
    path = atomic_write_text(Path(root) / LEDGER_MD, markdown(entries if entries is not None else read_entries(root)))
    os.chmod(path, 0o644)  # atomic writes start from a 0600 temp file
    return path


def show(root: str | os.PathLike[str], last: int = 20) -> None:
    from rich.console import Console
    from rich.table import Table

    entries = read_entries(root)
    start = max(0, len(entries) - last)
    table = Table(title=f"{LEDGER} ({len(entries)} entries)")
    for col in ("#", "run", "stage", "status", "reason", "verdict", "certificate", "integrity"):
        table.add_column(col, overflow="fold")
    for i, e in enumerate(entries[start:], start):
        table.add_row(str(i), str(e.get("runId")), str(e.get("stage_id")), str(e.get("status")),
                      str(e.get("reason")), str(e.get("verdict")), str(e.get("certificateHash", ""))[:16],
                      str(e.get("integrityOk")).lower())
    Console(width=max(140, Console().width)).print(table)
