"""What an audio input is and what it holds, checked cheaply (header + a short decode per file):
one recording, a folder of recordings, an LJSpeech folder (metadata.csv + wavs/) or a NeMo manifest.
The preflight checks (lane.stages.checks) call `inspect_audio` before anything heavy runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypedDict

from ..core.inputs import AudioInput
from ..core.reasons import LaneError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".opus")
_DECODE_FRAMES = 2048


@dataclass
class AudioInfo:
    path: str
    duration_s: float
    sample_rate: int
    channels: int
    format: str
    subtype: str
    bytes: int


class AudioSummary(TypedDict):
    """The audio input in numbers (the verify stage's stats, the preflight line)."""

    audio_kind: str
    audio_files: int
    audio_total_s: float
    audio_sample_rates: str
    audio_channels: str
    audio_undecodable: int


@dataclass
class AudioInventory:
    kind: str  # file | files (a comma-separated list) | directory | ljspeech | nemo_manifest
    source: str
    files: list[AudioInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files skipped as undecodable

    @property
    def total_s(self) -> float:
        return round(sum(f.duration_s for f in self.files), 3)

    def summary(self) -> AudioSummary:
        rates = sorted({f.sample_rate for f in self.files})
        chans = sorted({f.channels for f in self.files})
        return AudioSummary(audio_kind=self.kind, audio_files=len(self.files), audio_total_s=self.total_s,
                            audio_sample_rates=",".join(map(str, rates)), audio_channels=",".join(map(str, chans)),
                            audio_undecodable=len(self.problems))

    def table(self) -> list[dict[str, str | float | int]]:
        """One row per probed file: AudioInfo's fields."""
        return [asdict(f) for f in self.files]


def probe_audio(path: Path) -> AudioInfo:
    """Header + a short decode of one file; LaneError(missing_audio_path) when it is not audio."""
    import soundfile as sf

    if not path.exists():
        raise LaneError("missing_audio_path", f"{path}: no such file")
    if not path.is_file():
        raise LaneError("missing_audio_path", f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise LaneError("missing_audio_path", f"{path}: file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise LaneError("missing_audio_path", f"{path}: not readable (permissions)")
    try:
        info = sf.info(str(path))
        with sf.SoundFile(str(path)) as f:
            f.read(min(_DECODE_FRAMES, max(1, f.frames)), dtype="float32")
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise LaneError("missing_audio_path", f"{path}: not decodable audio ({str(exc).strip()[:160]})") from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise LaneError("missing_audio_path", f"{path}: holds no audio frames")
    return AudioInfo(str(path), round(info.frames / info.samplerate, 3), int(info.samplerate), int(info.channels),
                     str(info.format), str(info.subtype), size)


def _iter_audio_files(directory: Path) -> Iterator[Path]:
    for p in sorted(directory.rglob("*")):
        if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS and not p.name.startswith("."):
            yield p


def _manifest_audio(path: Path) -> list[Path]:
    """Audio paths named by a NeMo manifest (.json/.jsonl), read by the data stage's own parser."""
    from .inputs import read_nemo_manifest

    try:
        return [clip.path for clip in read_nemo_manifest(path)]
    except OSError as exc:
        raise LaneError("missing_audio_path", f"{path}: unreadable manifest ({exc})") from None


def inspect_audio(audio: str | os.PathLike[str] | None, root: str | os.PathLike[str] = ".",
                  max_files: int | None = None) -> AudioInventory:
    """What the audio input is and what it holds. A file, a comma-separated list of files (or folders),
    a folder of recordings, an LJSpeech folder (metadata.csv + wavs/) or a NeMo manifest. Raises
    LaneError(missing_audio_path) when it is missing, unreadable, empty, or holds no decodable audio.
    `max_files` caps how many files of a large folder are probed (the rest are counted, not decoded)."""
    given = AudioInput.parse(audio, root)
    if given.single is not None:
        return _inspect_one(given.text, given.single, max_files)
    inv = AudioInventory("files", given.text)
    for part, path in zip([a.strip() for a in given.text.split(",") if a.strip()], given.paths, strict=True):
        left = None if max_files is None else max_files - len(inv.files)
        if left is not None and left <= 0:
            break
        one = _inspect_one(part, path, left)
        inv.files.extend(one.files)
        inv.problems.extend(one.problems)
    return inv


def _inspect_one(audio: str, path: Path, max_files: int | None) -> AudioInventory:
    if not path.exists():
        raise LaneError("missing_audio_path", f"{audio}: no such file or directory")
    if not os.access(path, os.R_OK):
        raise LaneError("missing_audio_path", f"{audio}: not readable (permissions)")
    if path.is_dir():
        if (path / "metadata.csv").is_file() and (path / "wavs").is_dir():
            from .inputs import read_ljspeech

            read_ljspeech(path)  # metadata_invalid, or dataset_empty when it lists no clip, before anything heavy
            inv = AudioInventory("ljspeech", str(path))
            candidates = list(_iter_audio_files(path / "wavs"))
        else:
            inv = AudioInventory("directory", str(path))
            candidates = list(_iter_audio_files(path))
        if not candidates:
            raise LaneError("missing_audio_path",
                            f"{audio}: directory holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    elif path.suffix.lower() in (".json", ".jsonl"):
        inv = AudioInventory("nemo_manifest", str(path))
        candidates = _manifest_audio(path)
        if not candidates:
            raise LaneError("missing_audio_path", f"{audio}: manifest lists no audio")
    else:
        inv = AudioInventory("file", str(path))
        inv.files.append(probe_audio(path))
        return inv
    probe = candidates if max_files is None else candidates[:max_files]
    for p in probe:
        try:
            inv.files.append(probe_audio(p))
        except LaneError as err:
            inv.problems.append(err.detail)
    if not inv.files:
        raise LaneError("missing_audio_path",
                        f"{audio}: none of {len(probe)} audio file(s) decodes (first: {inv.problems[0]})")
    return inv
