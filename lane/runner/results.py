"""Reading what a stage left behind: its notebook (workspace or packaged) and its result file,
validated against configs/schemas/stage_result.schema.json."""

from __future__ import annotations

from pathlib import Path

from ..core.fsutil import read_json, rel
from ..core.paths import PACKAGE_ROOT, config_file, notebook_file
from ..core.reasons import LaneError
from ..core.stage import StageResult, result_path


def find_notebook(stage: str, root: Path) -> Path:
    path = notebook_file(root, stage)
    if path is None:
        raise LaneError("config_invalid", f"no notebook for stage {stage!r} in {root / 'notebooks'} or "
                        f"{PACKAGE_ROOT / 'notebooks'}")
    return path


def schema_path(root: Path) -> Path:
    path = config_file(root, "schemas", "stage_result.schema.json")
    if not path.is_file():
        raise LaneError("config_invalid", "configs/schemas/stage_result.schema.json not found")
    return path


def load_result(run_dir: Path, stage: str, root: Path) -> tuple[StageResult | None, str]:
    """(result, problem): the validated stage result, or None and why it is missing or invalid."""
    path = result_path(run_dir, stage)
    if not path.is_file():
        return None, f"{rel(path, root)} was not written"
    try:
        data = read_json(path)
    except ValueError as exc:
        return None, f"{rel(path, root)} is not valid JSON ({exc})"
    import jsonschema

    schema = read_json(schema_path(root))
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "<root>"
        return None, f"{rel(path, root)} breaks the schema at {where}: {err.message}"
    if data.get("stage") != stage:
        return None, f"{rel(path, root)} is for stage {data.get('stage')!r}, expected {stage!r}"
    if data.get("run_id") != run_dir.name:
        return None, f"{rel(path, root)} is for run {data.get('run_id')!r}, expected {run_dir.name!r}"
    result: StageResult = data  # it keeps the schema (checked above)
    return result, ""
