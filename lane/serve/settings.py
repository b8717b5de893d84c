"""What `lane serve` runs with: flags > environment > the `serve` section of configs/lane.yaml > defaults.

    serve:
      max_inflight: 4            # synthesis requests admitted at once
      max_queue: 8               # more wait here (at most queue_timeout_s), the rest get 503 + Retry-After
      queue_timeout_s: 20
      workers: 1                 # synthesis threads (each runs onnxruntime with `threads` intra-op threads)
      threads: 2                 # onnxruntime intra-op threads per synthesis
      request_timeout_s: 60      # synthesis time per request (time spent waiting on the client not counted)
      max_connections: 256       # open HTTP connections; a new one past it closes the oldest idle one
      header_timeout_s: 10       # a request's line, headers and body must arrive within this
      idle_timeout_s: 5          # a connection with no request in progress is closed after this
      send_timeout_s: 30         # a client that reads nothing of its answer for this long is dropped
      max_body_bytes: 65536
      max_text_chars: 4096       # OpenAI's limit
      max_pieces: 256            # sentences (pieces of at most 300 normalised characters) per request
      max_audio_s: 900           # estimated seconds of audio per request, after normalisation and speed
      rescan_s: 5                # how often the live voices are looked at again (a new promotion shows up)
      retry_after_s: 1           # the least Retry-After; the answer is computed from the queue and service time
      allowed_hosts: []          # Host names accepted besides loopback and the bound host
      allowed_origins: []        # Origins allowed to POST besides the server's own, with CORS for them
      voice_aliases: {alloy: null, ...}   # names that mean a voice (null: the default voice); {} for none
      zeroconf: false            # advertise the Wyoming server on the local network (mDNS)
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
# the built-in voice names of OpenAI's speech API: by default each one means the default voice, so
# examples and apps written for OpenAI speak without changes
OPENAI_VOICES = ("alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage",
                 "shimmer", "verse")
DEFAULT_ALIASES: tuple[tuple[str, str | None], ...] = tuple((name, None) for name in OPENAI_VOICES)


@dataclass(frozen=True)
class ServeSettings:
    root: Path = Path(".")
    source: Path | None = None  # a bundles dir (every live voice) or one bundle dir; None: <root>/bundles
    allow_unpromoted: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    max_inflight: int = 4
    max_queue: int = 8
    queue_timeout_s: float = 20.0
    workers: int = 1
    threads: int = 2
    request_timeout_s: float = 60.0
    max_connections: int = 256
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 5.0
    send_timeout_s: float = 30.0
    max_body_bytes: int = 64 * 1024
    max_text_chars: int = 4096
    max_pieces: int = 256
    max_audio_s: float = 900.0
    rescan_s: float = 5.0
    retry_after_s: int = 1
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    voice_aliases: tuple[tuple[str, str | None], ...] = DEFAULT_ALIASES
    token: str | None = field(default=None, repr=False)
    wyoming: str | None = None
    zeroconf: bool = False

    @property
    def bundles(self) -> Path:
        return Path(self.source) if self.source is not None else Path(self.root) / "bundles"

    @property
    def aliases(self) -> dict[str, str | None]:
        """alias -> voice id (None: the default voice)."""
        return dict(self.voice_aliases)


NUMBERS = {"max_inflight": int, "max_queue": int, "queue_timeout_s": float, "workers": int, "threads": int,
           "request_timeout_s": float, "max_connections": int, "header_timeout_s": float, "idle_timeout_s": float,
           "send_timeout_s": float, "max_body_bytes": int, "max_text_chars": int, "max_pieces": int,
           "max_audio_s": float, "rescan_s": float, "retry_after_s": int}
ZERO_OK = ("max_queue",)  # 0: no waiting, refuse at once when every slot is busy
LISTS = ("allowed_hosts", "allowed_origins")
KNOWN = (*NUMBERS, *LISTS, "voice_aliases", "zeroconf", "token_file")


def _number(key: str, value: Any) -> int | float:
    least = 0 if key in ZERO_OK else 1e-9
    if isinstance(value, bool) or not isinstance(value, int | float) or value < least:
        raise LaneError("config_invalid", f"serve.{key} must be a {'non-negative' if least == 0 else 'positive'} "
                        f"number, not {value!r}")
    return NUMBERS[key](value)


def _aliases(value: Any) -> tuple[tuple[str, str | None], ...]:
    from ..core.ids import check_id

    if not isinstance(value, Mapping):
        raise LaneError("config_invalid", "serve.voice_aliases must be a mapping of alias -> voice id (or null)")
    out = []
    for alias, target in value.items():
        check_id("voice profile id", alias)
        out.append((str(alias), None if target is None else check_id("voice profile id", target)))
    return tuple(out)


def _from_config(section: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in section.items():
        if key in NUMBERS:
            out[key] = _number(key, value)
        elif key in LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise LaneError("config_invalid", f"serve.{key} must be a list of strings")
            out[key] = tuple(value)
        elif key == "voice_aliases":
            out[key] = _aliases(value or {})
        elif key == "zeroconf":
            if not isinstance(value, bool):
                raise LaneError("config_invalid", "serve.zeroconf must be true or false")
            out[key] = value
        elif key != "token_file":
            raise LaneError("config_invalid", f"unknown key serve.{key} (known: {', '.join(KNOWN)})")
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
