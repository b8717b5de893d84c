"""First contact: the seed's command on a user's own recording, with no transcript anywhere. The demo's
transcript must not be paired with it; the configured ASR transcribes the clips, and the dataset
manifest and the data stage's table say per clip where the text came from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.nemo

# Not the demo's sentences: aligning the demo transcript to these would reject every clip.
SENTENCES = [
    "My grandmother kept bees behind the old stone barn.",
    "Every summer we carried the honey down to the market.",
    "The road was narrow, and the cart was heavy.",
    "She sold the jars before noon and bought us bread.",
    "In the evening we sat by the window and counted the stars.",
    "Her stories were long, but nobody ever wanted them to end.",
    "When the snow came, the bees slept and so did we.",
    "I still remember the smell of wax in the kitchen.",
    "Nobody in the village made candles as good as hers.",
    "Years later I planted a garden of my own.",
    "The first hive I built fell apart in the rain.",
    "The second one is still standing by the gate.",
]

TINY_PROFILE = """\
# a test profile: the demo's shape, training only a few steps
extends: demo
data:
  min_total_s: 20
train:
  checkpoint_every: 2
  stats_every: 1
  min_epoch_steps: 2
  fastpitch:
    max_steps: 2
    model: {d_model: 32, n_layer_enc: 1, n_layer_dec: 1, d_head: 16, d_inner: 64, predictor_filter: 32,
            batch_size: 4, warmup_steps: 1}
"""


def _recording(path: Path) -> Path:
    """A fresh long-form recording: espeak-ng sentences with pauses between them, as FLAC."""
    from lane.data.espeak import concat, speak

    parts = [speak(s, path.parent / "parts" / f"{i:02d}.wav", gap_ms=700) for i, s in enumerate(SENTENCES)]
    return concat(parts, path)


def test_seed_command_transcribes_a_fresh_recording(ws: Path, seed_script: Callable[..., Any]) -> None:
    rec = _recording(ws / "data" / "my_recording.flac")
    assert not rec.with_suffix(".txt").exists()
    (ws / "configs" / "profiles" / "first_contact.yaml").write_text(TINY_PROFILE, encoding="utf-8")
    done = seed_script(ws, "train_production_voice.sh", "--stages", "verify,train",
                       env={"AUDIO_PATH": "data/my_recording.flac", "LANE_PROFILE": "first_contact",
                            "LANE_ALLOW_FROM_SCRATCH": "1"}, timeout=900)
    assert done.rc == 0, (done.out[-3000:], done.err[-3000:])
    manifest = json.loads((ws / "artifacts" / "dataset_manifest.tts_prod_train_nemo.json").read_text())
    assert manifest["transcript"] is None and manifest["audio"] == "data/my_recording.flac"
    clips = manifest["clips"]
    kept = [c for c in clips if c.get("kept")]
    assert len(kept) >= len(SENTENCES) // 2, [(c.get("reason"), c.get("text")) for c in clips]
    assert {c["text_source"] for c in kept} == {"asr"}
    assert not any(c.get("reason") == "alignment_low_confidence" for c in clips)
    # the ASR heard these words, not the demo's
    heard = " ".join(c["text"] for c in kept)
    ours = ("road", "nobody", "years", "later", "rain", "window", "bees", "honey", "market", "garden", "snow",
            "kitchen", "stone", "bread", "stars", "stories", "gate", "hive")
    assert sum(f" {w} " in f" {heard} " for w in ours) >= 4, heard
    table = next((ws / "runs").glob("*/train/media/data_text_sources.md")).read_text()
    assert "asr" in table


@pytest.mark.parametrize("profile,needle", [
    ("extends: demo\ntrain:\n  fastpitch:\n    model: {d_modle: 64}\n", "d_modle"),
    ("extends: demo\ntrain:\n  fastpitch:\n    tokenizer: phonemes\n", "train.fastpitch.tokenizer"),
    ("extends: demo\ntrain:\n  vocoder:\n    type: waveglow\n", "train.vocoder.type"),
    ("extends: demo\ntrain:\n  vocoder:\n    type: hifigan\n    hifigan: {model: {lr: 1.0e-4, sampling_rate: 1}}\n",
     "sampling_rate"),
    ("extends: demo\neval:\n  max_helduot: 5\n", "max_helduot"),
    ("extends: demo\neval:\n  sentences: configs/eval/missing.txt\n", "missing.txt"),
    ("extends: demo\neval:\n  thresholds: {mcd_db: {max: ten}}\n", "mcd_db"),
    # the gate is free decoding: a profile cannot bring back the grammar-constrained CER as the gate
    ("extends: demo\neval:\n  asr_mode: jsgf\n", "eval.asr_mode is gone"),
    ("extends: demo\neval:\n  evaluators: {vocoder: x}\n", "eval.evaluators: unknown key(s) ['vocoder']"),
    ("extends: demo\ntrain:\n  select: {every: -1}\n", "train.select.every"),
])
def test_profile_mistakes_stop_the_run_before_any_stage(ws: Path, lane_cli: Callable[..., Any], profile: str,
                                                        needle: str) -> None:
    """A typo in a profile ends the run at preflight (config_invalid, exit 3), not hours later in the
    stage that reads the setting; nothing under runs/ is written."""
    (ws / "configs" / "profiles" / "typo.yaml").write_text(profile, encoding="utf-8")
    done = lane_cli(ws, "run", "--profile", "typo", "--audio", "data/speech.wav")
    assert done.rc == 3, (done.out, done.err)
    st = done.train_status()
    assert st["reason"] == "config_invalid" and needle in st["detail"]
    assert not (ws / "runs").exists()
