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

from .ids import IdKind, check_id
from .reasons import LaneError

DEFAULT_CONFIG = "configs/lane.yaml"
CONFIG_SCHEMA = "lane_config.schema.json"
STAGES = ("verify", "train", "export", "validate")
BACKENDS = ("local", "local_docker", "managed_job")
INPUT_FORMATS = ("longform", "longform_transcript", "ljspeech", "nemo_manifest")  # what `auto` detects among


def setting(default: Any, *, help: str, env: str | None = None, flag: str | None = None, job: bool = False,
            path: bool = False, ident: IdKind | None = None, choices: tuple[str, ...] = (),
            pattern: str | None = None, minimum: int | None = None) -> Any:
    """One setting's declaration (its type is the field's annotation): default, environment variable,
    `lane run` flag, help, whether a job API request may set it (`job`), whether it names an input
    file (`path`: anchored to the workspace, checked under the data root in requests), and what a
    valid value is (`ident`: a lane.core.ids identifier; `choices`; `pattern`, matched whole; `minimum`).
    The config schema's `settings` section is generated from the same declarations (settings_schema)."""
    meta = {"setting": SettingMeta(help, env, flag, job, path, ident, choices, pattern, minimum)}
    if isinstance(default, tuple):  # a list setting: each instance gets its own list
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class SettingMeta:
    help: str
    env: str | None
    flag: str | None
    job: bool
    path: bool
    ident: IdKind | None
    choices: tuple[str, ...]
    pattern: str | None
    minimum: int | None


@dataclass
class Settings:
    """Every setting of a run, each declared once, here: its type, default, environment variable (the
    seed's names first), `lane run` flag and help. ENV_VARS, the `run` options, the arguments of a
    runner started elsewhere (lane.backends.base.inner_args), the notebooks' parameters
    (lane.stages.params.StageParams) and the job API's options (lane.jobs) are derived from it."""

    lane: str = setting("tts_prod_train_nemo", env="TRAIN_LANE", flag="--lane", ident="lane",
                        help="Lane id from configs/lanes/")
    backend: str = setting("local", env="TRAIN_BACKEND", flag="--backend", choices=BACKENDS,
                           help="local | local_docker | managed_job")
    profile: str = setting("demo", env="LANE_PROFILE", flag="--profile", job=True, ident="profile",
                           help="Profile from configs/profiles/ (demo, production)")
    audio: str | None = setting("data/demo/longform.flac", env="AUDIO_PATH", flag="--audio", path=True,
                                help="Recording, folder, LJSpeech dir or NeMo manifest")
    transcript: str | None = setting(None, env="LANE_TRANSCRIPT", flag="--transcript", job=True, path=True,
                                     help="Plain-text transcript of the recording(s) (none: X.txt beside X.flac, else ASR)")
    input_format: str = setting("auto", env="LANE_INPUT_FORMAT", flag="--input-format", job=True,
                                choices=("auto", *INPUT_FORMATS), help="auto | " + " | ".join(INPUT_FORMATS))
    expected_head: str | None = setting(None, env="EXPECTED_HEAD", flag="--expected-head", job=True,
                                        pattern="[0-9a-f]{7,40}", help="Required git HEAD sha")
    voice_profile_id: str = setting("demo_voice", env="VOICE_PROFILE_ID", flag="--voice-profile-id", job=True,
                                    ident="voice profile id", help="Bundle id under bundles/")
    weights_manifest: str | None = setting("configs/voice/weights-manifest.example.json", env="LANE_WEIGHTS_MANIFEST",
                                           flag="--weights-manifest", path=True,
                                           help="Weights manifest JSON (empty: none, which verify refuses)")
    stages: list[str] = setting(STAGES, flag="--stages", job=True, choices=STAGES,  # noqa: RUF009 (a default_factory)
                                help="Comma-separated subset of " + ",".join(STAGES))
    cell_timeout_s: int = setting(3600, env="LANE_CELL_TIMEOUT_S", flag="--cell-timeout-s", minimum=1,
                                  help="Per-cell timeout in seconds")
    require_clean_tree: bool = setting(False, env="LANE_REQUIRE_CLEAN_TREE",
                                       help="Refuse a checkout with uncommitted changes")
    allow_from_scratch: bool = setting(False, env="LANE_ALLOW_FROM_SCRATCH", flag="--allow-from-scratch", job=True,
                                       help="Production without base weights (not promotable)")
    kernel_name: str | None = setting(None, env="LANE_KERNEL", help="Jupyter kernel for the stage notebooks")
    consent: str | None = setting(None, env="LANE_CONSENT", flag="--consent", job=True, path=True,
                                  help="Consent record (default: the newest accepted spoken consent for the voice in the ledger)")
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sources")
        return d


@dataclass(frozen=True)
class SettingSpec:
    """A setting as its declaration in `Settings` says: name, type, default and SettingMeta."""

    name: str
    kind: str  # str | optional | int | bool | list
    default: Any
    meta: SettingMeta

    @property
    def env(self) -> str | None:
        return self.meta.env

    @property
    def flag(self) -> str | None:
        return self.meta.flag


_KINDS = {"str": "str", "str | None": "optional", "int": "int", "bool": "bool", "list[str]": "list"}


def _specs() -> tuple[SettingSpec, ...]:
    out = []
    for f in fields(Settings):
        if "setting" in f.metadata:
            default = f.default_factory() if callable(f.default_factory) else f.default
            out.append(SettingSpec(f.name, _KINDS[str(f.type)], default, f.metadata["setting"]))
    return tuple(out)


