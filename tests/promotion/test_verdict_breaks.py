"""The six ways the verdict fell to someone with write access to the workspace (issue 19), each tried
again with the real `lane` CLI (report, promote, serve, ledger verify, keys, run in subprocesses) on
runs of the fixture notebooks through the real runner, and each now NO-GO or refused with its code.

One module-scoped workspace holds three runs of the `fixture_voice` voice: GO (a copy of the session's
completed run), NO-GO (cer_synth 0.9) and demo (not promotable); every test tampers with its own copy.
Only the profile swap needs a run of its own: a fixture validate notebook that swaps the profile file
while the stage runs, through the real runner.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lane_runs import STAGES, install_notebooks, make_workspace, run_fixtures

from lane.core import ledger
from lane.core.reasons import exit_code

FULL = dict.fromkeys(STAGES, "pass")
VOICE = "fixture_voice"


@dataclass
class Runs:
    root: Path
    go: str
    nogo: str
    demo: str
    ledger_after_go: dict[str, bytes]  # reports/ledger.jsonl and ledger.head.json when only the GO run existed


@pytest.fixture(scope="module")
def runs(completed_run: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory) -> Runs:
    src, go = completed_run
    root = tmp_path_factory.mktemp("verdict") / "ws"
    shutil.copytree(src, root)
    saved = {n: (root / "reports" / n).read_bytes() for n in ("ledger.jsonl", "ledger.head.json")}
    kw: dict[str, Any] = {"profile": "production", "voice_profile_id": VOICE}
    nogo = run_fixtures(root, FULL, extra_params={"promotable": True, "metric_values": {"cer_synth": 0.9}}, **kw)
    demo = run_fixtures(root, FULL, extra_params={"promotable": True}, **{**kw, "profile": "demo"})
    assert (nogo.reason, demo.status) == ("gate_failed", "completed")
    return Runs(root, go.run_id, nogo.run_id, demo.run_id, saved)


@pytest.fixture
def ws(runs: Runs, tmp_path: Path) -> Path:
    dst = tmp_path / "ws"
    shutil.copytree(runs.root, dst, symlinks=True)
    return dst


def lane(root: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    """The real CLI in a subprocess (the session's trust anchors come with the environment)."""
    return subprocess.run([sys.executable, "-m", "lane", *args, "--root", str(root)], cwd=root, capture_output=True,
                          text=True, timeout=timeout, check=False)


def report(root: Path, run_id: str) -> tuple[str, list[str], str]:
    """(verdict, reason codes, markdown) from `lane report RUN_ID`."""
    done = lane(root, "report", run_id)
    assert done.returncode == 0, done.stdout + done.stderr
    md = (root / "reports" / f"readiness-{run_id}.md").read_text(encoding="utf-8")
    verdict = md.splitlines()[0].removeprefix("# Verdict: ")
    codes = md.split("Reason codes: ", 1)[1].split(" (see", 1)[0].replace("`", "").split(", ") if "Reason codes: " in md \
        else []
    return verdict, codes, md


def run_dir(root: Path, run_id: str) -> Path:
    return root / "runs" / run_id


def cand(root: Path, run_id: str) -> Path:
    return root / "bundles" / VOICE / "candidates" / run_id


def edit_json(path: Path, change: Any) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_the_fixture_runs_are_what_they_claim(runs: Runs) -> None:
    assert report(runs.root, runs.go)[:2] == ("GO", [])
    verdict, codes, _ = report(runs.root, runs.nogo)
    assert verdict == "NO-GO" and "gate_failed" in codes and "ledger_broken" not in codes
    assert report(runs.root, runs.demo)[:2] == ("NO-GO", ["lane_not_promotable"])
    assert lane(runs.root, "ledger", "verify").returncode == 0


# ------------------------------------------------------------------------------ 1: profile swapped mid-validate
LOOSE = {"extends": "production", "promotable": True, "eval": {"thresholds": {
    "cer_synth": {"max": 1.0}, "cer_ratio": {"max": 3.0}, "spk_sim": {"min": 0.4}, "spk_margin": {"min": -0.3},
    "mcd_db": {"max": 13.0}}}}
SWAP_DURING_VALIDATE = """
# this validate judges with the loose thresholds it read at the start (as the stage's code would) ...
import pathlib, yaml
import lane.promotion as _policy
_policy.FLOORS = {**_policy.FLOORS, "cer_synth": (None, 1.0), "cer_ratio": (None, 3.0), "spk_sim": (0.4, None),
                  "spk_margin": (-0.3, None), "mcd_db": (None, 13.0)}
metric_values = {"cer_synth": 0.9625, "cer_ratio": 2.79, "spk_sim": 0.47, "spk_margin": -0.26, "mcd_db": 12.0}
# ... while the profile file is swapped for one whose thresholds sit exactly at the floors
pathlib.Path(root, "configs", "profiles", "loose.yaml").write_text(yaml.safe_dump(
    {"extends": "production", "promotable": True}))
"""


def test_profile_swapped_during_validate_is_no_go(tmp_path: Path) -> None:
    """Break 1, through the real runner: the verdict judges the recorded values against the profile frozen
    at the start (whose loose thresholds are below the floors) and the floors, never the swapped file."""
    from lane.core.config import Settings
    from lane.runner import execute_run

    root = make_workspace(tmp_path / "ws")
    (root / "configs" / "profiles" / "loose.yaml").write_text(yaml.safe_dump(LOOSE))
    _licence(root, "silero_vad", "MIT OR GPL-3.0-only")  # (and an OR licence: its branch is named)
    install_notebooks(root, FULL, code={"validate": SWAP_DURING_VALIDATE})
    out = execute_run(Settings(profile="loose", voice_profile_id=VOICE, cell_timeout_s=60), root,
                      extra_params={"promotable": True})
    assert out.status == "completed", out
    result = json.loads((run_dir(root, out.run_id) / "validate" / "result.json").read_text())
    assert next(c for c in result["checks"] if c["id"] == "cer_synth")["ok"] is True  # what validate recorded
    verdict, codes, md = report(root, out.run_id)
    assert verdict == "NO-GO" and {"thresholds_below_floor", "gate_failed"} <= set(codes), codes
    assert "(`cer_synth`) | 0.9625 | <= 1 | <= 0.5 | FAIL |" in md
    assert "Validate recorded ok beside the failing value of cer_synth" in md
    assert "`configs/profiles/loose.yaml (changed)`" in md  # the swap is reported, not used
    assert "OR branches taken: silero_vad weights: MIT OR GPL-3.0-only -> MIT" in md
    refused = lane(root, "promote", out.run_id)
    assert refused.returncode == exit_code("promotion_refused") and "promotion_refused" in refused.stderr


# ------------------------------------------------------------------------------ 2: edited evidence files
def _forge_validate(root: Path, run_id: str) -> None:
    """The failed validate of a NO-GO run edited to pass, and its status files to say so."""
    def passing(res: dict[str, Any]) -> None:
        for c in res["checks"]:
            if c["id"] == "cer_synth":
                c.update(ok=True, value=0.5, detail="cer_synth=0.5")
        res.update(status="done", reason="ok", first_fail=None)

    def completed(st: dict[str, Any]) -> None:
        st.update(status="completed", reason="ok", exit_code=0)
        st["stages"]["validate"].update(status="done", reason="ok", verdict="PASS", first_fail=None)
    edit_json(run_dir(root, run_id) / "validate" / "result.json", passing)
    edit_json(run_dir(root, run_id) / "train_status.json", completed)


@pytest.mark.parametrize("edit", ["validate_result", "settings_profile", "snapshot_profile", "train_result",
                                  "status_bundle_path"])
def test_edited_evidence_files_are_no_go(runs: Runs, ws: Path, edit: str) -> None:
    """Break 2: results, settings, the snapshot and train_status edited to look GO; `lane report` names the
    file and says NO-GO, and `lane ledger verify` (which re-hashes the same files) fails."""
    run_id, file, code = {
        "validate_result": (runs.nogo, "validate/result.json", "ledger_broken"),
        "settings_profile": (runs.demo, "settings.json", "ledger_broken"),
        "snapshot_profile": (runs.demo, "config.snapshot.json", "ledger_broken"),
        "train_result": (runs.go, "train/result.json", "ledger_broken"),
        "status_bundle_path": (runs.nogo, "train_status.json", "gate_failed"),
    }[edit]
    rdir = run_dir(ws, run_id)
    if edit == "validate_result":
        _forge_validate(ws, run_id)
    elif edit == "settings_profile":
        edit_json(rdir / "settings.json", lambda m: m["settings"].update(profile="production"))
    elif edit == "snapshot_profile":
        edit_json(rdir / "config.snapshot.json", lambda s: s["profile"].update(promotable=True))
    elif edit == "train_result":  # the GO run's train result, edited at all (here: the stats the verdict reads)
        edit_json(rdir / "train" / "result.json", lambda r: r["stats"].update(promotable=True, reviewed=True))
    else:  # the status points at an edited copy of the candidate that claims a passing validation
        forged = cand(ws, "forged")
        shutil.copytree(cand(ws, run_id), forged)
        edit_json(forged / "validation.json", lambda v: v["metrics"].update(cer_synth=0.5))
        edit_json(rdir / "train_status.json", lambda t: t.update(bundle_path=f"bundles/{VOICE}/candidates/forged"))
    verdict, codes, md = report(ws, run_id)
    assert verdict == "NO-GO" and code in codes, codes
    if code == "ledger_broken":
        assert f"runs/{run_id}/{file}" in md.split("## Quality")[0]  # the file, named in the reasons
        verify = lane(ws, "ledger", "verify")
        assert verify.returncode == exit_code("ledger_broken") and f"runs/{run_id}/{file}" in verify.stdout
    else:
        assert f"the status file names bundles/{VOICE}/candidates/forged" in md
        assert f"bundles/{VOICE}/candidates/{run_id}" in md  # the run's own candidate is what was judged


# ------------------------------------------------------------------------------ 3: promote of another run's candidate
@pytest.mark.parametrize("how", ["status_points_elsewhere", "candidate_is_a_link"])
def test_promote_never_switches_to_a_bundle_it_did_not_verify(runs: Runs, ws: Path, how: str) -> None:
    """Break 3: a NO-GO run whose status (or candidate directory) points at the GO run's candidate."""
    go_cand, nogo_cand = cand(ws, runs.go), cand(ws, runs.nogo)
    if how == "status_points_elsewhere":
        edit_json(run_dir(ws, runs.nogo) / "train_status.json",
                  lambda t: t.update(bundle_path=go_cand.relative_to(ws).as_posix()))
    else:
        shutil.rmtree(nogo_cand)
        nogo_cand.symlink_to(go_cand.name)
    refused = lane(ws, "promote", runs.nogo)
    assert refused.returncode == exit_code("promotion_refused") and "promotion_refused" in refused.stderr
    if how == "candidate_is_a_link":
        assert "candidate_mismatch" in refused.stderr
        assert "candidate_mismatch" in report(ws, runs.nogo)[1]
    assert not (ws / "bundles" / VOICE / "voice_bundle").exists()
    assert not [e for e in ledger.read_entries(ws) if e["stage_id"] == "promote"]
    if how == "candidate_is_a_link":
        return  # (the link also changed files the ledger certified: no run verifies until it is removed)
    promoted = lane(ws, "promote", runs.go)  # the GO run itself still promotes, to its own candidate
    assert promoted.returncode == 0, promoted.stderr
    assert (ws / "bundles" / VOICE / "voice_bundle").resolve() == go_cand.resolve()
    entry = ledger.read_entries(ws)[-1]
    assert entry["live"] == {"voice": VOICE, "run_id": runs.go, "previous": None,
                             "link": f"bundles/{VOICE}/voice_bundle"}
    assert {a["path"] for a in entry["artifacts"]} == {f"bundles/{VOICE}/candidates/{runs.go}/manifest.json",
                                                       f"bundles/{VOICE}/candidates/{runs.go}/provenance.dsse.json"}


# ------------------------------------------------------------------------------ 4: a key pinned in the workspace
def _attacker_rewrite(root: Path, run_id: str, key_dir: Path) -> str:
    """What someone with write access and their own key does: forge the NO-GO run's validate result,
    re-certify its entry, re-chain and re-sign every entry, the head and the candidate's provenance."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lane.bundle import provenance
    from lane.core.fsutil import canonical_json, sha256_bytes, sha256_file
    from lane.core.gates import certify
    from lane.core.signing import Signer

    evil = Signer(Ed25519PrivateKey.generate(), key_dir / "evil.pem")
    _forge_validate(root, run_id)
    res_path = run_dir(root, run_id) / "validate" / "result.json"
    res = json.loads(res_path.read_text())
    entries = ledger.read_entries(root)
    prev = "0" * 64
    lines = []
    for e in entries:
        if (e["runId"], e["stage_id"]) == (run_id, "validate"):
            e.update(checks_run=res["checks"], certificateHash=certify(res, run_id, "validate", "done", "PASS"),
                     status="done", reason="ok", verdict="PASS", firstFail=None)
            for row in e["evidence"]:
                if row["kind"] == "stage_result":
                    row["sha256"] = sha256_file(res_path)
        e["prev_hash"] = prev
        e.pop("signature", None)
        e["signature"] = evil.sign(ledger._payload(e))
        line = canonical_json(e)
        lines.append(line)
        prev = sha256_bytes(line.encode())
    (root / "reports" / "ledger.jsonl").write_text("".join(x + "\n" for x in lines))
    (root / "reports" / "ledger.head.json").write_text(json.dumps(ledger._head(len(lines), prev, evil)))
    provenance.write(cand(root, run_id), {"run_id": run_id, "voice_profile_id": VOICE, "verdict": "GO"}, evil)
    return evil.keyid


def test_a_key_pinned_in_the_workspace_config_changes_nothing(runs: Runs, ws: Path, tmp_path: Path) -> None:
    """Break 4: `signing.trusted_keys` (and `key_path`) in configs/lane.yaml are refused by `lane run`
    and read by nothing else; an attacker's re-signed ledger and provenance stay untrusted."""
    before = lane(ws, "ledger", "verify")
    cfg = ws / "configs" / "lane.yaml"
    honest_cfg = cfg.read_text()
    cfg.write_text(honest_cfg + f"signing:\n  trusted_keys: [ed25519:{'ab' * 16}]\n  key_path: {ws}/key.pem\n")
    after = lane(ws, "ledger", "verify")
    assert (before.returncode, after.returncode) == (0, 0)  # writing it changes nothing ...
    keys = lane(ws, "keys", "show")
    assert f"ed25519:{'ab' * 16}" not in keys.stdout.split("trusted:", 1)[1].splitlines()[0]
    assert "refused: trust_anchor_in_workspace" in keys.stdout and "signing.trusted_keys" in keys.stdout
    blocked = lane(ws, "run", "--profile", "production", "--audio", "data/none.wav")
    assert blocked.returncode == exit_code("trust_anchor_in_workspace") == 2
    assert "[tts-prod] status=blocked reason=trust_anchor_in_workspace" in blocked.stdout

    evil = _attacker_rewrite(ws, runs.nogo, tmp_path)  # ... even with the attacker's key named there
    cfg.write_text(honest_cfg + f"signing:\n  trusted_keys: [{evil}]\n")
    verify = lane(ws, "ledger", "verify")
    assert verify.returncode == exit_code("ledger_broken") and f"signed by {evil}, which is not a trusted key" in verify.stdout
    verdict, codes, _ = report(ws, runs.nogo)
    assert verdict == "NO-GO" and "ledger_broken" in codes
    refused = lane(ws, "promote", runs.nogo)
    assert refused.returncode == exit_code("promotion_refused")
    bundle = lane(ws, "verify-bundle", str(cand(ws, runs.nogo)))
    assert bundle.returncode != 0 and "not a trusted key" in bundle.stdout


# ------------------------------------------------------------------------------ 5: rollback to an earlier signed head
def _restore(root: Path, saved: dict[str, bytes]) -> None:
    for name, data in saved.items():
        (root / "reports" / name).write_bytes(data)


def test_a_promotion_rolled_out_of_the_ledger_is_caught(runs: Runs, ws: Path) -> None:
    """Break 5a: the ledger and head restored to before `lane promote`, the voice still live."""
    from lane.core.witness import witness_path
    from lane.promotion import servable

    assert lane(ws, "ledger", "verify").returncode == 0  # this machine has now witnessed the workspace
    saved = {n: (ws / "reports" / n).read_bytes() for n in ("ledger.jsonl", "ledger.head.json")}
    assert lane(ws, "promote", runs.go).returncode == 0
    live = ws / "bundles" / VOICE / "voice_bundle"
    assert servable(live, ws) == []
    _restore(ws, saved)  # a valid, signed, earlier head with its matching ledger
    assert ledger.verify(ws).reason == "ledger_rolled_back"
    verify = lane(ws, "ledger", "verify")
    assert verify.returncode == exit_code("ledger_rolled_back") and "ledger rolled back" in verify.stdout
    assert any("not promoted" in p for p in servable(live, ws))
    assert "ledger_rolled_back" in report(ws, runs.go)[1]
    # on a machine that never saw the newer head, the live link and history.jsonl still give it away
    witness_path(ws).unlink()
    verify = lane(ws, "ledger", "verify")
    assert verify.returncode == exit_code("ledger_rolled_back") and "the ledger lost the newest ones" in verify.stdout


def test_a_run_rolled_out_of_the_ledger_and_deleted_is_caught(runs: Runs, ws: Path) -> None:
    """Break 5b: the ledger restored to when only the GO run existed, the later runs deleted."""
    from lane.core.witness import witness_path

    assert lane(ws, "ledger", "verify").returncode == 0
    _restore(ws, runs.ledger_after_go)
    for run_id in (runs.nogo, runs.demo):
        shutil.rmtree(run_dir(ws, run_id))
        shutil.rmtree(cand(ws, run_id))
    verify = lane(ws, "ledger", "verify")
    assert verify.returncode == exit_code("ledger_rolled_back")
    assert "the head is version 4 (4 entries), but this machine witnessed version 12" in verify.stdout
    assert report(ws, runs.go)[:2] == ("NO-GO", ["ledger_rolled_back"])
    witness_path(ws).unlink()  # without the witness, nothing in the workspace remembers: why it lives outside
    assert lane(ws, "ledger", "verify").returncode == 0


# ------------------------------------------------------------------------------ 6: a hand-made live link
@pytest.mark.parametrize("ledger_state", ["intact", "deleted"])
def test_a_hand_made_live_link_is_not_served(runs: Runs, ws: Path, ledger_state: str) -> None:
    """Break 6: bundles/<voice>/voice_bundle made by hand to a GO candidate: `lane serve` refuses it at
    start (bundle_not_promoted), with the ledger intact or deleted, and `lane ledger verify` names it."""
    live = ws / "bundles" / VOICE / "voice_bundle"
    live.symlink_to(Path("candidates") / runs.go)
    if ledger_state == "deleted":
        for name in ("ledger.jsonl", "ledger.head.json"):
            (ws / "reports" / name).unlink()
    served = lane(ws, "serve", str(live), "--port", "0", timeout=120)
    assert served.returncode == exit_code("bundle_not_promoted") and "bundle_not_promoted" in served.stderr
    why = "the ledger does not verify" if ledger_state == "deleted" else "no promote entry in the ledger makes"
    assert why in served.stderr
    verify = lane(ws, "ledger", "verify")
    assert verify.returncode == exit_code("ledger_broken")
    if ledger_state == "intact":
        assert f"bundles/{VOICE}/voice_bundle is run {runs.go}, but the ledger records no promotion" in verify.stdout


# ------------------------------------------------------------------------------ bases and licences
def _licence(root: Path, entry: str, expr: str) -> None:
    manifest = root / "configs" / "voice" / "weights-manifest.example.json"
    edit_json(manifest, lambda m: next(e for e in m["entries"] if e["id"] == entry).update(weights_license=expr))


def test_a_base_that_is_not_promotable_and_unknown_in_a_licence_are_no_go(tmp_path: Path) -> None:
    """The project's espeak-trained base says `promotable: false` in the weights manifest: a voice
    fine-tuned from it is NO-GO whatever the profile claims, with the base named. And `unknown` in a
    licence expression is NO-GO even beside an allowed branch."""
    root = make_workspace(tmp_path / "ws")
    _licence(root, "dnsmos_p808", "MIT OR unknown")
    base = {"role": "base_spectrogram", "id": "lane_base_fastpitch_espeak", "license": "Apache-2.0"}
    out = run_fixtures(root, FULL, extra_params={"promotable": True, "base_weights": [base]}, profile="production",
                       voice_profile_id=VOICE)
    verdict, codes, md = report(root, out.run_id)
    assert (verdict, codes) == ("NO-GO", ["lane_not_promotable", "weights_license_blocked"])
    why = md.split("## Quality")[0].lower()
    assert "its base lane_base_fastpitch_espeak is not promotable (the weights manifest says promotable: false)" in why
    assert "weights entry dnsmos_p808 is not allowed: 'mit or unknown': 'unknown' is not a licence" in why


@pytest.mark.parametrize(("expr", "chosen"), [
    ("MIT OR unknown", None), ("unknown OR MIT", None), ("MIT OR NOASSERTION", None), ("NONE", None),
    ("Apache-2.0 AND (MIT OR NOASSERTION)", None), ("MIT OR Not-A-Licence-Id", None), ("MIT OR (", None),
    ("Apache-2.0 OR GPL-3.0-only", "Apache-2.0"), ("GPL-3.0-only OR MIT", "MIT"),
    ("(GPL-3.0-only OR MIT) AND Apache-2.0", "MIT AND Apache-2.0"), ("CC-BY-NC-4.0 OR CC-BY-4.0", "CC-BY-4.0"),
])
def test_licence_expressions_fail_closed_and_name_the_branch(expr: str, chosen: str | None) -> None:
    from lane.core.licenses import LicensePolicy
    from lane.core.paths import PACKAGE_ROOT

    assert LicensePolicy.load(PACKAGE_ROOT).choose(expr) == chosen


def test_the_policy_file_cannot_allow_non_commercial_or_unknown_licences() -> None:
    from lane.core.licenses import LicensePolicy

    lax = LicensePolicy(allow=("CC-BY-NC-4.0", "unknown", "NOASSERTION", "MIT"), deny=())
    for expr in ("CC-BY-NC-4.0", "unknown", "MIT OR NOASSERTION"):
        assert not lax.allows(expr), expr
    assert lax.allows("MIT")
