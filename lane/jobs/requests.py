"""A job request, checked before anything is written, and turned into `lane run` flags.

What is accepted comes from where it is declared, not from a copy:
- job types: the lanes of the registry (configs/lanes/) that run the primary lane (it and its aliases,
  lane.core.lanes), else unknown_lane;
- options: the settings declared `job=True` in lane.core.config.Settings, with their flags, and what
  a valid value is (identifiers, choices such as the input formats and stages, patterns);
- paths (the audio and every setting declared `path=True`) must lie under the data root
  (`jobs.data_root`, symlinks resolved), else config_invalid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.config import SETTINGS, SettingSpec
from ..core.ids import check_id, within
from ..core.reasons import LaneError

OPTIONS: dict[str, SettingSpec] = {spec.name: spec for spec in SETTINGS if spec.meta.job}


def job_types(root: Path) -> list[str]:
    """The lanes a job may name: those that run the primary lane."""
    from ..core.lanes import all_lanes

    return [str(data["id"]) for data, spec in all_lanes(root) if spec.status == "primary"]


def inside(root: Path, data_root: Path, what: str, value: Any) -> Path:
    """A request path (relative to the workspace, or absolute) that must lie under the data root."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise LaneError("config_invalid", f"{what}: expected a path, got {value!r}")
    path = Path(value) if Path(value).is_absolute() else root / value
    try:
        return within(data_root, str(path), kind="data path").resolve()
    except LaneError as err:
        raise LaneError("config_invalid", f"{what} {value!r} is outside the data root {data_root} "
                        f"(jobs.data_root): {err.detail}") from None


def option_flags(spec: SettingSpec, value: Any, path: Path | None) -> list[str]:
    """One request option as `lane run` flags, its value checked against its declaration."""
    flag = spec.flag
    assert flag is not None, spec.name
    meta = spec.meta
    if spec.kind == "bool":
        return [flag] if value is True else []
    if path is not None:
        return [flag, str(path)]
    if spec.kind == "list":
        names = [str(n).strip() for n in (value if isinstance(value, list) else str(value).split(","))]
        if not names or any(n not in meta.choices for n in names):
            raise LaneError("config_invalid", f"{spec.name} {value!r}; known: {', '.join(meta.choices)}")
        return [flag, ",".join(names)]
    if meta.ident:
        return [flag, check_id(meta.ident, value)]
    if meta.choices and value not in meta.choices:
        raise LaneError("config_invalid", f"{spec.name} {value!r}; accepted: {', '.join(meta.choices)}")
    if meta.pattern and not (isinstance(value, str) and re.fullmatch(meta.pattern, value)):
        raise LaneError("config_invalid", f"{spec.name} {value!r} is not valid ({meta.help})")
    return [flag, str(value)]


def request_flags(root: Path, data_root: Path, job_type: str, audio_path: str,
                  options: Mapping[str, Any]) -> list[str]:
    """The request, checked, as `lane run` flags (LaneError with its reason code when refused)."""
    accepted = job_types(root)
    if check_id("lane", job_type) not in accepted:
        raise LaneError("unknown_lane", f"job_type {job_type!r}; accepted: {', '.join(accepted)}")
    audio = inside(root, data_root, "audio_path", audio_path)
    if not audio.exists():
        raise LaneError("missing_audio_path", f"audio_path {audio_path!r} does not exist")
    out = ["--lane", job_type, "--audio", str(audio)]
    for key, value in options.items():
        spec = OPTIONS.get(key)
        if spec is None:
            raise LaneError("config_invalid", f"unknown job option {key!r}; accepted: {', '.join(OPTIONS)}")
        if value is None or value is False:
            continue
        out += option_flags(spec, value, inside(root, data_root, key, value) if spec.meta.path else None)
    return out