SETTINGS: tuple[SettingSpec, ...] = _specs()
SPEC: dict[str, SettingSpec] = {s.name: s for s in SETTINGS}
# environment variable -> setting
ENV_VARS: dict[str, str] = {s.env: s.name for s in SETTINGS if s.env}


def _coerce(name: str, value: Any) -> Any:
    kind = SPEC[name].kind
    if value is None:
        return None
    if kind == "optional" and value == "":
        return None  # `--weights-manifest ""`: none, as a config file's null says
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("1", "true", "yes", "on"):
            return True
        if text in ("0", "false", "no", "off", ""):
            return False
        raise LaneError("config_invalid", f"{name}: expected a boolean, got {value!r}")
    if kind == "int":
        try:
            return int(value)
        except (TypeError, ValueError):
            raise LaneError("config_invalid", f"{name}: expected an integer, got {value!r}") from None
    if kind == "list":
        if isinstance(value, str):
            return [s.strip() for s in value.split(",") if s.strip()]
        if not isinstance(value, list):
            raise LaneError("config_invalid", f"{name}: expected a list, got {value!r}")
        return [str(v) for v in value]
    return str(value)


def settings_schema() -> dict[str, Any]:
    """The JSON Schema of the config file's `settings` section, from the declarations (the copy in
    configs/schemas/lane_config.schema.json is checked against it by a test)."""
    from .ids import PATTERN

    types = {"str": "string", "optional": ["string", "null"], "int": "integer", "bool": "boolean"}
    props: dict[str, Any] = {}
    for spec in SETTINGS:
        meta = spec.meta
        if spec.kind == "list":
            props[spec.name] = {"type": "array", "minItems": 1, "uniqueItems": True, "items": {"enum": list(meta.choices)}}
            continue
        prop: dict[str, Any] = {"enum": list(meta.choices)} if meta.choices else {"type": types[spec.kind]}
        if meta.ident or meta.pattern:
            prop["pattern"] = PATTERN.pattern if meta.ident else f"^{meta.pattern}$"
        if meta.minimum is not None:
            prop["minimum"] = meta.minimum
        props[spec.name] = prop
    return {"type": "object", "additionalProperties": False, "properties": props}


def settings_table_markdown() -> str:
    """The settings as the README's Markdown table (scripts/sync_readme.py embeds exactly this)."""
    lines = ["| Flag | Environment | Default | Setting |", "|---|---|---|---|"]
    for spec in SETTINGS:
        default = spec.default
        shown = "none" if default is None else "off" if default is False else \
            ",".join(default) if isinstance(default, list) else str(default)
        flag, env = (f"`{x}`" if x else "—" for x in (spec.flag, spec.env))
        help_text = spec.meta.help.replace("|", "\\|")  # a bare | would end the table cell
        lines.append(f"| {flag} | {env} | `{shown}` | {help_text} |")
    return "\n".join(lines) + "\n"


def settings_flags(settings: Settings, skip: tuple[str, ...] = ()) -> list[str]:
    """Every setting that has a flag (but those in `skip`), as `lane run` flags reproducing `settings`
    (an optional setting that is None while its default is not travels as an empty value)."""
    out: list[str] = []
    for spec in SETTINGS:
        value = getattr(settings, spec.name)
        if spec.flag is None or spec.name in skip or (value is None and spec.default is None):
            continue
        if spec.kind == "bool":
            out += [spec.flag] if value else []
        elif spec.kind == "list":
            out += [spec.flag, ",".join(value)]
        else:
            out += [spec.flag, "" if value is None else str(value)]
    return out


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
    sources = {name: "default" for name in SPEC}

    cfg_file = lane_config_file(rootp, config_path, env)
    if cfg_file is not None:
        data = load_yaml(cfg_file)
        section = data.get("settings", {}) or {}
        if not isinstance(section, dict):
            raise LaneError("config_invalid", f"{cfg_file}: 'settings' must be a mapping")
        for key, value in section.items():
            if key not in SPEC:
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
        if key not in SPEC:
            raise LaneError("config_invalid", f"unknown setting {key!r}")
        setattr(settings, key, _coerce(key, value))
        sources[key] = "flag"

    for spec in SETTINGS:
        if spec.meta.ident:
            check_id(spec.meta.ident, getattr(settings, spec.name))
    bad = [s for s in settings.stages if s not in STAGES]
    if bad:
        raise LaneError("config_invalid", f"unknown stage(s) {bad}; known: {list(STAGES)}")
    for spec in SETTINGS:
        if spec.meta.minimum is not None and getattr(settings, spec.name) < spec.meta.minimum:
            raise LaneError("config_invalid", f"{spec.name} must be at least {spec.meta.minimum}")
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
    """configs/profiles/<name>.yaml merged over the chain of profiles it `extends`; each file is looked
    up through lane.core.paths.config_file (the workspace's copy, else the packaged one)."""
    from .paths import PACKAGE_CONFIGS, config_file

    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = name
    while current:
        if current in seen:
            raise LaneError("config_invalid", f"profile cycle through {current!r}")
        seen.add(current)
        path = config_file(root, "profiles", f"{check_id('profile', current)}.yaml")
        if not path.exists():
            known = sorted({p.stem for d in (Path(root) / "configs", PACKAGE_CONFIGS) for p in (d / "profiles").glob("*.yaml")})
            raise LaneError("config_invalid", f"unknown profile {current!r}; known: {known}")
        data = load_yaml(path)
        chain.append(data)
        current = data.pop("extends", None)
    merged: dict[str, Any] = {}
    for data in reversed(chain):
        merged = deep_merge(merged, data)
    merged["name"] = name
    return merged
