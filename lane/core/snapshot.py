"""A run's configuration, frozen when it starts: one canonical document, `runs/<run_id>/config.snapshot.json`.

It holds what every stage and the verdict would otherwise read from live files: the settings, the
resolved lane, the profile with its `extends` chain applied, the profile's thresholds, the weights
manifest (its entries, with the manifest's sha256; a byte copy beside it, `weights-manifest.json`, is
what the stages load), the licence policy, and the sha256 of every config file those came from
(`sources`). It is written once, its sha256 goes into every ledger entry of the run (the first
included), and the runner hands its path to the stages (`config_snapshot`), which read the profile
and lane from it; the verdict reads it too. A config file changed afterwards changes nothing about the
run: `drift` names it, so the report can say so. A resumed run must resolve to the same document
(the settings that only steer the runner, such as `stages` or `cell_timeout_s`, aside), else the resume
is refused (`config_changed`). Two places still read the live licence policy while a run goes on (a
train stage resolving its base weights, validate loading its evaluators): the verdict judges every
licence again from the snapshot, so that can only make a run fail, never pass.
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .fsutil import canonical_json, read_json, rel, sha256_bytes, sha256_file
from .reasons import LaneError

SNAPSHOT_FILE = "config.snapshot.json"
MANIFEST_COPY = "weights-manifest.json"
SCHEMA = "lane.config_snapshot/1"
# settings that steer the runner, not what a stage computes: a resume may change them
ORCHESTRATION = ("backend", "stages", "cell_timeout_s", "kernel_name", "expected_head", "require_clean_tree")


def _problem(err: LaneError) -> dict[str, str]:
    return {"problem": f"{err.code}: {err.detail}"}


def _profile_files(root: Path, name: str) -> list[Path]:
    """The profile file and every profile it extends, in order (stops at the first that is missing)."""
    from .config import load_yaml
    from .ids import check_id

    out: list[Path] = []
    current: str | None = name
    while current and len(out) < 32:
        path = root / "configs" / "profiles" / f"{check_id('profile', current)}.yaml"
        if not path.is_file() or path in out:
            break
        out.append(path)
        extends = load_yaml(path).get("extends")
        current = str(extends) if extends else None
    return out


def _weights(root: Path, manifest: str | None) -> dict[str, Any]:
    from .paths import resolve_input
    from .weights import load_manifest

    if not manifest:
        return {"path": None, "problem": "weights_manifest_invalid: no weights manifest given"}
    path = resolve_input(manifest, root)
    try:
        return {"path": manifest, "file": rel(path, root), "sha256": sha256_file(path),
                "manifest": load_manifest(path, root)}
    except LaneError as err:
        return {"path": manifest, **_problem(err)}
    except OSError as exc:
        return {"path": manifest, "problem": f"weights_manifest_invalid: {manifest}: {exc}"}


def _sections(root: Path, settings: Mapping[str, Any]) -> tuple[dict[str, Any], list[Path]]:
    """Lane, profile, thresholds, weights and licence policy, and the files they came from."""
    from .config import lane_config_file, load_profile
    from .lanes import lanes_dir, load_lane
    from .licenses import POLICY_FILE, LicensePolicy
    from .paths import config_file, resolve_input

    doc: dict[str, Any] = {}
    files: list[Path] = [p for p in [lane_config_file(root)] if p is not None]
    try:
        spec = load_lane(root, str(settings.get("lane") or ""))
        doc["lane"] = asdict(spec)
        files += [lanes_dir(root) / f"{n}.yaml" for n in spec.chain]
    except LaneError as err:
        doc["lane"] = _problem(err)
    try:
        doc["profile"] = load_profile(str(settings.get("profile") or ""), root)
        doc["thresholds"] = (doc["profile"].get("eval") or {}).get("thresholds") or {}
        files += _profile_files(root, str(settings.get("profile")))
    except LaneError as err:
        doc["profile"] = doc["thresholds"] = _problem(err)
    doc["weights"] = _weights(root, settings.get("weights_manifest"))
    if "sha256" in doc["weights"]:
        files.append(resolve_input(str(settings["weights_manifest"]), root))
    try:
        policy = LicensePolicy.load(root)
        doc["licence_policy"] = {"allow": list(policy.allow), "deny": list(policy.deny),
                                 "allow_exceptions": list(policy.allow_exceptions)}
        files.append(config_file(root, POLICY_FILE))
    except LaneError as err:
        doc["licence_policy"] = _problem(err)
    return doc, files


def sources(root: str | os.PathLike[str], settings: Mapping[str, Any]) -> dict[str, str]:
    """{file: sha256} of every config file the snapshot of `settings` reads now."""
    rootp = Path(root).resolve()
    return {rel(p, rootp): sha256_file(p) for p in _sections(rootp, settings)[1] if p.is_file()}


def build(root: str | os.PathLike[str], run_id: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot document for a run with `settings` (Settings.as_dict()), resolved now. A section
    that cannot be resolved records its problem instead (the verify stage and the verdict fail on it)."""
    rootp = Path(root).resolve()
    doc, files = _sections(rootp, settings)
    return {"schema": SCHEMA, "run_id": run_id, "settings": dict(settings), **doc,
            "sources": {rel(p, rootp): sha256_file(p) for p in files if p.is_file()}}


