"""The export stage: the trained models become a voice bundle (lane.bundle.build_bundle: .nemo + ONNX,
tokenizer, model card, checksummed manifest, validated before it is swapped in), plus report media:
the bundle's file table and one sentence synthesized through ONNX alone."""

from __future__ import annotations

from pathlib import Path

from ..core.fsutil import atomic_write_text
from ..core.media import MediaItem, md_table, media_dir, save_wav, write_index
from ..core.stage import StageRun
from .params import StageParams

SAMPLE_TEXT = "The quick brown fox jumps over the lazy dog."


def run(st: StageRun, p: StageParams) -> Path:
    """Build, check and validate the bundle; returns its directory."""
    from ..bundle import build_bundle

    with st.guard():
        bundle = build_bundle(st, p.profile_config(), run_dir=st.run_dir, root=p.root_path,
                              voice_profile_id=p.voice_profile_id)
    write_media(st, bundle)
    return bundle


def write_media(st: StageRun, bundle: Path) -> None:
    """The bundle's files (bytes, sha256) and an ONNX-only sample for the report and the notebook."""
    from ..bundle.manifest import BundleManifest
    from ..bundle.voice import OnnxVoice

    manifest = BundleManifest.load(bundle)
    rows = [{"file": f"`{name}`", "bytes": f"{meta['bytes']:,}", "sha256": f"`{meta['sha256'][:16]}…`"}
            for name, meta in manifest.files.items()]
    mdir = media_dir(st.stage_dir)
    check = manifest.onnx_check
    atomic_write_text(mdir / "bundle.md", md_table(rows, ["file", "bytes", "sha256"])
                      + f"\nONNX vs PyTorch: max |log-mel diff| {check['max_abs_diff']:.3g} "
                      f"(tolerance {check['tolerance']}), frames {'equal' if check['frames_equal'] else 'differ'}\n")
    voice = OnnxVoice(bundle)
    save_wav(mdir / "sample.wav", voice.synthesize(SAMPLE_TEXT), voice.sample_rate)
    write_index(st.stage_dir, "export", [
        MediaItem("table", "media/bundle.md", f"{bundle.name}: files and hashes", "Bundle"),
        MediaItem("audio", "media/sample.wav", f"ONNX synthesis (no NeMo): {SAMPLE_TEXT}", "Bundle")])
