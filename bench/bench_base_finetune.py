#!/usr/bin/env python3
"""Fine-tune a base FastPitch .nemo on demo data through the lane's own training code, and score the result
the way the validate stage does (Griffin-Lim vocoder, NeMo synthesis).

The training path is production's: lane.nemo.fastpitch.fastpitch_config + run_fastpitch -> build_fastpitch with
init base (restore the base .nemo, override train_ds/validation_ds/optim/pitch stats, strict load). The
profile is the demo profile with `init: base` and the overrides given here. Scores: pocketsphinx jsgf CER on
the held-out clips (first --heldout of the val manifest) vs the recordings' own CER, CER on the fixed
sentences (configs/eval/sentences.txt), resemblyzer similarity of every synthesized clip to the mean of the
held-out recordings vs the impostor (data/eval/impostor.flac), MCD (DTW) to the recordings.

    .venv/bin/python bench/bench_base_finetune.py --base lane/assets/base_fastpitch/lane-base-fastpitch.nemo \\
        --data runs/<id>/train/data --steps 400 [--lr 5e-3 --warmup 50 --batch-size 8] [--out result.json]
    --base scratch trains the demo's tiny model from scratch instead (today's demo).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


class _Stage:
    """The bits of lane.core.stage.StageRun the training code calls."""

    def __init__(self, root: Path, stage_dir: Path, quiet: bool = True) -> None:
        self.root, self.stage_dir, self.run_id, self.quiet = root, stage_dir, "bench", quiet
        self.last_stats: dict = {}

    def stats(self, **kw) -> None:
        self.last_stats.update(kw)
        if not self.quiet:
            print("STATS", kw, flush=True)

    def progress(self, step, total, msg=None) -> None:
        pass

    def artifact(self, kind, path) -> str:
        return str(path)

    def check(self, *a, **k) -> bool:
        return True


def main() -> int:
    from lane.core.griffin_lim import DEFAULTS as GL

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True, help=".nemo to fine-tune, or 'scratch'")
    ap.add_argument("--data", required=True, type=Path, help="the data stage's runs/<id>/train/data")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--heldout", type=int, default=3)
    ap.add_argument("--n-iter", type=int, default=GL.n_iter)
    ap.add_argument("--power", type=float, default=GL.power)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--rescore", action="store_true", help="skip training: re-synthesize and score the work "
                    "folder's fastpitch.nemo (e.g. with another --power)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from lane import metrics as ev
    from lane.core.config import load_profile
    from lane.data.text import normalize_text
    from lane.nemo.fastpitch import audio_settings, fastpitch_config, run_fastpitch, train_settings
    from lane.nemo.synth import nemo_synthesize
    from lane.stages.validate import read_heldout  # noqa: F401  (same reader validate uses)

    profile = load_profile("demo", ROOT)
    fp = profile["train"]["fastpitch"]
    fp["max_steps"] = args.steps
    if args.base != "scratch":
        fp["init"] = "base"
    for k, v in (("lr", args.lr), ("warmup_steps", args.warmup), ("batch_size", args.batch_size)):
        if v is not None:
            fp["model"][k] = v
    stats = json.loads((args.data / "pitch_stats.json").read_text())
    sup = next(p for p in args.data.iterdir() if p.name.startswith("sup_"))
    ds = SimpleNamespace(train_manifest=args.data / "train_manifest.json", val_manifest=args.data / "val_manifest.json",
                         sup_data_dir=sup, pitch_stats=stats, pitch_settings=stats["settings"], sample_rate=22050,
                         dataset_sha256=None)
    work = Path(args.work or tempfile.mkdtemp(prefix="ft-"))
    work.mkdir(parents=True, exist_ok=True)
    st = _Stage(ROOT, work)
    settings = train_settings(profile)
    settings["checkpoint_every"] = 0
    cfg, _epoch = fastpitch_config(settings, ds, ROOT, work)
    base = None if args.base == "scratch" else {"path": str(Path(args.base).resolve()), "id": "bench"}
    nemo_path = work / "fastpitch.nemo"
    if args.rescore:
        import nemo.collections.tts.models as tts

        model = tts.FastPitchModel.restore_from(str(nemo_path), map_location="cpu").eval()
        steps, step_times, train_s = args.steps, [], float("nan")
    else:
        t0 = time.perf_counter()
        model, steps, step_times = run_fastpitch(st, settings, cfg, out_dir=work, base=base, resume=False)
        train_s = time.perf_counter() - t0
        model.eval()
        model.save_to(str(nemo_path))
    audio = audio_settings(model.cfg)
    rows = [json.loads(x) for x in (args.data / "val_manifest.json").read_text().splitlines() if x.strip()]
    held = rows[: args.heldout]
    sents = [ln.strip() for ln in (ROOT / "configs/eval/sentences.txt").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    texts = [normalize_text(r["text"]) for r in held] + [normalize_text(s) for s in sents]
    t1 = time.perf_counter()
    synth = nemo_synthesize({"fastpitch": str(nemo_path), "vocoder": "griffin_lim", "audio": audio,
                             "vocoder_params": {"n_iter": args.n_iter, "power": args.power}}, texts)
    synth_s = time.perf_counter() - t1
    sr = audio["sample_rate"]
    asr, enc = ev.Asr(), ev.SpeakerEncoder()
    refs = [ev.load_audio(r["audio_filepath"]) for r in held]
    cer_s = [asr.score(y, sr, t, "jsgf")["cer"] for y, t in zip(synth, texts, strict=True)]
    hyps = [asr.score(y, sr, t, "jsgf")["hyp"] for y, t in zip(synth[: len(held)], texts, strict=False)]
    cer_r = [asr.score(a, asr_sr, t, "jsgf")["cer"] for (a, asr_sr), t in zip(refs, texts, strict=False)]
    speaker = np.mean([enc.embed(a, s) for a, s in refs], axis=0)
    sims = [ev.cosine(enc.embed(y, sr), speaker) for y in synth]
    imp = ev.load_audio(ROOT / "data/eval/impostor.flac")
    imp_sim = ev.cosine(enc.embed(*imp), speaker)
    mcd = [ev.mcd_dtw(y, sr, a, s) for y, (a, s) in zip(synth, refs, strict=False)]
    nh = len(held)
    res = {"base": args.base, "steps": steps, "gl_power": args.power, "gl_n_iter": args.n_iter, "lr": fp["model"].get("lr"), "warmup": fp["model"].get("warmup_steps"),
           "batch_size": fp["model"].get("batch_size"), "train_s": round(train_s, 1),
           "median_step_s": round(sorted(step_times)[len(step_times) // 2], 4) if step_times else None,
           "synth_s": round(synth_s, 1),
           "cer_synth": float(np.mean(cer_s[:nh])), "cer_ref": float(np.mean(cer_r)),
           "cer_ratio": ev.safe_ratio(float(np.mean(cer_s[:nh])), float(np.mean(cer_r))),
           "cer_sentences": float(np.mean(cer_s[nh:])), "spk_sim": float(np.mean(sims)),
           "spk_sim_heldout": float(np.mean(sims[:nh])), "spk_sim_impostor": imp_sim,
           "spk_margin": float(np.mean(sims)) - imp_sim, "mcd_db": float(np.mean(mcd)),
           "final_loss": st.last_stats.get("t_loss"), "final_mel_loss": st.last_stats.get("t_mel_loss"),
           "hyps_heldout": hyps, "texts_heldout": texts[:nh], "work": str(work)}
    print(json.dumps(res, indent=1), flush=True)
    wav_dir = work / "wavs"
    wav_dir.mkdir(exist_ok=True)
    import soundfile as sf

    for k, y in enumerate(synth):
        sf.write(str(wav_dir / f"s{k:02d}.wav"), y, sr)
    if args.out:
        from benchlib import machine

        res["machine"] = machine()
        args.out.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
