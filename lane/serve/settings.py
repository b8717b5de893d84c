"""What `lane serve` runs with: flags > environment > the `serve` section of configs/lane.yaml > defaults.

    serve:
      max_inflight: 4            # synthesis requests admitted at once (more: 503 + Retry-After)
      workers: 1                 # synthesis threads (each runs onnxruntime with `threads` intra-op threads)
      threads: 2                 # onnxruntime intra-op threads per synthesis
      request_timeout_s: 60      # per request (a streamed answer stops at the limit)
      max_body_bytes: 65536
      max_text_chars: 5000
      rescan_s: 5                # how often the live voices are looked at again (a new promotion shows up)
      allowed_hosts: []          # Host names accepted besides loopback and the bound host
      allowed_origins: []        # Origins allowed to POST besides the server's own
      token_file: null           # the bearer token of the training endpoints (or LANE_SERVE_TOKEN)

Pure data: no FastAPI here, so the CLI can build settings without importing the server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core.reasons import LaneError

TOKEN_ENV = "LANE_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServeSettings:
    root: Path = Path(".")
    source: Path | None = None  # a bundles dir (every live voice) or one bundle dir; None: <root>/bundles
    allow_unpromoted: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    max_inflight: int = 4
    workers: int = 1
    threads: int = 2
    request_timeout_s: float = 60.0
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 5000
    rescan_s: float = 5.0
    retry_after_s: int = 1
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    token: str | None = field(default=None, repr=False)
    wyoming: str | None = None

    @property
    def bundles(self) -> Path:
        return Path(self.source) if self.source is not None else Path(self.root) / "bundles"


NUMBERS = {"max_inflight": int, "workers": int, "threads": int, "request_timeout_s": float, "max_body_bytes": int,
           "max_text_chars": int, "rescan_s": float, "retry_after_s": int}
LISTS = ("allowed_hosts", "allowed_origins")


def _from_config(section: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key in NUMBERS:
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise LaneError("config_invalid", f"serve.{key} must be a positive number, not {value!r}")
            out[key] = NUMBERS[key](value)
        elif key in LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise LaneError("config_invalid", f"serve.{key} must be a list of strings")
            out[key] = tuple(value)
        elif key != "token_file":
            known = ", ".join([*NUMBERS, *LISTS, "token_file"])
            raise LaneError("config_invalid", f"unknown key serve.{key} (known: {known})")
    return out


def read_token(root: Path, section: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """The training endpoints' bearer token: LANE_SERVE_TOKEN, else the file serve.token_file names
    (a path outside or inside the workspace, read once at start). None: training endpoints refused."""
    token = env.get(TOKEN_ENV)
    if not token and section.get("token_file"):
        path = Path(str(section["token_file"])).expanduser()
        path = path if path.is_absolute() else root / path
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise LaneError("config_invalid", f"serve.token_file {path}: {exc}") from exc
    if token and len(token) < MIN_TOKEN_CHARS:
        raise LaneError("config_invalid", f"the serve token must be at least {MIN_TOKEN_CHARS} characters")
    return token or None


def load_settings(root: str | os.PathLike[str] = ".", *, env: Mapping[str, str] | None = None,
                  config_path: str | os.PathLike[str] | None = None, **flags: Any) -> ServeSettings:
    """Settings for a server over the workspace `root`; `flags` (None values ignored) win over the
    config file's `serve` section, which wins over the defaults."""
    from ..core.config import lane_section

    env = os.environ if env is None else env
    rootp = Path(root).resolve()
    section = lane_section(rootp, "serve", config_path, env)
    values: dict[str, Any] = {"root": rootp, **_from_config(section), "token": read_token(rootp, section, env)}
    names = {f.name for f in fields(ServeSettings)}
    for key, value in flags.items():
        if key not in names:
            raise TypeError(f"unknown serve setting {key!r}")
        if value is not None:
            values[key] = value
    return ServeSettings(**values)


def workspace_of(source: str | os.PathLike[str]) -> Path | None:
    """The workspace a bundles path belongs to: the parent of its nearest `bundles` folder (itself
    included), or None."""
    path = Path(source).absolute()
    for p in (path, *path.parents):
        if p.name == "bundles":
            return p.parent
    return None
