"""Trust anchors live outside the workspace (lane.core.anchors): where each is found, that one inside the
workspace is refused, `lane keys rotate` keeps old signatures trusted, and the rollback witness
(lane.core.witness) with the signed, versioned ledger head."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lane.core import anchors, ledger, witness
from lane.core.reasons import LaneError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with no anchor variables: the user config dir under tmp, the system dir too."""
    monkeypatch.setattr(anchors, "SYSTEM_DIR", tmp_path / "etc")
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path / "home")}


def test_each_anchor_comes_from_the_environment_then_the_user_then_the_system_dir(
        home: dict[str, str], tmp_path: Path) -> None:
    user = tmp_path / "xdg" / "voice-lane"
    assert anchors.key_file(env=home) == user / "signing-ed25519.pem"  # created there on first use
    assert anchors.witness_dir(env=home) == user / "witness"
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "trusted-keys").write_text(f"ed25519:{'1' * 32}  # the team's CI key\n")
    assert anchors.trusted_file(env=home) == tmp_path / "etc" / "trusted-keys"
    assert anchors.read_trusted(env=home) == {f"ed25519:{'1' * 32}"}
    user.mkdir(parents=True)
    (user / "trusted-keys").write_text(f"ed25519:{'2' * 32}\n")
    assert anchors.read_trusted(env=home) == {f"ed25519:{'2' * 32}"}  # the user's file first
    env = {**home, "LANE_TRUSTED_KEYS": str(tmp_path / "ci-keys"), "LANE_WITNESS_DIR": str(tmp_path / "w")}
    assert anchors.trusted_file(env=env) == tmp_path / "ci-keys" and anchors.witness_dir(env=env) == tmp_path / "w"
    (tmp_path / "bad-keys").write_text("not-a-fingerprint\n")
    with pytest.raises(LaneError, match="not a key fingerprint"):
        anchors.read_trusted(env={**home, "LANE_TRUSTED_KEYS": str(tmp_path / "bad-keys")})


def test_an_anchor_inside_the_workspace_is_refused(home: dict[str, str], tmp_path: Path) -> None:
    from lane.core.signing import load_signer, trusted_keys

    ws = tmp_path / "ws"
    ws.mkdir()
    with pytest.raises(LaneError) as key:
        load_signer(ws, {**home, "LANE_SIGNING_KEY": str(ws / "configs" / "key.pem")})
    assert key.value.code == "signing_key_unavailable" and "inside the workspace" in key.value.detail
    with pytest.raises(LaneError) as trusted:
        anchors.read_trusted(ws, {**home, "LANE_TRUSTED_KEYS": str(ws / "trusted-keys")})
    assert trusted.value.code == "trust_anchor_in_workspace"
    (ws / "trusted-keys").write_text(f"ed25519:{'3' * 32}\n")
    assert f"ed25519:{'3' * 32}" not in trusted_keys(ws, {**home, "LANE_TRUSTED_KEYS": str(ws / "trusted-keys")})
    with pytest.raises(LaneError) as wit:
        witness.record(ws, {"version": 1, "last_hash": "0" * 64}, {**home, "LANE_WITNESS_DIR": str(ws / "w")})
    assert wit.value.code == "trust_anchor_in_workspace"


def test_a_signing_section_in_the_workspace_config_is_named_and_refused(tmp_path: Path) -> None:
    (tmp_path / "configs").mkdir()
    cfg = tmp_path / "configs" / "lane.yaml"
    cfg.write_text("settings: {profile: demo}\n")
    assert anchors.workspace_problem(tmp_path, env={}) == ""
    cfg.write_text("settings: {profile: demo}\nsigning:\n  key_path: /tmp/k.pem\n  trusted_keys: []\n")
    problem = anchors.workspace_problem(tmp_path, env={})
    assert "signing.key_path, signing.trusted_keys" in problem and "never read" in problem


