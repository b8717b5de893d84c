"""Ed25519 signatures for the ledger and the bundle provenance (the `cryptography` library; no
hand-made crypto).

- The private key lives outside the workspace (lane.core.anchors): `LANE_SIGNING_KEY`, else
  `$XDG_CONFIG_HOME/voice-lane/signing-ed25519.pem` (`~/.config/voice-lane/...`), else
  `/etc/voice-lane/signing-ed25519.pem`. It is created on first use (PKCS#8 PEM, mode 0600, its
  folder 0700). A key inside the workspace is refused: whoever can edit the ledger could then re-sign it.
- A signature names its key by fingerprint (`ed25519:` + the first 32 hex digits of the sha256 of
  the raw public key) and carries the public key, so a verifier needs no private key. A signature
  counts only when its key is trusted: the local key, or a fingerprint in the trusted-keys file
  outside the workspace (`LANE_TRUSTED_KEYS`, `~/.config/voice-lane/trusted-keys`), which is how a
  reviewer on another machine, or an operator after rotating keys, keeps old entries verifiable. The
  workspace's own config never adds a key (`signing.*` there is refused, lane.core.anchors).
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

PREFIX = "ed25519:"


def key_path(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Path:
    """Where the private key is (lane.core.anchors); LaneError when that is inside the workspace."""
    from .anchors import key_file

    try:
        return key_file(root, env)
    except LaneError as err:
        raise LaneError("signing_key_unavailable", err.detail) from None


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
    """Fingerprints whose signatures count: those in the trusted-keys file outside the workspace, and
    the local key's when there is one. Nothing in the workspace adds to them. A trusted-keys file
    that cannot be read (or lies inside the workspace) trusts nothing from it."""
    from .anchors import read_trusted

    pinned: set[str] = set()
    with contextlib.suppress(LaneError, OSError):
        pinned |= read_trusted(root, env)
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
        return f"signed by {keyid}, which is not a trusted key (LANE_TRUSTED_KEYS, ~/.config/voice-lane/trusted-keys)"
    try:
        public.verify(sig, payload)
    except InvalidSignature:
        return f"the signature by {keyid} does not verify"
    return ""


def rotate(root: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> tuple[Signer, Signer, Path]:
    """Move the current key aside (`<name>.retired-<fingerprint>`), create a new one, and add both
    fingerprints to the trusted-keys file (outside the workspace), so every older signature keeps
    verifying here; (old, new, the trusted-keys file)."""
    from .anchors import add_trusted

    old = load_signer(root, env)
    retired = old.path.with_name(f"{old.path.name}.retired-{old.keyid.split(':', 1)[1][:12]}")
    os.replace(old.path, retired)
    new = load_signer(root, env)
    try:
        trusted = add_trusted([old.keyid, new.keyid], root, env)
    except (LaneError, OSError) as exc:
        raise LaneError("signing_key_unavailable", f"new key {new.keyid} created, but the old one could not be "
                        f"trusted: {exc}") from None
    return Signer(old.private, retired), new, trusted
