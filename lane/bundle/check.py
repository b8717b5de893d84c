"""Checking a voice bundle: the manifest against configs/schemas/voice_bundle.schema.json, every listed
file's sha256 and size, no unlisted files, every model file the manifest names is listed, and the
validation record's hash. Also where validate records its results (`write_validation`) without
disturbing the other hashes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.fsutil import atomic_write_json, sha256_file
from ..core.reasons import LaneError
from .manifest import MANIFEST, BundleManifest

UNLISTED = ("manifest.json", "validation.json", "provenance.dsse.json")  # each covers the listed files


@dataclass
class BundleCheck:
    ok: bool
    problems: list[str] = field(default_factory=list)


def validate_voice_bundle(bundle_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> BundleCheck:
    """Check the manifest against its schema, every listed file's sha256 and size, that no unlisted
    file is present, that every model file the manifest names is listed, and the validation record."""
    bdir = Path(bundle_dir)
    mpath = bdir / MANIFEST
    if not mpath.exists():
        return BundleCheck(False, [f"{mpath} is missing"])
    try:
        bm = BundleManifest.read(bdir)
    except ValueError as exc:
        return BundleCheck(False, [f"manifest.json is not JSON: {exc}"])
    problems = bm.problems(root)
    if problems:
        return BundleCheck(False, problems)
    manifest, files = bm.data, bm.files
    for name, meta in sorted(files.items()):
        p = bdir / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"{name}: path escapes the bundle")
            continue
        if not p.is_file():
            problems.append(f"{name}: listed but missing")
            continue
        size = p.stat().st_size
        if size != meta["bytes"]:
            problems.append(f"{name}: {size} bytes, manifest says {meta['bytes']}")
        digest = sha256_file(p)
        if digest != meta["sha256"]:
            problems.append(f"{name}: sha256 {digest[:12]}... does not match the manifest ({meta['sha256'][:12]}...)")
    present = {str(p.relative_to(bdir)) for p in bdir.rglob("*") if p.is_file()}
    for extra in sorted(present - set(files) - set(UNLISTED)):
        problems.append(f"{extra}: present but not listed in the manifest")
    referenced = [manifest["tokenizer"]["path"], manifest["models"]["spectrogram"]["onnx"]]
    voc = manifest["models"]["vocoder"]
    if voc["type"] == "hifigan":
        referenced.append(voc["onnx"])
    for key in ("nemo",):
        for part in (manifest["models"]["spectrogram"], voc):
            if part.get(key):
                referenced.append(part[key])
    speaks = manifest["tokenizer"].get("speaks") or {}
    referenced += [f["path"] for f in (speaks.get("dictionary"), speaks.get("heteronyms"))
                   if isinstance(f, dict) and "path" in f]
    for name in referenced:
        if name not in files:
            problems.append(f"{name}: named by the manifest's models/tokenizer but not listed in files")
    val = manifest.get("validation")
    if val is not None:
        vp = bdir / val["path"]
        if not vp.is_file():
            problems.append(f"{val['path']}: validation record missing")
        elif sha256_file(vp) != val["sha256"]:
            problems.append(f"{val['path']}: sha256 does not match the manifest's validation record")
    return BundleCheck(not problems, problems)


def require_valid(bundle_dir: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> None:
    check = validate_voice_bundle(bundle_dir, root)
    if not check.ok:
        raise LaneError("bundle_invalid", f"{bundle_dir}: {check.problems[0]}"
                        + (f" (+{len(check.problems) - 1} more)" if len(check.problems) > 1 else ""))


def write_validation(bundle_dir: str | os.PathLike[str], validation: Mapping[str, Any]) -> Path:
    """Write validation.json beside manifest.json and record its hash in the manifest's `validation`
    section. The files section is untouched, so every other hash stays valid."""
    bdir = Path(bundle_dir)
    bm = BundleManifest.read(bdir)
    vpath = atomic_write_json(bdir / "validation.json", dict(validation))
    bm.data["validation"] = {
        "path": "validation.json",
        "sha256": sha256_file(vpath),
        "bytes": vpath.stat().st_size,
        "ok": bool(validation.get("ok")) if "ok" in validation else None,
        "run_id": validation.get("run_id"),
    }
    bm.save()
    return vpath
