"""Dataset preparation: recordings in, a checked, transcribed NeMo TTS dataset out.

Public surface (the rest of lane/data is private):

- `prepare_dataset(st, profile, *, audio, transcript, input_format, out_dir, weights_manifest, lane)`
  -> `DatasetResult` (manifests, pitch cache directory and statistics, kept/rejected counts);
- `normalize_text(text)` -> text in the EnglishCharsTokenizer vocabulary (validate reuses it);
- `detect_format(audio, transcript, root, input_format)` -> one of `FORMATS`.

Heavy modules (numpy, soundfile, onnxruntime, torch) load lazily, so `import lane.data` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.config import INPUT_FORMATS as FORMATS
from .text import normalize_text, out_of_vocabulary

if TYPE_CHECKING:
    from .inputs import detect_format
    from .prepare import DatasetResult, prepare_dataset

__all__ = ["FORMATS", "DatasetResult", "detect_format", "normalize_text", "out_of_vocabulary", "prepare_dataset"]


def __getattr__(name: str) -> Any:
    if name in ("DatasetResult", "prepare_dataset"):
        from . import prepare

        return getattr(prepare, name)
    if name == "detect_format":
        from .inputs import detect_format

        return detect_format
    raise AttributeError(name)
