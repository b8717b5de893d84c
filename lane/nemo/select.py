"""Keep the best FastPitch checkpoint, not the last one.

Every `train.select.every` steps (and at the last step) `CheckpointSelector` synthesizes a few sentences
the voice never trained on (`train.select.texts`, none of them in the training data nor in the
validate stage's texts) with the current weights and the profile's cheap vocoder (Griffin-Lim), and
scores them with the cheap offline evaluators of the weights manifest:

    score = (1 - min(CER, 1)) + speaker similarity           (higher is better)

CER is pocketsphinx decoding freely (not told the sentence); speaker similarity is GE2E's cosine to the
mean embedding of the held-out recordings (the val manifest). Intelligibility and identity weigh the
same: one point of CER is one point of cosine. Without held-out recordings the similarity term is 0.

The `keep` best checkpoints (weights only) stay in checkpoints/fastpitch/top/ with selection.json (the
whole curve); `finish` loads the best into the model, so the train stage exports it, and writes the
curve (train/select.json, certified as an artifact, and train/media/selection.png) for the report. On
`lane run --resume` the selector reads selection.json back and forgets what came after the step it
resumes from (those steps are trained again), so the kept set stays consistent with the weights.

Imports lightning at module level: import this module only where training happens.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TypedDict

import lightning.pytorch as pl

from ..core.fsutil import atomic_write_json
from ..core.griffin_lim import GriffinLimParams
from ..core.reasons import LaneError
from ..core.stage import StageRun

FORMULA = "(1 - min(CER, 1)) + speaker similarity"


class SelectionScore(TypedDict):
    """A checkpoint's score: CER of the held-out texts, speaker similarity (None without an encoder)
    and the combined score (FORMULA)."""

    cer: float
    spk_sim: float | None
    score: float


class HeldoutScorer:
    """Synthesis of the selection texts with a FastPitch in training, and its score."""

    def __init__(self, texts: list[str], refs: list[tuple[Any, int]], weights_manifest: str | None,
                 root: Path, vocoder: GriffinLimParams) -> None:
        from ..metrics import load_evaluators
        from ..text.normalize import normalize

        self.texts = [(t, normalize(t)) for t in texts]
        self.vocoder = vocoder
        evs = load_evaluators(weights_manifest, root, roles=("asr", "speaker_encoder"))
        if evs.asr is None:
            st = evs.status["asr"]
            raise LaneError(st.state, f"checkpoint selection needs the ASR: {st.detail}")
        self.asr, self.speaker = evs.asr, evs.speaker
        self.evaluators = ", ".join(f"{s.eval_class} ({','.join(s.ids)})" for s in evs.status.values() if s.ok)
        self.speaker_emb = self.speaker.embed_speaker(refs) if self.speaker is not None and refs else None

    def synthesize(self, model: Any) -> tuple[list[Any], int]:
        from .synth import griffin_lim_synthesis

        audio = griffin_lim_synthesis(model, [s for _, s in self.texts], self.vocoder)
        return audio, int(model.cfg.sample_rate)

    def score(self, model: Any) -> SelectionScore:
        import numpy as np

        from ..metrics import cosine

        audio, sr = self.synthesize(model)
        cers = [self.asr.score(a, sr, spoken)["cer"] for a, (_, spoken) in zip(audio, self.texts, strict=True)]
        cer = float(np.mean(cers))
        sim = None
        if self.speaker is not None and self.speaker_emb is not None:
            sim = float(np.mean([cosine(self.speaker.embed(a, sr), self.speaker_emb) for a in audio]))
        return SelectionScore(cer=round(cer, 4), spk_sim=None if sim is None else round(sim, 4),
                              score=round((1.0 - min(cer, 1.0)) + (sim or 0.0), 4))


def read_texts(path: Path, n: int) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LaneError("config_invalid", f"train.select.texts {path}: {exc}") from None
    texts = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")][:n]
    if not texts:
        raise LaneError("config_invalid", f"train.select.texts {path} holds no sentence")
    return texts


def read_refs(val_manifest: Any, n: int) -> list[tuple[Any, int]]:
    """The first `n` held-out recordings (audio, rate): the speaker the similarity is measured against."""
    from ..metrics import load_audio

    if not val_manifest or not Path(val_manifest).is_file():
        return []
    rows = [json.loads(ln) for ln in Path(val_manifest).read_text(encoding="utf-8").splitlines() if ln.strip()]
    return [load_audio(r["audio_filepath"]) for r in rows[:n]]


class CheckpointSelector(pl.Callback):
    """Score the model every `every` steps and at the end; keep the `keep` best weights."""

    def __init__(self, st: StageRun, scorer: HeldoutScorer, cfg: dict[str, Any], total: int, top_dir: Path) -> None:
        self.st, self.scorer, self.total, self.top_dir = st, scorer, total, top_dir
        self.every, self.keep = int(cfg["every"]), max(1, int(cfg["keep"]))
        self.cfg = cfg
        self.history: list[dict[str, Any]] = []
        self.wall_s = 0.0
        self.state_path = top_dir / "selection.json"

    # ----------------------------------------------------------------------------------- state
    def _kept(self) -> list[dict[str, Any]]:
        return [h for h in self.history if h.get("kept")]

    def _save_state(self) -> None:
        atomic_write_json(self.state_path, {"history": self.history, "wall_s": round(self.wall_s, 3)})

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        """On resume: the curve up to the step training restarts from; later kept weights are dropped."""
        self.top_dir.mkdir(parents=True, exist_ok=True)
        start = int(trainer.global_step)
        if self.state_path.exists():
            old = json.loads(self.state_path.read_text(encoding="utf-8"))
            self.wall_s = float(old.get("wall_s", 0.0))
            for h in old.get("history", []):
                if int(h["step"]) <= start:
                    self.history.append(h)
        keep_files = {h["file"] for h in self._kept()}
        for f in self.top_dir.glob("step_*.pt"):
            if f.name not in keep_files:
                f.unlink()
        self._save_state()

    # ----------------------------------------------------------------------------------- scoring
    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = int(trainer.global_step)
        due = (self.every > 0 and step % self.every == 0) or step >= self.total
        if not due or any(h["step"] == step for h in self.history) or not trainer.is_global_zero:
            return
        t0 = time.perf_counter()
        was_training = pl_module.training
        pl_module.eval()
        try:
            import torch

            with torch.no_grad():
                row: dict[str, Any] = {"step": step, **self.scorer.score(pl_module)}
        finally:
            pl_module.train(was_training)
        self._keep(row, pl_module)
        self.wall_s += time.perf_counter() - t0
        self._save_state()
        self.st.stats(select_step=step, select_score=row["score"], select_cer=row["cer"],
                      **({"select_spk_sim": row["spk_sim"]} if row["spk_sim"] is not None else {}))

    def _keep(self, row: dict[str, Any], module: Any) -> None:
        """Add `row`; keep its weights if it is among the best `keep` (ties: the later step)."""
        import torch

        ranked = sorted([*self._kept(), row], key=lambda h: (h["score"], h["step"]), reverse=True)
        winners = ranked[: self.keep]
        row["kept"] = row in winners
        row["file"] = f"step_{row['step']:07d}.pt"
        if row["kept"]:
            tmp = self.top_dir / f".{row['file']}.tmp"
            torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, tmp)
            os.replace(tmp, self.top_dir / row["file"])
        for h in self._kept():
            if h is not row and h not in winners:
                h["kept"] = False
                (self.top_dir / h["file"]).unlink(missing_ok=True)
        self.history.append(row)

    # ----------------------------------------------------------------------------------- the end
    def best(self) -> dict[str, Any] | None:
        kept = self._kept()
        return max(kept, key=lambda h: (h["score"], h["step"])) if kept else None

    def finish(self, model: Any, train_wall_s: float) -> dict[str, Any]:
        """Load the best kept weights into `model`; the record for select.json and the report."""
        import torch

        best = self.best()
        if best is None:
            raise LaneError("checkpoint_missing", f"checkpoint selection kept no checkpoint in {self.top_dir}")
        state = torch.load(self.top_dir / best["file"], map_location="cpu", weights_only=True)
        model.load_state_dict(state, strict=True)
        base = max(train_wall_s - self.wall_s, 1e-9)
        return {"schema": "lane.checkpoint_selection/1", "formula": FORMULA, "every": self.every, "keep": self.keep,
                "n_texts": len(self.scorer.texts), "texts": [t for t, _ in self.scorer.texts],
                "vocoder": "Griffin-Lim", "evaluators": self.scorer.evaluators,
                "best_step": best["step"], "best_score": best["score"],
                "last_step": max(h["step"] for h in self.history), "wall_s": round(self.wall_s, 2),
                "share": round(self.wall_s / base, 4), "history": self.history}


def plot_selection(record: dict[str, Any], png: Path) -> bool:
    """Score per evaluated step, the kept checkpoints and the exported one marked."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    hist = record["history"]
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot([h["step"] for h in hist], [h["score"] for h in hist], "o-", color="#555", label="held-out score")
    kept = [h for h in hist if h.get("kept")]
    ax.plot([h["step"] for h in kept], [h["score"] for h in kept], "o", color="#2a7", label="kept")
    ax.plot([record["best_step"]], [record["best_score"]], "*", ms=16, color="#c30", label="exported")
    ax.set_xlabel("step")
    ax.set_ylabel(FORMULA, fontsize=8)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return True


