"""bench/bench_quality.py end to end on the CPU with a tiny setting: an espeak-ng corpus it makes itself
(train + held-out + impostor), the real `lane run` (four notebooks, NeMo training a few steps of the
demo's tiny FastPitch, ONNX export, validate), then the held-out validation. Asserts the result JSON
carries every key metric (a finite number, or null with its reason) and the machine block.
About 1.5 CPU-minutes (3 wall-minutes on a loaded 2-core box)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench" / "bench_quality.py"
# tiny FastPitch from scratch + Griffin-Lim, pinned here so the test does not follow changes of the demo profile
TINY = {"data": {"min_total_s": 10},
        "train": {"min_epoch_steps": 2, "checkpoint_every": 2, "stats_every": 2,
                  "fastpitch": {"init": "scratch",
                                "model": {"d_model": 64, "n_layer_enc": 2, "n_layer_dec": 2, "d_head": 32, "d_inner": 128,
                                          "predictor_filter": 64, "batch_size": 4, "warmup_steps": 50, "lr": 2.0e-3}},
                  "vocoder": {"type": "griffin_lim"}},
        "eval": {"max_heldout": 2, "rtf_texts": 1, "nemo_agree_n": 1}}


def _bench(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(BENCH), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_espeak_corpus_is_heldout_disjoint_and_consented(tmp_path: Path) -> None:
    from lane.core.consent import coverage

    proc = _bench("--make-espeak-data", str(tmp_path / "d"), "--minutes", "0.3", "--heldout-n", "3", "--data-only",
                  timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    corpus = json.loads((tmp_path / "d" / "corpus.json").read_text())
    assert corpus["train"]["seconds"] >= 18 and corpus["heldout"]["clips"] == 3 and corpus["impostor"]["seconds"] > 5

    def texts(split: str) -> set[str]:
        rows = (tmp_path / "d" / split / "metadata.csv").read_text().splitlines()
        return {r.split("|")[1] for r in rows if r}

    assert texts("train") and not texts("train") & texts("heldout")
    wavs = sorted((tmp_path / "d" / "train" / "wavs").glob("*.wav"))
    cov = coverage(tmp_path / "d" / "train" / "consent.json", wavs, REPO)
    assert not cov.uncovered and cov.permitted_use == "commercial"


def test_natural_voice_corpus_uses_the_named_engine_and_refuses_the_independent_check_voice(tmp_path: Path) -> None:
    import soundfile as sf

    from lane.core.consent import coverage

    proc = _bench("--make-espeak-data", str(tmp_path / "d"), "--voice", "flite:awb", "--impostor-voice", "flite:kal",
                  "--minutes", "0.2", "--heldout-n", "2", "--data-only", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    corpus = json.loads((tmp_path / "d" / "corpus.json").read_text())
    assert corpus["voice"] == "flite:awb" and corpus["impostor_voice"] == "flite:kal"
    wavs = sorted((tmp_path / "d" / "train" / "wavs").glob("*.wav"))
    assert wavs and corpus["train"]["seconds"] >= 12
    # flite's awb goes through the catalogue's processing (16 kHz), not espeak-ng's 22.05 kHz path
    assert {sf.info(str(w)).samplerate for w in wavs} == {16000}
    assert not coverage(tmp_path / "d" / "train" / "consent.json", wavs, REPO).uncovered

    refused = _bench("--make-espeak-data", str(tmp_path / "e"), "--voice", "flite:slt", "--data-only", timeout=60)
    assert refused.returncode != 0 and "independent checks" in refused.stderr
    assert not (tmp_path / "e").exists()


@pytest.mark.nemo
def test_quality_bench_tiny_cpu_run_writes_every_metric(tmp_path: Path) -> None:
    out = tmp_path / "quality.json"
    proc = _bench("--make-espeak-data", str(tmp_path / "data"), "--minutes", "0.5", "--heldout-n", "2",
                  "--profile", "demo", "--steps", "4", "--override", json.dumps(TINY), "--eval-sentences", "2",
                  "--rtf-batch", "4", "--workdir", str(tmp_path / "ws"), "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())

    mach = res["machine"]
    assert mach["cpu_count"] and mach["python"] and "loadavg_at_start" in mach and mach["slug"] == res["machine_slug"]
    assert res["machine_slug"].startswith("cpu") or "gpu" in mach

    run = res["run"]
    assert run["run_id"] and run["status_line"].startswith("[tts-prod] ")
    assert [run["stages"][s]["verdict"] for s in ("verify", "train", "export")] == ["PASS"] * 3
    assert res["training"]["fastpitch_steps"] == 4 and res["workspace_profile"]["fastpitch_steps"] == 4
    assert res["data"]["heldout"]["texts_also_in_train"] == 0 and res["data"]["heldout"]["clips"] == 2

    metrics, reasons = res["metrics"], res["metric_reasons"]
    for key in ("cer_synth", "cer_ratio", "spk_sim", "spk_margin", "mcd_db", "f0_corr", "dnsmos_ovrl",
                "dnsmos_ratio", "rtf_cpu"):
        assert key in metrics, key
        value = metrics[key]
        if value is None:
            assert reasons.get(key), f"{key} is null without a reason"
        else:
            assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)
    assert metrics["n_heldout"] == 2
    assert res["lane_validate"]["metrics"] and "nemo_onnx_mcd" in res["lane_validate"]["metrics"]
    batched = res["rtf_batched"]
    assert batched["batch"] == 4 and batched["rtf"] is not None and math.isfinite(batched["rtf"]) and batched["rtf"] > 0

    wall = res["wall_s"]
    for key in ("verify", "train", "export", "validate", "heldout_validate", "lane_run", "total"):
        assert isinstance(wall.get(key), (int, float)) and wall[key] > 0, (key, wall)
    assert wall["total"] >= wall["lane_run"] >= wall["train"]
