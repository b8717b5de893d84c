"""A signed provenance statement inside every candidate bundle: an in-toto Statement (v1) in a DSSE
envelope, the format SLSA uses, written to `provenance.dsse.json` once the run's verdict is known.

- subject: every file of the bundle (manifest.json and validation.json included) with its sha256;
- predicate (`https://voice-lane.invalid/provenance/v1`): run id, commit, lane, profile, the inputs'
  hashes, base weights with licences, the consent record, the validation metrics, and the verdict
  with its reasons;
- signature: Ed25519 over DSSE's pre-authentication encoding, by the lane's signing key.

`verify(bundle_dir, trusted)` checks it offline: the envelope's signature by a trusted key, and every
subject digest against the files on disk (`lane verify-bundle PATH`).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ..core.fsutil import atomic_write_json, canonical_json, sha256_file
from ..core.signing import Signer, verify_signature

FILE = "provenance.dsse.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://voice-lane.invalid/provenance/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what the signature covers."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


class Subject(TypedDict):
    """An in-toto subject: a file of the bundle by path, with its digests ({"sha256": ...})."""

    name: str
    digest: dict[str, str]


def subjects(bundle_dir: Path) -> list[Subject]:
    """Every file of the bundle but the envelope itself, by path, with its sha256."""
    return [Subject(name=p.relative_to(bundle_dir).as_posix(), digest={"sha256": sha256_file(p)})
            for p in sorted(bundle_dir.rglob("*")) if p.is_file() and p.name != FILE]


def write(bundle_dir: str | os.PathLike[str], predicate: Mapping[str, Any], signer: Signer) -> Path:
    bdir = Path(bundle_dir)
    statement = {"_type": STATEMENT_TYPE, "subject": subjects(bdir), "predicateType": PREDICATE_TYPE,
                 "predicate": dict(predicate)}
    payload = canonical_json(statement).encode("utf-8")
    sig = signer.sign(pae(PAYLOAD_TYPE, payload))
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode("ascii"),
                "signatures": [{"keyid": sig["keyid"], "sig": sig["sig"], "public_key": sig["public_key"]}]}
    path = atomic_write_json(bdir / FILE, envelope)
    path.chmod(0o644)
    return path


@dataclass
class Provenance:
    ok: bool
    problems: list[str] = field(default_factory=list)
    statement: dict[str, Any] = field(default_factory=dict)

    @property
    def predicate(self) -> dict[str, Any]:
        return dict(self.statement.get("predicate") or {})

    @property
    def verdict(self) -> str | None:
        v = self.predicate.get("verdict")
        return str(v) if v is not None else None


def _envelope(bdir: Path) -> tuple[dict[str, Any] | None, bytes, str]:
    path = bdir / FILE
    if not path.is_file():
        return None, b"", f"{FILE} is missing (the run that made this bundle never reached a verdict)"
    try:
        env = json.loads(path.read_text(encoding="utf-8"))
        return env, base64.b64decode(str(env["payload"]), validate=True), ""
    except (ValueError, KeyError, TypeError) as exc:
        return None, b"", f"{FILE} is not a DSSE envelope ({exc})"


def verify(bundle_dir: str | os.PathLike[str], trusted: set[str]) -> Provenance:
    """The envelope's signature (a trusted key) and every subject's digest against the files."""
    bdir = Path(bundle_dir)
    env, payload, problem = _envelope(bdir)
    if env is None:
        return Provenance(False, [problem])
    problems: list[str] = []
    if env.get("payloadType") != PAYLOAD_TYPE:
        problems.append(f"payloadType {env.get('payloadType')!r} is not {PAYLOAD_TYPE}")
    why = [verify_signature(pae(PAYLOAD_TYPE, payload), s, trusted) for s in env.get("signatures") or []] or ["unsigned"]
    if all(why):
        problems.append(f"signature: {why[0]}")
    statement: dict[str, Any] = json.loads(payload)
    if statement.get("_type") != STATEMENT_TYPE or statement.get("predicateType") != PREDICATE_TYPE:
        problems.append("not a voice-lane in-toto statement")
    listed = {s["name"]: s["digest"]["sha256"] for s in statement.get("subject") or []}
    on_disk = {s["name"]: s["digest"]["sha256"] for s in subjects(bdir)}
    for name, digest in sorted(listed.items()):
        if name not in on_disk:
            problems.append(f"{name}: in the statement but missing")
        elif on_disk[name] != digest:
            problems.append(f"{name}: sha256 differs from the signed statement")
    problems += [f"{name}: present but not in the signed statement" for name in sorted(set(on_disk) - set(listed))]
    return Provenance(not problems, problems, statement)