def encode(doc: Mapping[str, Any]) -> bytes:
    return canonical_json(doc).encode("utf-8")


def differences(frozen: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two snapshot documents, the runner-only settings aside."""
    out = []
    a, b = dict(frozen.get("settings") or {}), dict(now.get("settings") or {})
    for key in sorted((set(a) | set(b)) - set(ORCHESTRATION)):
        if a.get(key) != b.get(key):
            out.append(f"setting {key}: {a.get(key)!r} -> {b.get(key)!r}")
    files_a, files_b = dict(frozen.get("sources") or {}), dict(now.get("sources") or {})
    out += [f"{f} changed" for f in sorted(set(files_a) | set(files_b)) if files_a.get(f) != files_b.get(f)]
    for section in ("lane", "profile", "thresholds", "weights", "licence_policy"):
        if canonical_json(frozen.get(section)) != canonical_json(now.get(section)) and not out:
            out.append(f"the resolved {section} differs")
    return out


@dataclass(frozen=True)
class Snapshot:
    doc: dict[str, Any]
    sha256: str
    path: Path

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Snapshot:
        """The snapshot at `path`; LaneError(config_invalid) when it is missing or not one."""
        p = Path(path)
        try:
            data = p.read_bytes()
            doc = read_json(p)
        except (OSError, ValueError) as exc:
            raise LaneError("config_invalid", f"configuration snapshot {p}: {type(exc).__name__}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise LaneError("config_invalid", f"{p} is not a configuration snapshot ({SCHEMA})")
        return cls(doc, sha256_bytes(data), p)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.doc.get("settings") or {})

    def section(self, name: str) -> dict[str, Any]:
        """A resolved section (a deep copy); LaneError(config_invalid) when it recorded a problem."""
        value = self.doc.get(name)
        if not isinstance(value, dict) or "problem" in value:
            why = value.get("problem") if isinstance(value, dict) else "missing"
            raise LaneError("config_invalid", f"the run's configuration snapshot has no {name}: {why}")
        return copy.deepcopy(value)


def path_of(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / SNAPSHOT_FILE


def freeze(root: str | os.PathLike[str], run_dir: str | os.PathLike[str], run_id: str,
           settings: Mapping[str, Any]) -> tuple[Snapshot, list[str]]:
    """Write the run's snapshot (and the weights manifest's byte copy) if it has none yet; with one,
    the differences between it and what `settings` resolve to now (for a resume to refuse)."""
    rootp, path = Path(root).resolve(), path_of(run_dir)
    doc = build(rootp, run_id, settings)
    if path.exists():
        frozen = Snapshot.read(path)
        return frozen, differences(frozen.doc, doc)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = encode(doc)
    tmp = path.with_name(f".{SNAPSHOT_FILE}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    weights = doc.get("weights") or {}
    if weights.get("sha256"):
        from .paths import resolve_input

        shutil.copyfile(resolve_input(str(weights["path"]), rootp), Path(run_dir) / MANIFEST_COPY)
    return Snapshot(doc, sha256_bytes(data), path), []


def frozen_manifest(run_dir: str | os.PathLike[str], snap: Snapshot) -> Path | None:
    """The weights manifest's copy the stages load, when it still is the one the snapshot pins."""
    copy_path = Path(run_dir) / MANIFEST_COPY
    sha = (snap.doc.get("weights") or {}).get("sha256")
    return copy_path if sha and copy_path.is_file() and sha256_file(copy_path) == sha else None


def frozen_profile(snapshot: str | os.PathLike[str] | None, name: str, root: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's profile: from its snapshot when there is one, else the live profile file (a notebook
    opened by hand)."""
    if snapshot:
        return Snapshot.read(snapshot).section("profile")
    from .config import load_profile

    return load_profile(name, root)


def frozen_lane(snapshot: str | os.PathLike[str] | None, name: str, root: str | os.PathLike[str]) -> Any:
    """The run's lane (lane.core.lanes.LaneSpec): from its snapshot when there is one, else live."""
    from .lanes import LaneSpec, load_lane

    if not snapshot:
        return load_lane(root, name)
    lane = Snapshot.read(snapshot).section("lane")
    return LaneSpec(**{**lane, "stages": tuple(lane["stages"]), "chain": tuple(lane.get("chain") or ())})


def frozen_policy(snapshot: str | os.PathLike[str] | None, root: str | os.PathLike[str]) -> Any:
    """The run's licence policy (lane.core.licenses.LicensePolicy): from its snapshot, else live."""
    from .licenses import LicensePolicy

    if not snapshot:
        return LicensePolicy.load(root)
    pol = Snapshot.read(snapshot).section("licence_policy")
    return LicensePolicy(tuple(pol["allow"]), tuple(pol["deny"]), tuple(pol.get("allow_exceptions") or ()))


def drift(root: str | os.PathLike[str], snap: Snapshot) -> list[str]:
    """Config files that differ now from the ones the run froze (changed, new or gone), by name."""
    try:
        now = sources(root, snap.settings)
    except LaneError as err:
        return [f"the configuration no longer resolves ({err.code}: {err.detail})"]
    was = dict(snap.doc.get("sources") or {})
    return [f"{f} ({'new' if f not in was else 'gone' if f not in now else 'changed'})"
            for f in sorted(set(was) | set(now)) if was.get(f) != now.get(f)]
