"""voice_bundle/1: building one.

A bundle is a directory `bundles/<voice_profile_id>/voice_bundle/`::

    manifest.json        bundle_version, files {name: {sha256, bytes}}, models, audio, tokenizer,
                         base weights + licences, dataset hash, run id, commit, onnx check, validation
    fastpitch.onnx       FastPitch (text, pitch, pace) -> (spect, num_frames, ...)
    fastpitch.nemo       the trained FastPitch (NeMo restore_from)
    vocoder.onnx         HiFi-GAN generator (only when the vocoder is HiFi-GAN)
    hifigan.nemo         generator-only HiFi-GAN .nemo (restore_from(strict=False)), when HiFi-GAN
    tokenizer.json       the tokenizer description lane.bundle.voice replays without NeMo
    MODEL_CARD.md        data summary, base weights and licences, training config, run id, commit
    validation.json      written later by the validate stage (write_validation)

`build_bundle` assembles it in a temporary sibling directory, validates it, and only then renames it
into place, so a crash never leaves a half bundle and an older valid bundle survives a failed build.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..core.fsutil import atomic_write_text, sha256_file
from ..core.paths import commit_of
from ..core.reasons import LaneError
from ..core.stage import StageRun
from ..text.tokenizers import Speaks
from .check import UNLISTED, validate_voice_bundle
from .manifest import BUNDLE_VERSION, BundleManifest, OnnxCheck
from .voice import speaks_summary

CHECK_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! This is a test of the voice.",
    "Is it twelve o'clock yet?",
]
DEFAULT_ONNX_TOLERANCE = 1e-3


def _git_commit(root: Path) -> dict[str, Any]:
    head = commit_of(root)
    return {"sha": head.sha, "dirty": head.dirty}


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def _model_card(manifest: dict[str, Any], outputs: dict[str, Any]) -> str:
    from ..consent.summary import card_lines

    bw = manifest["base_weights"]
    weights = "\n".join(f"- {w.get('role')}: `{Path(str(w.get('path', ''))).name}` sha256 `{w.get('sha256')}`, "
                        f"licence: {w.get('license') or 'unknown'}" for w in bw) or \
        "- none: trained from scratch (not promotable)"
    settings = outputs.get("settings") or {}
    fp = settings.get("fastpitch") or {}
    return f"""# Voice model card: {manifest['voice_profile_id']}

- Bundle format: `{manifest['bundle_version']}`
- Run id: `{manifest['run_id']}`
- Commit: `{manifest['commit'].get('sha')}`{' (dirty tree)' if manifest['commit'].get('dirty') else ''}
- Created: {manifest['created_at']}
- Promotable: {manifest['training']['promotable']}

## Models
- Spectrogram generator: NeMo FastPitch (learn_alignment), {manifest['training']['steps']} training steps,
  init `{fp.get('init')}`, model knobs `{json.dumps(fp.get('model') or {}, sort_keys=True)}`.
- Vocoder: {manifest['models']['vocoder']['type']}.
{chr(10).join('- ' + line for line in speaks_summary(manifest['tokenizer']))}
- Sample rate: {manifest['sample_rate']} Hz.

## Data
- Training manifest sha256: `{manifest['dataset'].get('sha256')}`
- Training manifest: `{manifest['dataset'].get('train_manifest')}`

## Base weights and licences
{weights}

## Consent
{chr(10).join(card_lines(manifest.get('consent')))}

## Training configuration
```json
{json.dumps(settings, indent=2, sort_keys=True, default=str)}
```

## ONNX check
FastPitch ONNX vs PyTorch on {len(CHECK_SENTENCES)} fixed sentences: max |log-mel diff|
{manifest['onnx_check']['max_abs_diff']:.3g} (tolerance {manifest['onnx_check']['tolerance']}), frame counts
{'equal' if manifest['onnx_check']['frames_equal'] else 'DIFFER'}.
"""


def onnx_vs_torch(model: Any, onnx_path: Path, sentences: list[str]) -> OnnxCheck:
    """Run FastPitch in PyTorch and in onnxruntime on the same fixed token inputs."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from ..nemo.tokenizer import nemo_encode

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    max_diff, frames_equal = 0.0, True
    for text in sentences:
        ids = nemo_encode(model.vocab, text)
        t = torch.tensor([ids], dtype=torch.long)
        pitch = torch.zeros(t.shape, dtype=torch.float32)
        pace = torch.ones(t.shape, dtype=torch.float32)
        with torch.no_grad():
            spect, num_frames, *_ = model.forward_for_export(text=t, pitch=pitch, pace=pace)
        o_spect, o_frames = sess.run(["spect", "num_frames"], {"text": t.numpy(), "pitch": pitch.numpy(),
                                                               "pace": pace.numpy()})[:2]
        n_t, n_o = int(num_frames[0]), int(o_frames[0])
        if n_t != n_o:
            frames_equal = False
        n = min(n_t, n_o)
        diff = float(np.max(np.abs(spect[0, :, :n].numpy() - o_spect[0, :, :n]))) if n else 0.0
        max_diff = max(max_diff, diff)
    return OnnxCheck(max_abs_diff=max_diff, frames_equal=frames_equal, sentences=len(sentences))


