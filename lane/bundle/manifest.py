"""A voice bundle's manifest.json as one typed value: `BundleManifest.load` reads it (and refuses any
bundle_version but voice_bundle/1), `problems` checks it against
configs/schemas/voice_bundle.schema.json, `save` writes it back. Every module that reads a bundle's
manifest goes through here; the sections it types are the ones the lane reads (files, models, audio,
tokenizer, onnx_check, validation); the rest stay as the JSON they are."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from ..core.fsutil import atomic_write_json
from ..core.griffin_lim import GriffinLimParams, MelSettings
from ..core.paths import PACKAGE_ROOT, config_file
from ..core.reasons import LaneError
from ..text.tokenizers import Speaks

if TYPE_CHECKING:
    from ..nemo.synth import NemoSource

BUNDLE_VERSION = "voice_bundle/1"
MANIFEST = "manifest.json"
SCHEMA_FILE = "voice_bundle.schema.json"

JSONObject = dict[str, Any]  # a JSON document as read: the schema file, the manifest before `problems`


class SpectrogramModel(TypedDict, total=False):
    type: str  # fastpitch
    onnx: str
    nemo: str | None


class VocoderModel(TypedDict, total=False):
    """griffin_lim with `params` (lane.core.griffin_lim.GriffinLimParams), or hifigan with its files."""

    type: str
    params: dict[str, float]
    onnx: str
    nemo: str | None


# The manifest's `tokenizer`: tokenizer.json and what the voice speaks (`class` is a keyword).
TokenizerEntry = TypedDict("TokenizerEntry", {
    "path": str, "class": str | None, "type": str, "n_tokens": int, "runnable_without_nemo": bool,
    "speaks": Speaks}, total=False)


class FileEntry(TypedDict):
    sha256: str
    bytes: int


class OnnxCheck(TypedDict, total=False):
    """FastPitch ONNX against PyTorch on fixed sentences (lane.bundle.build.onnx_vs_torch)."""

    max_abs_diff: float
    frames_equal: bool
    sentences: int
    tolerance: float
    ok: bool


class ValidationRef(TypedDict, total=False):
    path: str
    sha256: str
    bytes: int
    ok: bool | None
    run_id: str | None


def schema(root: str | os.PathLike[str] | None = None) -> JSONObject:
    path = config_file(root if root else PACKAGE_ROOT, "schemas", SCHEMA_FILE)
    if path.exists():
        return dict(json.loads(path.read_text(encoding="utf-8")))
    raise LaneError("bundle_invalid", f"{SCHEMA_FILE} not found")


@dataclass
class BundleManifest:
    """manifest.json of the bundle in `bundle_dir`; `data` is the document as read."""

    bundle_dir: Path
    data: JSONObject

    @classmethod
    def read(cls, bundle_dir: str | os.PathLike[str]) -> BundleManifest:
        """The manifest as JSON, any version, unchecked (ValueError/OSError when it cannot be read);
        `problems` says whether it keeps the schema."""
        bdir = Path(bundle_dir)
        return cls(bdir, json.loads((bdir / MANIFEST).read_text(encoding="utf-8")))

    @classmethod
    def load(cls, bundle_dir: str | os.PathLike[str]) -> BundleManifest:
        """The manifest of a voice_bundle/1, or LaneError bundle_invalid."""
        path = Path(bundle_dir) / MANIFEST
        try:
            m = cls.read(bundle_dir)
        except (OSError, ValueError) as exc:
            raise LaneError("bundle_invalid", f"{path}: cannot read manifest ({exc})") from exc
        if m.data.get("bundle_version") != BUNDLE_VERSION:
            raise LaneError("bundle_invalid",
                            f"{path}: bundle_version {m.data.get('bundle_version')!r} != {BUNDLE_VERSION}")
        return m

    @property
    def path(self) -> Path:
        return self.bundle_dir / MANIFEST

    def problems(self, root: str | os.PathLike[str] | None = None) -> list[str]:
        """Where the manifest breaks its JSON schema ([] when it keeps it)."""
        import jsonschema

        validator = jsonschema.Draft202012Validator(schema(root))
        return [f"manifest {'/'.join(str(p) for p in err.path) or '(root)'}: {err.message}"
                for err in sorted(validator.iter_errors(self.data), key=lambda e: list(e.path))]

    def save(self) -> Path:
        return atomic_write_json(self.path, self.data)

    # ---------------------------------------------------------------- typed sections
    @property
    def run_id(self) -> str | None:
        return self.data.get("run_id")

    @property
    def voice_profile_id(self) -> str | None:
        return self.data.get("voice_profile_id")

    @property
    def sample_rate(self) -> int:
        return int(self.data["sample_rate"])

    @property
    def files(self) -> dict[str, FileEntry]:
        return dict(self.data.get("files") or {})

    @property
    def audio(self) -> MelSettings:
        return MelSettings(**(self.data.get("audio") or {}))

    @property
    def spectrogram(self) -> SpectrogramModel:
        return SpectrogramModel(**((self.data.get("models") or {}).get("spectrogram") or {}))

    @property
    def vocoder(self) -> VocoderModel:
        return VocoderModel(**((self.data.get("models") or {}).get("vocoder") or {"type": "griffin_lim"}))

    @property
    def tokenizer(self) -> TokenizerEntry:
        return TokenizerEntry(**(self.data.get("tokenizer") or {}))

    @property
    def onnx_check(self) -> OnnxCheck:
        return OnnxCheck(**(self.data.get("onnx_check") or {}))

    @property
    def validation(self) -> ValidationRef | None:
        v = self.data.get("validation")
        return None if v is None else ValidationRef(**v)

    def nemo_source(self) -> NemoSource:
        """The .nemo files NeMo synthesis (lane.nemo.synth) restores, or LaneError synthesis_failed."""
        from ..nemo.synth import NemoSource

        fastpitch, voc = self.spectrogram.get("nemo"), self.vocoder
        if not fastpitch:
            raise LaneError("synthesis_failed", f"{self.bundle_dir}: the bundle holds no FastPitch .nemo")
        hifigan = voc.get("nemo") if voc["type"] == "hifigan" else None
        if voc["type"] == "hifigan" and not hifigan:
            raise LaneError("synthesis_failed", f"{self.bundle_dir}: the bundle holds no HiFi-GAN .nemo")
        return NemoSource(self.bundle_dir / fastpitch, self.bundle_dir / hifigan if hifigan else None,
                          GriffinLimParams.of(voc.get("params")), self.audio)
