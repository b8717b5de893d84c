"""Ed25519 signatures for the ledger and the bundle provenance (the `cryptography` library; no
hand-made crypto).

- The private key lives outside the workspace: `LANE_SIGNING_KEY`, else `signing.key_path` in
  configs/lane.yaml, else `~/.config/voice-lane/signing-ed25519.pem`. It is created on first use
  (PKCS#8 PEM, mode 0600, its folder 0700). A key inside the workspace is refused: whoever can edit
  the ledger could then re-sign it.
- A signature names its key by fingerprint (`ed25519:` + the first 32 hex digits of the sha256 of
  the raw public key) and carries the public key, so a verifier needs no private key. A signature
  counts only when its key is trusted: the local key, or a fingerprint pinned in
  `signing.trusted_keys` (configs/lane.yaml), which is how a reviewer on another machine, or an
  operator after rotating keys, keeps old entries verifiable.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .reasons import LaneError

DEFAULT_KEY = Path("~/.config/voice-lane/signing-ed25519.pem")
PREFIX = "ed25519:"


def _config_section(root: str | os.PathLike[str]) -> dict[str, Any]:
    from .config import lane_section

    return lane_section(root, "signing")


def key_path(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    given = env.get("LANE_SIGNING_KEY") or _config_section(root).get("key_path") or str(DEFAULT_KEY)
    return Path(os.path.expanduser(str(given))).resolve()


def fingerprint_of(public_raw: bytes) -> str:
    return PREFIX + hashlib.sha256(public_raw).hexdigest()[:32]


@dataclass(frozen=True)
class Signer:
    """A loaded private key: signs bytes, and says who it is."""

    private: Any  # cryptography Ed25519PrivateKey
    path: Path

    @property
    def public_raw(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return bytes(self.private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))

    @property
    def keyid(self) -> str:
        return fingerprint_of(self.public_raw)

    def sign(self, payload: bytes) -> dict[str, str]:
        return {"keyid": self.keyid, "public_key": base64.b64encode(self.public_raw).decode("ascii"),
                "sig": base64.b64encode(self.private.sign(payload)).decode("ascii")}


def _create(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load_signer(root: str | os.PathLike[str], env: Mapping[str, str] | None = None, *, create: bool = True) -> Signer:
    """The workspace's signing key (created on first use); LaneError(signing_key_unavailable)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = key_path(root, env)
    if path.is_relative_to(Path(root).resolve()):
        raise LaneError("signing_key_unavailable", f"{path} is inside the workspace {Path(root).resolve()}: keep the "
                        "signing key elsewhere (LANE_SIGNING_KEY)")
    try:
        if not path.exists():
            if not create:
                raise LaneError("signing_key_unavailable", f"no signing key at {path}")
            return Signer(_create(path), path)
        if path.stat().st_mode & 0o077:
            os.chmod(path, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except LaneError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise LaneError("signing_key_unavailable", f"{path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LaneError("signing_key_unavailable", f"{path} is not an Ed25519 private key")
    return Signer(key, path)


def trusted_keys(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> set[str]:
    """Fingerprints whose signatures count: the pinned ones, and the local key's when there is one."""
    pinned = {str(k) for k in _config_section(root).get("trusted_keys") or []}
    with contextlib.suppress(LaneError):
        pinned.add(load_signer(root, env, create=False).keyid)
    return pinned


def verify_signature(payload: bytes, signature: Mapping[str, Any] | None, trusted: set[str]) -> str:
    """'' when `signature` is a valid signature of `payload` by a trusted key, else why not."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(signature, Mapping) or not signature.get("sig") or not signature.get("public_key"):
        return "unsigned"
    try:
        raw = base64.b64decode(str(signature["public_key"]), validate=True)
        sig = base64.b64decode(str(signature["sig"]), validate=True)
        public = Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        return "malformed signature"
    keyid = fingerprint_of(raw)
    if signature.get("keyid") != keyid:
        return "the signature's keyid does not match its public key"
    if keyid not in trusted:
        return f"signed by {keyid}, which is not a trusted key (signing.trusted_keys)"
    try:
        public.verify(sig, payload)
    except InvalidSignature:
        return f"the signature by {keyid} does not verify"
    return ""


def rotate(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> tuple[Signer, Signer]:
    """Move the current key aside (`<name>.retired-<fingerprint>`) and create a new one; (old, new)."""
    old = load_signer(root, env)
    retired = old.path.with_name(f"{old.path.name}.retired-{old.keyid.split(':', 1)[1][:12]}")
    os.replace(old.path, retired)
    return Signer(old.private, retired), load_signer(root, env)