def _export_hifigan(voc_path: str, tmp: Path, audio: dict[str, Any]) -> dict[str, Any]:
    import torch
    from nemo.collections.tts.models import HifiGanModel

    voc = HifiGanModel.restore_from(voc_path, map_location="cpu", strict=False)
    voc.eval()
    gen_nemo = tmp / "hifigan.nemo"
    voc.mpd = None  # generator-only artifact: restore_from(strict=False) rebuilds fresh discriminators
    voc.msd = None
    voc.save_to(str(gen_nemo))
    voc.export(str(tmp / "vocoder.onnx"))
    # agreement of the exported generator on a fixed mel
    import numpy as np
    import onnxruntime as ort

    g = torch.Generator().manual_seed(0)
    mel = torch.randn((1, int(audio["n_mels"]), 40), generator=g) - 4.0
    with torch.no_grad():
        ref = voc.forward_for_export(spec=mel).numpy()
    sess = ort.InferenceSession(str(tmp / "vocoder.onnx"), providers=["CPUExecutionProvider"])
    out = sess.run(None, {sess.get_inputs()[0].name: mel.numpy()})[0]
    return {"type": "hifigan", "onnx": "vocoder.onnx", "nemo": "hifigan.nemo",
            "nemo_load": "HifiGanModel.restore_from(path, strict=False)  # generator only",
            "onnx_max_abs_diff": float(np.max(np.abs(ref - out)))}


def _fastpitch(st: StageRun, tts: Any, outputs: dict[str, Any], tmp: Path, export_cfg: dict[str, Any],
               tol: float) -> tuple[Any, dict[str, Any]]:
    """Restore the trained FastPitch, copy its .nemo, export ONNX and check it against PyTorch."""
    st.progress(1, 5, "restoring FastPitch")
    try:
        model = tts.FastPitchModel.restore_from(outputs["fastpitch_nemo"], map_location="cpu")
        model.eval()
        shutil.copy2(outputs["fastpitch_nemo"], tmp / "fastpitch.nemo")
        st.progress(2, 5, "exporting FastPitch ONNX")
        model.export(str(tmp / "fastpitch.onnx"))
    except LaneError:
        raise
    except Exception as exc:
        raise LaneError("export_failed", f"FastPitch export failed: {type(exc).__name__}: {exc}") from exc
    st.progress(3, 5, "checking ONNX against PyTorch")
    check = onnx_vs_torch(model, tmp / "fastpitch.onnx", list(export_cfg.get("check_sentences") or CHECK_SENTENCES))
    onnx_ok = check["frames_equal"] and check["max_abs_diff"] <= tol
    st.check("onnx_matches_pytorch", onnx_ok,
             f"max |log-mel diff| {check['max_abs_diff']:.3g} (tolerance {tol}), frames "
             f"{'equal' if check['frames_equal'] else 'differ'} on {check['sentences']} fixed sentences",
             value=round(check["max_abs_diff"], 8), threshold=tol)
    if not onnx_ok:
        raise LaneError("onnx_mismatch", f"FastPitch ONNX differs from PyTorch: max diff {check['max_abs_diff']:.3g}"
                        f" > {tol} or frame counts differ")
    return model, {**check, "tolerance": tol, "ok": onnx_ok}


