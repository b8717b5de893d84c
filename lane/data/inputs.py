"""Input formats: detection and readers for LJSpeech folders and NeMo manifests.

Formats (``--input-format``): ``longform`` (one or more long recordings, transcribed by ASR),
``longform_transcript`` (recordings plus a plain-text transcript), ``ljspeech`` (metadata.csv with
``id|text`` or ``id|text|normalized_text`` plus wavs/), ``nemo_manifest`` (JSON lines with
audio_filepath, text, optional duration/offset). ``auto`` detects from the paths.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..core.config import INPUT_FORMATS as FORMATS
from ..core.inputs import AUDIO_SUFFIXES, AudioInput, list_audio
from ..core.reasons import LaneError


def audio_paths(audio: str, root: Path) -> list[Path]:
    """The paths named by `audio` (comma-separated list allowed), resolved against `root`."""
    return list(AudioInput.parse(audio, root).paths)


def detect_format(audio: str | None, transcript: str | None, root: Path, input_format: str = "auto") -> str:
    if input_format not in ("auto", *FORMATS):
        raise LaneError("input_format_unknown", f"--input-format {input_format!r}; use auto or one of {', '.join(FORMATS)}")
    if not audio:
        raise LaneError("missing_audio_path", "no audio path given (--audio / AUDIO_PATH)")
    paths = audio_paths(audio, root)
    for p in paths:
        if not p.exists():
            raise LaneError("missing_audio_path", f"{p} does not exist")
    if input_format != "auto":
        return input_format
    first = paths[0]
    if len(paths) == 1 and first.is_file() and first.suffix.lower() in (".json", ".jsonl"):
        return "nemo_manifest"
    if len(paths) == 1 and first.is_dir() and (first / "metadata.csv").is_file():
        return "ljspeech"
    if len(paths) == 1 and first.is_file() and first.name == "metadata.csv":
        return "ljspeech"
    if all(p.is_file() for p in paths) or (len(paths) == 1 and first.is_dir() and list_audio(first)):
        # an unknown suffix is accepted only when soundfile recognises the content
        unknown = [p for p in paths if p.is_file() and p.suffix.lower() not in AUDIO_SUFFIXES]
        if unknown and not all(_sniff_audio(p) for p in unknown):
            raise LaneError("input_format_unknown", f"{first.name} is not a recognised audio file, "
                                "LJSpeech folder or NeMo manifest")
        return "longform_transcript" if transcript else "longform"
    raise LaneError("input_format_unknown", f"{first} is not an audio file, a folder of audio, an LJSpeech folder "
                    "(metadata.csv + wavs/) or a NeMo .json/.jsonl manifest")


def _sniff_audio(p: Path) -> bool:
    import soundfile as sf

    try:
        sf.info(str(p))
        return True
    except Exception:
        return False


def longform_files(audio: str, root: Path) -> list[Path]:
    out = AudioInput.parse(audio, root).files()
    if not out:
        raise LaneError("missing_audio_path", f"no audio files under {audio}")
    return out


@dataclass
class ListedClip:
    """One clip named by metadata: an audio file (or a slice of one) with its text."""
    id: str
    path: Path
    text: str
    normalized_text: str | None = None
    offset: float = 0.0
    duration: float | None = None


# a first row like `id|text` or `file|transcript|normalized_text` names the columns: it is no clip
_HEADER = ({"id", "file", "filename", "file_name", "name", "audio", "wav"},
           {"text", "transcript", "transcription", "sentence"},
           {"normalized", "normalized_text", "normalised_text", "text_normalized"})


def _is_header(fields: list[str], base: Path) -> bool:
    words = [f.strip().lower() for f in fields]
    if any(w not in names for w, names in zip(words, _HEADER, strict=False)):
        return False
    return not (base / "wavs" / f"{fields[0].strip()}.wav").exists()  # a clip really named `id` stays a clip


def read_ljspeech(folder: Path) -> list[ListedClip]:
    """The clips metadata.csv lists (a header row is recognised and skipped). metadata_invalid when a
    row cannot be parsed, dataset_empty when it lists no clip."""
    meta = folder / "metadata.csv" if folder.is_dir() else folder
    base = meta.parent
    raw = meta.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        lineno = raw[: err.start].count(b"\n") + 1
        raise LaneError("metadata_invalid", f"{meta.name} line {lineno}: not UTF-8 (byte 0x{raw[err.start]:02x})") from None
    clips: list[ListedClip] = []
    header = ""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) not in (2, 3) or not fields[0].strip():
            raise LaneError("metadata_invalid", f"{meta.name} line {n}: expected id|text or id|text|normalized_text, "
                            f"got {len(fields)} field(s)")
        if not clips and not header and _is_header(fields, base):
            header = line.strip()
            continue
        cid = fields[0].strip()
        wav = base / "wavs" / (cid if cid.lower().endswith(".wav") else cid + ".wav")
        norm = fields[2].strip() if len(fields) == 3 and fields[2].strip() else None
        clips.append(ListedClip(cid, wav, fields[1].strip(), norm))
    if not clips:
        raise LaneError("dataset_empty", f"{meta} lists no clips" + (f" (only its header row {header})" if header else ""))
    return clips


def read_nemo_manifest(path: Path) -> list[ListedClip]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise LaneError("metadata_invalid", f"{path.name}: not UTF-8 ({err.reason})") from None
    clips: list[ListedClip] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as jerr:
            raise LaneError("metadata_invalid", f"{path.name} line {n}: not JSON ({jerr.msg})") from None
        if not isinstance(item, dict) or "audio_filepath" not in item or "text" not in item:
            raise LaneError("metadata_invalid", f"{path.name} line {n}: needs audio_filepath and text")
        ap = Path(str(item["audio_filepath"])).expanduser()
        ap = ap if ap.is_absolute() else path.parent / ap
        dur = item.get("duration")
        clips.append(ListedClip(f"{n:06d}", ap, str(item["text"]),
                                item.get("normalized_text") or item.get("text_normalized"),
                                float(item.get("offset") or 0.0), float(dur) if dur is not None and "offset" in item else None))
    if not clips:
        raise LaneError("metadata_invalid", f"{path.name} has no entries")
    return clips