def make_selector(st: StageRun, settings: dict[str, Any], ds: Any, out_dir: Path, weights_manifest: str | None,
                  root: Path) -> CheckpointSelector | None:
    """The selector the profile asks for (None when `train.select.every` is 0)."""
    from .fastpitch import ds_get

    cfg = settings["select"]  # lane.nemo.fastpitch.train_settings fills in the defaults
    if int(cfg["every"]) <= 0:
        return None
    texts_path = Path(str(cfg["texts"]))
    texts = read_texts(texts_path if texts_path.is_absolute() else root / texts_path, int(cfg["n_texts"]))
    vocoder = GriffinLimParams.of(settings["vocoder"].get("griffin_lim"))
    try:
        scorer = HeldoutScorer(texts, read_refs(ds_get(ds, "val_manifest"), int(cfg["n_refs"])), weights_manifest,
                               root, vocoder)
    except LaneError as err:  # no usable ASR in the manifest: train as before, keeping the last step
        print(f"checkpoint selection off: {err.code}: {err.detail}", flush=True)
        st.stats(select_skipped=f"{err.code}: {err.detail}"[:200])
        return None
    total = int(settings["fastpitch"]["max_steps"])
    return CheckpointSelector(st, scorer, cfg, total, out_dir / "checkpoints" / "fastpitch" / "top")