def _tokenizer(st: StageRun, model: Any, tmp: Path, outputs: dict[str, Any]) -> tuple[dict[str, Any], Speaks]:
    """tokenizer.json and, for phoneme voices, the G2P's dictionary and heteronym list taken from the
    model's own tokenizer; then proof that the NeMo-free replay (lane.text) gives NeMo's token ids on
    the check sentences, raw and normalised. Returns (description, what the voice speaks)."""
    from ..nemo.tokenizer import export_tokenizer, nemo_encode
    from ..text.normalize import normalize
    from ..text.tokenizers import TokenizerError, load_tokenizer

    licence = next((b.get("license") for b in outputs.get("base_weights") or [] if b.get("role") == "base_spectrogram"),
                   None)
    g2p_cfg = model.cfg.text_tokenizer.get("g2p") or {}
    provenance = {key: {"source": str(g2p_cfg.get(field) or "the model's tokenizer"), "licence": licence}
                  for key, field in (("dictionary", "phoneme_dict"), ("heteronyms", "heteronyms"))}
    desc = export_tokenizer(model.vocab, tmp, provenance=provenance)
    if not desc.get("runnable_without_nemo"):
        raise LaneError("export_failed", f"the model's tokenizer {desc.get('class')} cannot run without NeMo: "
                        + "; ".join(desc.get("unsupported") or ["not replayable"]))
    try:
        replay = load_tokenizer(desc, tmp)
    except TokenizerError as exc:
        raise LaneError("export_failed", f"tokenizer.json cannot be replayed: {exc}") from exc
    texts = [*CHECK_SENTENCES, *(normalize(s) for s in CHECK_SENTENCES)]
    same = all(replay.encode(t) == nemo_encode(model.vocab, t) for t in texts)
    st.check("tokenizer_replay_matches", same, f"lane.text replays NeMo's {desc.get('class')} exactly on "
             f"{len(texts)} check texts (raw and normalised)")
    if not same:
        raise LaneError("export_failed", "tokenizer.json replay differs from the NeMo tokenizer")
    return desc, replay.describe()


def _vocoder(st: StageRun, outputs: dict[str, Any], tmp: Path, audio: dict[str, Any], tol: float) -> dict[str, Any]:
    """Griffin-Lim's parameters, or the HiFi-GAN generator exported (.nemo + ONNX) and checked."""
    st.progress(4, 5, "vocoder")
    if outputs.get("vocoder", "griffin_lim") == "griffin_lim":
        return {"type": "griffin_lim", "params": dict(outputs.get("vocoder_params") or {})}
    try:
        vocoder = _export_hifigan(outputs["vocoder"], tmp, audio)
    except Exception as exc:
        raise LaneError("export_failed", f"HiFi-GAN export failed: {type(exc).__name__}: {exc}") from exc
    st.check("vocoder_onnx_matches_pytorch", vocoder["onnx_max_abs_diff"] <= tol,
             f"max |audio diff| {vocoder['onnx_max_abs_diff']:.3g} (tolerance {tol})",
             value=round(vocoder["onnx_max_abs_diff"], 8), threshold=tol)
    return vocoder


def _manifest(st: StageRun, root: Path, outputs: dict[str, Any], profile: dict[str, Any], voice_profile_id: str,
              tok: dict[str, Any], vocoder: dict[str, Any], onnx_check: dict[str, Any]) -> dict[str, Any]:
    """The manifest before its files section (filled once every file is in place)."""
    audio = dict(outputs.get("audio") or {})
    return {
        "bundle_version": BUNDLE_VERSION,
        "voice_profile_id": voice_profile_id,
        "run_id": st.run_id if getattr(st, "run_id", None) else outputs.get("run_id"),
        "train_run_id": outputs.get("run_id"),
        "created_at": _now(),
        "commit": _git_commit(root),
        "sample_rate": int(audio.get("sample_rate", 22050)),
        "audio": audio,
        "models": {
            "spectrogram": {"type": "fastpitch", "onnx": "fastpitch.onnx", "nemo": "fastpitch.nemo",
                            "inputs": ["text", "pitch", "pace"], "outputs": ["spect", "num_frames"]},
            "vocoder": vocoder,
        },
        "tokenizer": {"path": "tokenizer.json", "class": tok.get("class"), "type": tok.get("type"),
                      "n_tokens": len(tok.get("tokens", [])),
                      "runnable_without_nemo": bool(tok.get("runnable_without_nemo"))},
        "base_weights": [{k: (str(v) if isinstance(v, Path) else v) for k, v in w.items()}
                         for w in outputs.get("base_weights") or []],
        "dataset": dict(outputs.get("dataset") or {}),
        "training": {"steps": int(outputs.get("steps", 0)), "promotable": bool(outputs.get("promotable")),
                     "profile": profile.get("name")},
        "onnx_check": onnx_check,
        "consent": outputs.get("consent"),
        "files": {},
        "validation": None,
    }