def test_keys_rotate_trusts_the_old_and_the_new_key_outside_the_workspace(tmp_path: Path) -> None:
    from lane_runs import make_workspace

    ws = make_workspace(tmp_path / "ws")
    env = {"LANE_SIGNING_KEY": str(tmp_path / "keys" / "k.pem"), "LANE_TRUSTED_KEYS": str(tmp_path / "keys" / "trusted"),
           "LANE_WITNESS_DIR": str(tmp_path / "witness"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    def lane(*args: str) -> subprocess.CompletedProcess[str]:
        import os

        return subprocess.run([sys.executable, "-m", "lane", *args, "--root", str(ws)], env={**os.environ, **env},
                              capture_output=True, text=True, timeout=120, check=False)

    old = lane("keys", "show")
    assert old.returncode == 0 and f"signing key: {tmp_path / 'keys' / 'k.pem'}" in old.stdout
    old_id = old.stdout.split("fingerprint: ", 1)[1].split()[0]
    with pytest.MonkeyPatch.context() as mp:  # one entry signed by the old key, in this process
        for k, v in env.items():
            mp.setenv(k, v)
        ledger.append(ws, ledger.action_entry(run_id="r", action="note", lane="t", status="done", reason="ok",
                                              summary="old key", commit_sha="0" * 40))
    rotated = lane("keys", "rotate")
    assert rotated.returncode == 0 and f"retired {old_id}" in rotated.stdout
    trusted = (tmp_path / "keys" / "trusted").read_text().split()
    assert old_id in trusted and len(trusted) == 2
    assert lane("ledger", "verify").returncode == 0  # the old entry still verifies, with no workspace file
    assert not (ws / "configs" / "lane.yaml").read_text().count("trusted_keys")


def test_the_witness_only_moves_forward_and_catches_older_or_rewritten_heads(tmp_path: Path) -> None:
    env = {"LANE_WITNESS_DIR": str(tmp_path / "w")}
    ws = tmp_path / "ws"
    lines = [b'{"a":1}', b'{"a":2}', b'{"a":3}']
    from lane.core.fsutil import sha256_bytes

    assert witness.check(ws, lines, {"version": 3}, env).summary.startswith("no witness")
    witness.record(ws, {"version": 3, "last_hash": sha256_bytes(lines[2]), "timestamp": "t3"}, env)
    witness.record(ws, {"version": 2, "last_hash": sha256_bytes(lines[1]), "timestamp": "t2"}, env)  # ignored
    seen = witness.read(ws, env)
    assert seen is not None and (seen.version, seen.timestamp) == (3, "t3")
    assert witness.check(ws, lines, {"version": 3}, env).rolled_back == []
    older = witness.check(ws, lines[:2], {"version": 2}, env)
    assert older.rolled_back and "witnessed version 3" in older.rolled_back[0]
    rewritten = witness.check(ws, [*lines[:2], b'{"a":"x"}', b'{"a":4}'], {"version": 4}, env)
    assert not rewritten.rolled_back and "rewritten" in rewritten.rewritten[0]


def test_the_head_is_versioned_timestamped_and_signed_over_both(tmp_path: Path) -> None:
    for i in range(2):
        ledger.append(tmp_path, ledger.action_entry(run_id="r", action=f"note{i}", lane="t", status="done",
                                                    reason="ok", summary="x", commit_sha="0" * 40))
    head = json.loads((tmp_path / "reports" / "ledger.head.json").read_text())
    assert head["version"] == head["entries"] == 2 and head["timestamp"]
    seen = witness.read(tmp_path)
    assert seen is not None and seen.version == 2 and seen.last_hash == head["last_hash"]
    head["timestamp"] = "2000-01-01T00:00:00Z"  # an old head made to look new, or the reverse
    (tmp_path / "reports" / "ledger.head.json").write_text(json.dumps(head))
    assert ledger.verify(tmp_path).problems == ["ledger head: signature: the signature by "
                                                f"{head['signature']['keyid']} does not verify"]
