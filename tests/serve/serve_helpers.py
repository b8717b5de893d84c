"""Helpers of the serve tests (imported by name: a module called `conftest` is ambiguous across test
folders): a real tiny voice made live the way a GO run is, a passed validation record, a signed
provenance statement with its verdict, and the atomic live switch; settings for a test server."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

TOKEN = "test-token-0123456789abcdef"


def add_candidate(root: Path, src: Path, voice: str, run_id: str) -> Path:
    """A copy of bundle `src` as bundles/<voice>/candidates/<run_id>, validated (not yet GO)."""
    import json

    from lane.bundle import write_validation

    cand = root / "bundles" / voice / "candidates" / run_id
    shutil.copytree(src, cand, ignore=shutil.ignore_patterns("validation.json", "provenance.dsse.json"))
    manifest = json.loads((cand / "manifest.json").read_text())
    manifest.update(voice_profile_id=voice, run_id=run_id, validation=None)
    (cand / "manifest.json").write_text(json.dumps(manifest))
    write_validation(cand, {"ok": True, "run_id": run_id, "first_fail": None})
    return cand


def seal(root: Path, cand: Path, verdict: str) -> None:
    """What the end of a run writes into its candidate: the signed provenance with its verdict."""
    from lane.bundle import provenance
    from lane.core.signing import load_signer

    provenance.write(cand, {"run_id": cand.name, "voice_profile_id": cand.parent.parent.name, "verdict": verdict,
                            "reasons": [] if verdict == "GO" else ["gate_failed"]}, load_signer(root))


def make_live(root: Path, src: Path, voice: str, run_id: str) -> Path:
    """A GO candidate of `src`, switched live with the ledger entry that proves it (what `lane promote`
    ends with; a link without that entry is never served)."""
    from lane.bundle import store
    from lane.bundle.live import switch_entry
    from lane.core import ledger
    from lane.core.stage import now_iso

    cand = add_candidate(root, src, voice, run_id)
    seal(root, cand, "GO")
    previous = store.switch(root, voice, run_id, why="promote", at=now_iso())
    ledger.append(root, switch_entry(root, "promote", voice, run_id, previous, cand, lane=None,
                                     summary=f"promote {voice}: run {run_id} (test)"))
    return store.live_path(root, voice)


def settings_for(root: Path, **kw: Any) -> Any:
    from lane.serve import load_settings

    return load_settings(root, env={}, port=0, rescan_s=kw.pop("rescan_s", 3600.0), **kw)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample in `text` (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def wait_for(what: str, check: Any, limit_s: float = 180.0) -> Any:
    """Poll `check()` until it returns something true (a signal from the server, such as a metric),
    failing after `limit_s` (a limit for a hung server, not a measure of speed)."""
    import time

    deadline = time.monotonic() + limit_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"no signal: {what}"
        time.sleep(0.05)


def hold_slot(thread: Any, app: Any) -> Any:
    """Take a synthesis slot on the server's own event loop (as a request being synthesized would);
    `release_slot` gives it back."""
    import asyncio

    admission = app.state.lane.synth.admission
    return asyncio.run_coroutine_threadsafe(admission.admit(), thread.loop).result(timeout=60)


def release_slot(thread: Any, ticket: Any) -> None:
    thread.loop.call_soon_threadsafe(ticket.release)