def assemble(st: StageRun, profile: dict[str, Any], outputs: dict[str, Any], tmp: Path, root: Path,
             voice_profile_id: str) -> dict[str, Any]:
    """Every bundle file into `tmp` (an empty directory), then the manifest; validated. Returns the manifest."""
    from ..nemo.runtime import import_nemo, quiet_nemo

    tts = import_nemo()
    quiet_nemo()
    export_cfg = dict(profile.get("export") or {})
    tol = float(export_cfg.get("onnx_tolerance", DEFAULT_ONNX_TOLERANCE))
    model, onnx_check = _fastpitch(st, tts, outputs, tmp, export_cfg, tol)
    tok, speaks = _tokenizer(st, model, tmp, outputs)
    vocoder = _vocoder(st, outputs, tmp, dict(outputs.get("audio") or {}), tol)
    manifest = _manifest(st, root, outputs, profile, voice_profile_id, tok, vocoder, onnx_check)
    manifest["tokenizer"]["speaks"] = speaks
    atomic_write_text(tmp / "MODEL_CARD.md", _model_card(manifest, outputs))
    manifest["files"] = {str(p.relative_to(tmp)): _file_entry(p) for p in sorted(tmp.rglob("*"))
                         if p.is_file() and p.name not in UNLISTED}
    BundleManifest(tmp, manifest).save()
    st.progress(5, 5, "validating bundle")
    result = validate_voice_bundle(tmp, root)
    st.check("bundle_validated", result.ok, "schema, sha256 and sizes of every file" if result.ok
             else "; ".join(result.problems[:3]))
    if not result.ok:
        raise LaneError("bundle_invalid", f"new bundle failed validation: {result.problems[0]}")
    for f in tmp.rglob("*"):
        f.chmod(0o755 if f.is_dir() else 0o644)
    tmp.chmod(0o755)
    return manifest


def _consent(run_dir: Path, root: Path) -> dict[str, Any] | None:
    """The consent record the verify stage of this run certified (path, sha256, speaker, use)."""
    res_path = run_dir / "verify" / "result.json"
    if not res_path.is_file():
        return None
    res = json.loads(res_path.read_text(encoding="utf-8"))
    art = next((a for a in res.get("artifacts") or [] if a.get("kind") == "consent_record"), None)
    if art is None:
        return None
    from ..consent.summary import report_consent

    full = report_consent(root, res) or {}
    return {k: full.get(k) for k in ("path", "sha256", "speaker", "permitted_use", "kind", "challenge", "recorded_at")
            if full.get(k) is not None}


def build_bundle(st: StageRun, profile: dict[str, Any], *, run_dir: str | os.PathLike[str],
                 root: str | os.PathLike[str], voice_profile_id: str) -> Path:
    """Export the trained models of `run_dir` into the run's candidate bundle,
    bundles/<voice_profile_id>/candidates/<run_id>/: assembled in a temporary sibling, validated, then
    renamed into place. The live voice (bundles/<id>/voice_bundle) is never touched here: only a GO
    verdict promotes a candidate (lane.promotion)."""
    from .store import candidate_dir, replace_candidate

    rootp = Path(root).resolve()
    outputs_path = Path(run_dir) / "train" / "outputs.json"
    if not outputs_path.exists():
        raise LaneError("export_failed", f"{outputs_path} is missing: the train stage did not finish")
    outputs = json.loads(outputs_path.read_text(encoding="utf-8"))
    outputs["consent"] = _consent(Path(run_dir), rootp)
    final = candidate_dir(rootp, voice_profile_id, st.run_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(".build-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = final.parent / f".build-{st.run_id}-{os.getpid()}-{os.urandom(3).hex()}"
    tmp.mkdir()
    try:
        manifest = assemble(st, profile, outputs, tmp, rootp, voice_profile_id)
        replace_candidate(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    st.artifact("voice_bundle_manifest", final / "manifest.json")
    for name in manifest["files"]:  # every shipped file is certified too, so the ledger sees a swapped model
        st.artifact("bundle_file", final / name)
    st.stats(bundle_bytes=sum(int(f["bytes"]) for f in manifest["files"].values()),
             onnx_max_abs_diff=manifest["onnx_check"]["max_abs_diff"])
    return final


def _now() -> str:
    from ..core.stage import now_iso

    return now_iso()
