"""Where the trust anchors live: the signing key, the public keys whose signatures count, and the
rollback witness. Never in the workspace: whoever can write the workspace could otherwise add their
own key, or reset the witness, and every check would pass.

==============  ====================  =========================================  ==============================
anchor          environment           user config dir                            system
==============  ====================  =========================================  ==============================
signing key     LANE_SIGNING_KEY      <config>/signing-ed25519.pem               /etc/voice-lane/signing-ed25519.pem
trusted keys    LANE_TRUSTED_KEYS     <config>/trusted-keys                      /etc/voice-lane/trusted-keys
witness         LANE_WITNESS_DIR      <config>/witness/                          /etc/voice-lane/witness/
==============  ====================  =========================================  ==============================

`<config>` is `$XDG_CONFIG_HOME/voice-lane`, else `~/.config/voice-lane`. The first of the three that
is set (environment) or exists (files) wins; the signing key is created in the user config dir on
first use, and so is the witness folder. A trusted-keys file holds one fingerprint
(`ed25519:<32 hex>`) per line; `#` starts a comment. Any anchor that resolves inside the workspace is
refused (`trust_anchor_in_workspace`), and so is a workspace config file that names keys
(`signing.trusted_keys`, `signing.key_path`): `workspace_problem` says why, and nothing in it is read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from .reasons import LaneError

SYSTEM_DIR = Path("/etc/voice-lane")
KEY_FILE = "signing-ed25519.pem"
TRUSTED_FILE = "trusted-keys"
WITNESS_DIR = "witness"
FINGERPRINT = re.compile(r"^ed25519:[0-9a-f]{32}$")


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def user_dir(env: Mapping[str, str] | None = None) -> Path:
    """$XDG_CONFIG_HOME/voice-lane, else ~/.config/voice-lane."""
    e = _env(env)
    base = e.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base).resolve() / "voice-lane"


def inside(path: Path, root: str | os.PathLike[str]) -> bool:
    try:
        path.resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def outside(path: Path, root: str | os.PathLike[str] | None, what: str) -> Path:
    """`path`, or LaneError(trust_anchor_in_workspace) when it lies inside the workspace `root`."""
    if root is not None and inside(path, root):
        raise LaneError("trust_anchor_in_workspace", f"the {what} {path} is inside the workspace "
                        f"{Path(root).resolve()}: keep it outside (README: the signing key)")
    return path


def _pick(var: str, name: str, env: Mapping[str, str] | None) -> tuple[Path, str]:
    """(path, where it came from) for an anchor file: the environment, else the user or system file
    that exists, else the user one (to be created)."""
    e = _env(env)
    if e.get(var):
        return Path(os.path.expanduser(e[var])).resolve(), f"env:{var}"
    for path, where in ((user_dir(env) / name, "user"), (SYSTEM_DIR / name, "system")):
        if path.exists():
            return path, where
    return user_dir(env) / name, "user"


def key_file(root: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The private signing key's path (it may not exist yet)."""
    return outside(_pick("LANE_SIGNING_KEY", KEY_FILE, env)[0], root, "signing key")


def trusted_file(root: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The trusted-keys file's path (it may not exist)."""
    return outside(_pick("LANE_TRUSTED_KEYS", TRUSTED_FILE, env)[0], root, "trusted-keys file")


def read_trusted(root: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> set[str]:
    """The fingerprints in the trusted-keys file (none when it does not exist)."""
    path = trusted_file(root, env)
    if not path.is_file():
        return set()
    out = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not FINGERPRINT.fullmatch(text):
            raise LaneError("signing_key_unavailable", f"{path}:{n}: {text!r} is not a key fingerprint (ed25519:<32 hex>)")
        out.add(text)
    return out


def add_trusted(fingerprints: list[str], root: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Path:
    """Append fingerprints that are not there yet to the trusted-keys file (created, mode 0644)."""
    path = trusted_file(root, env)
    have = read_trusted(root, env)
    new = [f for f in fingerprints if f not in have]
    if new:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(path, "a", encoding="utf-8") as f:
            f.writelines(f"{fp}\n" for fp in new)
    return path


def witness_dir(root: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The folder of witness files: LANE_WITNESS_DIR, else <config>/witness, else /etc/voice-lane/witness
    when that exists and the user one does not."""
    e = _env(env)
    if e.get("LANE_WITNESS_DIR"):
        path = Path(os.path.expanduser(e["LANE_WITNESS_DIR"])).resolve()
    else:
        user, system = user_dir(env) / WITNESS_DIR, SYSTEM_DIR / WITNESS_DIR
        path = system if system.is_dir() and not user.exists() else user
    return outside(path, root, "rollback witness folder")


def workspace_problem(root: str | os.PathLike[str], config_path: str | os.PathLike[str] | None = None,
                      env: Mapping[str, str] | None = None) -> str:
    """'' unless the lane config file names trust anchors (a `signing` section with keys), else why it
    is refused. Such a section is never read: this only says so."""
    from .config import lane_config_file, load_yaml

    cfg = lane_config_file(root, config_path, env)
    if cfg is None or not cfg.exists():
        return ""
    section = load_yaml(cfg).get("signing")
    if not section:
        return ""
    keys = sorted(section) if isinstance(section, Mapping) else ["signing"]
    return (f"{cfg} names {', '.join(f'signing.{k}' for k in keys)}: trust anchors come only from outside the "
            "workspace (LANE_SIGNING_KEY, LANE_TRUSTED_KEYS, LANE_WITNESS_DIR or ~/.config/voice-lane/), so it is "
            "refused and never read")
