"""Settings are declared once (lane.core.config.Settings): the copies that must stay outside Python (the
notebooks' parameters cells, the config schema's `settings` section, the README table) are checked
against the declarations, and what is derived (environment variables, `lane run` options, the inner
runner's arguments, the job API's options) follows them. Profiles are found like every config file."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from lane.backends.base import inner_args
from lane.cli import app
from lane.core.config import (
    ENV_VARS,
    SETTINGS,
    Settings,
    load_profile,
    resolve_settings,
    settings_schema,
)
from lane.core.reasons import LaneError
from lane.jobs.requests import OPTIONS
from lane.stages.params import StageParams

REPO = Path(__file__).resolve().parents[2]
RUN_PARAMS = {"root": "..", "run_id": None, "run_dir": None, "resume": False}  # `stage` is the notebook's own


def parameters_cell(nb: Path) -> dict[str, Any]:
    cells = json.loads(nb.read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        out[target.id] = ast.literal_eval(node.value)
    return out


@pytest.mark.parametrize("nb", sorted((REPO / "notebooks").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_notebook_parameters_cell_lists_exactly_the_settings(nb: Path) -> None:
    """Same names as StageParams (the settings plus the run's own), and the declared defaults, so a
    notebook opened by hand in Jupyter or Colab runs the demo."""
    cell = parameters_cell(nb)
    names = {f.name for f in dataclasses.fields(StageParams) if f.name != "sources"}
    assert set(cell) == names, (sorted(set(cell) - names), sorted(names - set(cell)))
    assert cell["stage"] == nb.stem
    assert {k: cell[k] for k in RUN_PARAMS} == RUN_PARAMS
    assert {s.name: cell[s.name] for s in SETTINGS} == {s.name: s.default for s in SETTINGS}


def test_the_config_schema_settings_section_is_the_declared_one() -> None:
    schema = json.loads((REPO / "configs" / "schemas" / "lane_config.schema.json").read_text())
    assert schema["properties"]["settings"] == settings_schema()


def test_the_readme_settings_table_is_generated() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "sync_readme.py"), "--check"], capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr


def test_environment_run_options_and_job_options_follow_the_declarations() -> None:
    assert {s.env: s.name for s in SETTINGS if s.env} == ENV_VARS
    for seed in ("TRAIN_BACKEND", "TRAIN_LANE", "AUDIO_PATH", "EXPECTED_HEAD", "VOICE_PROFILE_ID"):
        assert seed in ENV_VARS  # the seed's variables keep working
    group: Any = typer.main.get_command(app)
    options = {p.name: p for p in group.commands["run"].params}
    flagged = {s.name: s for s in SETTINGS if s.flag}
    assert set(options) == set(flagged) | {"resume", "detach", "config", "root"}
    for name, spec in flagged.items():
        assert options[name].opts == [spec.flag]
        assert spec.env is None or f"(env {spec.env})" in (options[name].help or "")
    assert set(OPTIONS) == {s.name for s in SETTINGS if s.meta.job}
    assert "weights_manifest" not in OPTIONS and "audio" not in OPTIONS  # the audio is the request's own field


def test_no_manifest_travels_to_a_runner_started_elsewhere(tmp_path: Path) -> None:
    """weights_manifest is str | None everywhere: a config file's null (no manifest) is not replaced by
    the default inside a container or Slurm job, and `--weights-manifest ""` means none."""
    cfg = tmp_path / "lane.yaml"
    cfg.write_text(yaml.safe_dump({"settings": {"weights_manifest": None, "audio": None}}))
    outside = resolve_settings({}, {}, cfg, tmp_path)
    assert (outside.weights_manifest, outside.audio) == (None, None)
    args = inner_args(outside, tmp_path, resume=False, run_id="RID")
    assert args[args.index("--weights-manifest") + 1] == "" and args[args.index("--audio") + 1] == ""
    group: Any = typer.main.get_command(app)
    ctx = group.commands["run"].make_context("run", args[1:])
    flags = {k: v for k, v in ctx.params.items() if k not in ("resume", "config", "root", "detach")}
    inside = resolve_settings(flags, {}, None, tmp_path)
    assert inside.as_dict() == outside.as_dict()
    assert resolve_settings({"weights_manifest": ""}, {}, None, tmp_path).weights_manifest is None


def test_load_profile_finds_the_packaged_profiles_without_a_configs_copy(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    assert load_profile("demo", bare) == load_profile("demo", REPO)
    assert load_profile("production", bare)["name"] == "production"
    own = tmp_path / "own"
    (own / "configs" / "profiles").mkdir(parents=True)
    (own / "configs" / "profiles" / "mine.yaml").write_text(yaml.safe_dump({"extends": "demo", "note": "mine"}))
    mine = load_profile("mine", own)  # the workspace's own profile, extending a packaged one
    assert mine["note"] == "mine" and mine["train"] == load_profile("demo", REPO)["train"]
    with pytest.raises(LaneError) as err:
        load_profile("nope", own)
    assert err.value.code == "config_invalid" and "'demo'" in err.value.detail and "'mine'" in err.value.detail


def test_settings_defaults_are_the_declarations() -> None:
    s = Settings()
    assert {spec.name: getattr(s, spec.name) for spec in SETTINGS} == {spec.name: spec.default for spec in SETTINGS}
    assert Settings().stages is not Settings().stages  # each instance its own list
