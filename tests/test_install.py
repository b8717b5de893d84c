"""A fresh virtual environment gets a complete lane from pyproject.toml alone.

`pip install <repo>` (base dependencies, no extras, nothing installed by hand afterwards) must bring
every evaluator the example weights manifest lists, the speaker encoder included: its weights ship
inside the lane's own package (lane/assets/voice_encoder/, see lane/metrics/speaker_encoder.py). torch goes in
first the way scripts/setup.sh installs it for CPU (LANE_SETUP_ONLY=torch). It needs the package
index; pip's cache is used, so with a warm cache it takes about 2 minutes on 2 cores.

    python -m pytest -m install        # this test only
    python -m pytest -m "not install"  # everything else
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MANIFEST = "configs/voice/weights-manifest.example.json"
SPEAKER_ID = "resemblyzer_voice_encoder"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {res.returncode}\n--- stdout\n{res.stdout[-4000:]}"
                             f"\n--- stderr\n{res.stderr[-4000:]}")
    return res


@pytest.mark.install
@pytest.mark.timeout(900)
def test_fresh_venv_install_brings_the_speaker_encoder(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env.update(PYTHONNOUSERSITE="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(Path(sys.prefix))))
    venv = tmp_path / "venv"
    py, pip = venv / "bin" / "python", [str(venv / "bin" / "python"), "-m", "pip", "-q"]

    # 1. torch, exactly as scripts/setup.sh installs it on a machine without a GPU
    res = _run(["bash", str(REPO / "scripts" / "setup.sh")], REPO,
               {**env, "LANE_VENV": str(venv), "LANE_SKIP_APT": "1", "LANE_TORCH": "cpu", "LANE_SETUP_ONLY": "torch"})
    assert "(CPU build)" in res.stdout, res.stdout + res.stderr
    assert "[setup] WARNING" not in res.stderr, res.stderr

    # 2. the lane from a copy of its sources (pip builds in the source tree: keep the checkout clean),
    #    base dependencies only; the copy is deleted afterwards so nothing can be read from it
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    shutil.copytree(REPO / "lane", src / "lane", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    _run([*pip, "install", str(src)], tmp_path, env, timeout=900)
    shutil.rmtree(src)
    _run([*pip, "check"], tmp_path, env)  # every installed distribution's requirements are met

    # 3. a workspace with the configs only (policy, schemas, the example manifest)
    ws = tmp_path / "ws"
    shutil.copytree(REPO / "configs", ws / "configs")
    res = _run([str(venv / "bin" / "lane"), "verify-weights", MANIFEST], ws, env)
    assert res.stdout.strip() == "status=ok", res.stdout + res.stderr
    row = next(line.split() for line in res.stderr.splitlines() if line.split()[:1] == [SPEAKER_ID])
    assert row[1:3] == ["speaker_encoder", "ok"], res.stderr

    # 4. the lane's own evaluator loading: manifest -> path inside the installed package -> embedding
    snippet = textwrap.dedent(f"""
        import importlib.util, json, os, site, sys
        import numpy as np
        from lane.metrics import load_evaluators
        ev = load_evaluators({MANIFEST!r}, ".", roles=("speaker_encoder",))
        st = ev.status["speaker_encoder"]
        assert st.ok and ev.speaker is not None, (st.state, st.detail)
        t = np.arange(16000) / 16000.0
        f0 = 120 + 30 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(f0) / 16000
        audio = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))
        e = ev.speaker.embed((0.1 * audio).astype(np.float32), 16000)
        json.dump({{"paths": [str(p) for p in st.paths], "shape": list(e.shape), "norm": float(np.linalg.norm(e)),
                   "finite": bool(np.isfinite(e).all()),
                   "resemblyzer": importlib.util.find_spec("resemblyzer") is not None,
                   "typing_backport": any(os.path.exists(os.path.join(d, "typing.py")) for d in site.getsitepackages())}},
                  sys.stdout)
    """)
    res = _run([str(py), "-c", snippet], ws, env)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["shape"] == [256] and out["finite"], out
    assert abs(out["norm"] - 1.0) < 1e-4, out
    assert len(out["paths"]) == 1 and out["paths"][0].startswith(str(venv)), out  # the installed copy, not the repo's
    assert out["paths"][0].endswith("lane/assets/voice_encoder/pretrained.pt"), out
    assert not out["resemblyzer"] and not out["typing_backport"], out  # nothing installed by hand, no shadowing


def test_manifest_pins_the_vendored_weights() -> None:
    """The manifest entry, the file in the repo and the constant in the loader agree."""
    from lane.core.fsutil import sha256_file
    from lane.metrics.speaker_encoder import DEFAULT_WEIGHTS, WEIGHTS_SHA256

    entry = next(e for e in json.loads((REPO / MANIFEST).read_text())["entries"] if e["id"] == SPEAKER_ID)
    assert entry["path"] == "pkg://lane/assets/voice_encoder/pretrained.pt"
    assert entry["sha256"] == WEIGHTS_SHA256 == sha256_file(DEFAULT_WEIGHTS)
    assert entry["code_license"] == entry["weights_license"] == "Apache-2.0"
    assert "Apache License" in (DEFAULT_WEIGHTS.parent / "LICENSE").read_text()[:200]


# resemblyzer 0.1.4's embedding of the signal below (resemblyzer.VoiceEncoder().embed_utterance on
# the same 16 kHz array, torch 2.13 CPU, librosa 0.11): components 0..15, the argmax and the sum.
_REF_HEAD = [0.0, 0.0, 0.0, 0.0, 0.028598, 0.0, 0.0, 0.048172,
             0.035061, 0.0, 0.110089, 0.0, 0.0, 0.045187, 0.021143, 0.0]
_REF_ARGMAX = 42
_REF_SUM = 8.277374


def _reference_signal() -> np.ndarray:
    t = np.arange(3 * 16000) / 16000.0
    f0 = 110 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    voiced = sum(np.sin(k * phase) * np.exp(-((k * f0 - 700) / 400) ** 2) for k in range(1, 30))
    return (0.2 * voiced * (0.55 + 0.45 * np.sin(2 * np.pi * 3.5 * t))).astype(np.float32)


def test_vendored_encoder_matches_resemblyzer() -> None:
    from lane.metrics.speaker_encoder import VoiceEncoder

    e = VoiceEncoder().embed_utterance(_reference_signal())
    assert e.shape == (256,) and abs(float(np.linalg.norm(e)) - 1) < 1e-5
    assert int(np.argmax(e)) == _REF_ARGMAX
    np.testing.assert_allclose(e[:16], _REF_HEAD, atol=1e-4)  # float32 LSTM: BLAS may differ in the last bits
    assert float(e.sum()) == pytest.approx(_REF_SUM, abs=1e-3)
