"""Checkpoint selection while training (lane.nemo.select): the best held-out checkpoint is kept and
exported, not the last, the curve is recorded for the report, and `--resume` keeps the kept set
consistent with the weights it resumes from.

Training, synthesis and the evaluators' loading are real (a tiny FastPitch on espeak-ng data, the
example manifest's pocketsphinx and GE2E). The scorer's number is replaced by a fixed curve (best at
step 2 of 6), because an untrained tiny model scores noise and the tests must know which step is best;
the real scorer runs in tests/test_e2e_lane.py and in the validate tests' demo workspace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nemo_runs import REPO, make_root, tiny_profile

pytestmark = [pytest.mark.nemo, pytest.mark.slow]

CURVE = {2: 1.2, 4: 0.9, 6: 1.0}  # step -> score: the best is not the last


@pytest.fixture
def fixed_curve(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace the score (not the synthesis: the model is still synthesized every time) by CURVE."""
    from lane.nemo import select

    scored: list[int] = []
    real_score = select.HeldoutScorer.score

    def score(self: Any, model: Any) -> dict[str, Any]:
        real = real_score(self, model)  # synthesize + transcribe + embed, for real
        step = int(model.trainer.global_step)
        scored.append(step)
        return {**real, "score": CURVE[step]}

    monkeypatch.setattr(select.HeldoutScorer, "score", score)
    return scored


def _train(root: Path, ds: Any, steps: int, *, resume: bool = False) -> tuple[Any, dict[str, Any]]:
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    prof = tiny_profile(steps, init="scratch")
    prof["train"]["select"] = {"every": 2, "keep": 2, "n_texts": 1}
    st = StageRun.open("train", root=root, run_id="select-run")
    result = train_voice(st, prof, ds, out_dir=st.stage_dir / "model",
                         weights_manifest=str(REPO / "configs/voice/weights-manifest.example.json"),
                         allow_from_scratch=True, resume=resume)
    return result, st.finish()


def _weights(path: Path) -> dict[str, Any]:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def test_best_checkpoint_is_exported_and_resume_keeps_the_kept_set(tiny_ds, fixed_curve, tmp_path):
    import torch
    from nemo.collections.tts.models import FastPitchModel

    root = make_root(tmp_path / "ws")
    stage = root / "runs" / "select-run" / "train"
    top = stage / "model" / "checkpoints" / "fastpitch" / "top"

    # 1. the first 4 steps, as if the run had been killed after its step-4 checkpoint, having scored a
    # step 5 that training will redo (a row and a kept file the resume must forget)
    _train(root, tiny_ds, 4)
    state = json.loads((top / "selection.json").read_text())
    assert [h["step"] for h in state["history"]] == [2, 4]
    state["history"].append({"step": 5, "score": 9.0, "cer": 0.0, "spk_sim": 1.0, "kept": True,
                             "file": "step_0000005.pt"})
    (top / "selection.json").write_text(json.dumps(state))
    torch.save({}, top / "step_0000005.pt")
    (stage / "outputs.json").unlink()  # the stage never finished

    # 2. resume to 6 steps
    fixed_curve.clear()
    result, res = _train(root, tiny_ds, 6, resume=True)
    assert fixed_curve == [6], "resume scores only the steps it trains again"
    record = json.loads((stage / "select.json").read_text())
    assert [h["step"] for h in record["history"]] == [2, 4, 6]
    assert record["best_step"] == 2 and record["last_step"] == 6
    assert [h["step"] for h in record["history"] if h["kept"]] == [2, 6]  # keep: 2 (scores 1.2 and 1.0)
    assert sorted(p.name for p in top.glob("step_*.pt")) == ["step_0000002.pt", "step_0000006.pt"]
    stats = res["stats"]
    assert stats["select_best_step"] == 2 and stats["select_evals"] == 3
    assert stats["select_share"] > 0 and stats["select_wall_s"] > 0
    art = next(a for a in res["artifacts"] if a["kind"] == "checkpoint_selection")
    assert art["path"].endswith("train/select.json")
    assert (stage / "media" / "selection.png").stat().st_size > 1000

    # 3. what was exported is step 2's weights, not step 6's
    exported = FastPitchModel.restore_from(result.fastpitch_nemo, map_location="cpu").state_dict()
    best, last = _weights(top / "step_0000002.pt"), _weights(top / "step_0000006.pt")
    name = next(k for k in best if k.endswith("weight") and best[k].ndim == 2)
    assert torch.equal(exported[name], best[name]) and not torch.equal(best[name], last[name])


def test_selection_off_keeps_the_last_step(tiny_ds, tmp_path):
    from lane.core.stage import StageRun
    from lane.nemo.train import train_voice

    root = make_root(tmp_path / "ws")
    prof = tiny_profile(2, init="scratch")
    prof["train"]["select"] = {"every": 0}
    st = StageRun.open("train", root=root, run_id="no-select")
    train_voice(st, prof, tiny_ds, out_dir=st.stage_dir / "model", weights_manifest=None, allow_from_scratch=True,
                resume=False)
    res = st.finish()
    assert not (st.stage_dir / "select.json").exists()
    assert "select_best_step" not in res["stats"]
