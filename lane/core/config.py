"""Settings and profiles.

Settings come from four sources, each in one place, with a fixed precedence:

    command-line flags  >  environment (the seed's variables)  >  config file  >  defaults

`resolve_settings` records which source gave every value (`Settings.sources`), so a report or a
test can show it. Profiles (configs/profiles/*.yaml) hold the stage knobs; each one names a base
with `extends:` and overrides only what differs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .reasons import LaneError

DEFAULT_CONFIG = "configs/lane.yaml"
CONFIG_SCHEMA = "lane_config.schema.json"
STAGES = ("verify", "train", "export", "validate")
BACKENDS = ("local", "local_docker", "managed_job")

# environment variable -> setting (the seed's names first)
ENV_VARS: dict[str, str] = {
    "TRAIN_BACKEND": "backend",
    "TRAIN_LANE": "lane",
    "AUDIO_PATH": "audio",
    "EXPECTED_HEAD": "expected_head",
    "VOICE_PROFILE_ID": "voice_profile_id",
    "LANE_PROFILE": "profile",
    "LANE_TRANSCRIPT": "transcript",
    "LANE_INPUT_FORMAT": "input_format",
    "LANE_WEIGHTS_MANIFEST": "weights_manifest",
    "LANE_CELL_TIMEOUT_S": "cell_timeout_s",
    "LANE_REQUIRE_CLEAN_TREE": "require_clean_tree",
    "LANE_ALLOW_FROM_SCRATCH": "allow_from_scratch",
    "LANE_KERNEL": "kernel_name",
    "LANE_CONSENT": "consent",
}


@dataclass
class Settings:
    lane: str = "tts_prod_train_nemo"
    backend: str = "local"
    profile: str = "demo"
    audio: str | None = "data/demo/longform.flac"
    transcript: str | None = None
    input_format: str = "auto"
    expected_head: str | None = None
    voice_profile_id: str = "demo_voice"
    weights_manifest: str = "configs/voice/weights-manifest.example.json"
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    cell_timeout_s: int = 3600
    require_clean_tree: bool = False
    allow_from_scratch: bool = False
    kernel_name: str | None = None
    consent: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sources")
        return d


_FIELD_TYPES = {f.name: f.type for f in fields(Settings) if f.name != "sources"}


def _coerce(name: str, value: Any) -> Any:
    kind = str(_FIELD_TYPES[name])
    if value is None:
        return None
    if "bool" in kind:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise LaneError("config_invalid", f"{name}: expected a boolean, got {value!r}")
    if "int" in kind:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise LaneError("config_invalid", f"{name}: expected an integer, got {value!r}") from None
    if "list" in kind:
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(value, list):
            raise LaneError("config_invalid", f"{name}: expected a list, got {value!r}")
        return [str(v) for v in value]
    return str(value)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise LaneError("config_invalid", f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise LaneError("config_invalid", f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise LaneError("config_invalid", f"{path}: top level must be a mapping")
    return data


def lane_config_file(root: str | os.PathLike[str], config_path: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None) -> Path | None:
    """The lane config file: `--config`, else LANE_CONFIG, else configs/lane.yaml in the workspace.
    A relative path is taken as given when it exists, else under `root`. None when nothing is named
    and the default is absent, or when LANE_CONFIG names a missing file; an explicit `--config` is
    returned even when missing, so loading it fails with config_invalid."""
    env = os.environ if env is None else env
    given = config_path or env.get("LANE_CONFIG")
    if given:
        p = Path(given)
        p = p if p.is_absolute() or p.exists() else Path(root) / p
        return p if p.exists() or config_path else None
    p = Path(root) / DEFAULT_CONFIG
    return p if p.exists() else None


def lane_section(root: str | os.PathLike[str], name: str, config_path: str | os.PathLike[str] | None = None,
                 env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A top-level section of the lane config file other than `settings` ({} when absent)."""
    cfg = lane_config_file(root, config_path, env)
    if cfg is None or not cfg.exists():
        return {}
    section = load_yaml(cfg).get(name) or {}
    if not isinstance(section, Mapping):
        raise LaneError("config_invalid", f"{cfg}: {name!r} must be a mapping")
    return dict(section)


def validate_config_file(path: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """The config file checked against configs/schemas/lane_config.schema.json (config_invalid)."""
    import jsonschema

    from .fsutil import read_json
    from .paths import config_file

    data = load_yaml(path)
    validator = jsonschema.Draft202012Validator(read_json(config_file(root, "schemas", CONFIG_SCHEMA)))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise LaneError("config_invalid", f"{path}: {where}: {errors[0].message}")
    return data


def resolve_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                     config_path: str | os.PathLike[str] | None = None,
                     root: str | os.PathLike[str] = ".") -> Settings:
    """Merge defaults < config file < environment < flags. `None` flags mean "not given"."""
    env = os.environ if env is None else env
    rootp = Path(root)
    settings = Settings()
    sources = {name: "default" for name in _FIELD_TYPES}

    cfg_file = lane_config_file(rootp, config_path, env)
    if cfg_file is not None:
        data = load_yaml(cfg_file)
        section = data.get("settings", {}) or {}
        if not isinstance(section, dict):
            raise LaneError("config_invalid", f"{cfg_file}: 'settings' must be a mapping")
        for key, value in section.items():
            if key not in _FIELD_TYPES:
                raise LaneError("config_invalid", f"{cfg_file}: unknown setting {key!r}")
            setattr(settings, key, _coerce(key, value))
            sources[key] = f"config:{cfg_file.name}"

    for var, key in ENV_VARS.items():
        if var in env and env[var] != "":
            setattr(settings, key, _coerce(key, env[var]))
            sources[key] = f"env:{var}"

    for key, value in (flags or {}).items():
        if value is None:
            continue
        if key not in _FIELD_TYPES:
            raise LaneError("config_invalid", f"unknown setting {key!r}")
        setattr(settings, key, _coerce(key, value))
        sources[key] = "flag"

    from .ids import check_id

    check_id("lane", settings.lane)
    check_id("profile", settings.profile)
    check_id("voice profile id", settings.voice_profile_id)
    bad = [s for s in settings.stages if s not in STAGES]
    if bad:
        raise LaneError("config_invalid", f"unknown stage(s) {bad}; known: {list(STAGES)}")
    if settings.cell_timeout_s <= 0:
        raise LaneError("config_invalid", "cell_timeout_s must be positive")
    settings.sources = sources
    return settings


# ------------------------------------------------------------------------------------------ profiles
def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_profile(name: str, root: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """configs/profiles/<name>.yaml merged over the chain of profiles it `extends`."""
    from .ids import check_id

    pdir = Path(root) / "configs" / "profiles"
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = name
    while current:
        if current in seen:
            raise LaneError("config_invalid", f"profile cycle through {current!r}")
        seen.add(current)
        path = pdir / f"{check_id('profile', current)}.yaml"
        if not path.exists():
            known = sorted(p.stem for p in pdir.glob("*.yaml"))
            raise LaneError("config_invalid", f"unknown profile {current!r}; known: {known}")
        data = load_yaml(path)
        chain.append(data)
        current = data.pop("extends", None)
    merged: dict[str, Any] = {}
    for data in reversed(chain):
        merged = deep_merge(merged, data)
    merged["name"] = name
    return merged
