"""The content of a run's inputs, by hash: the recordings (a file, several, or a folder as a tree
hash), the transcript (given, or X.txt beside X.flac), the consent record (given or found beside the
recording) and the weights manifest. The verify stage certifies them (`inputs.json`), resume
fingerprints include them (replacing a recording at the same path is a change), and the bundle's
provenance names them.

`AudioInput` is the one reading of an `--audio` value (a file, a comma-separated list, a folder, an
LJSpeech folder or its metadata.csv, a NeMo manifest): parsed and resolved here once, it offers the
paths, the long-form files, the paired transcript and where a consent record may lie. The data stage,
the verify stage's audio check, the consent gate and the input digests all start from it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

from .fsutil import rel
from .paths import resolve_input
from .reasons import LaneError

# what the data stage decodes (soundfile + the ffmpeg fallback); lane.data.audio uses the same list
AUDIO_SUFFIXES = (".flac", ".wav", ".mp3", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".m4a")


@dataclass(frozen=True)
class AudioInput:
    """An `--audio` value, parsed and resolved once: `text` as given, `paths` in its order."""

    text: str
    paths: tuple[Path, ...]

    @classmethod
    def parse(cls, audio: str | os.PathLike[str] | None, root: str | os.PathLike[str]) -> AudioInput:
        """Split a comma-separated list and resolve every part (lane.core.paths.resolve_input);
        LaneError(missing_audio_path) when nothing is named."""
        text = "" if audio is None else str(audio)
        parts = [a.strip() for a in text.split(",") if a.strip()]
        if not parts:
            raise LaneError("missing_audio_path", "no audio path given (--audio / AUDIO_PATH)")
        return cls(text, tuple(resolve_input(a, root) for a in parts))

    @property
    def first(self) -> Path:
        return self.paths[0]

    @property
    def single(self) -> Path | None:
        """The path when the input names exactly one."""
        return self.paths[0] if len(self.paths) == 1 else None

    def missing(self) -> list[Path]:
        return [p for p in self.paths if not p.exists()]

    def files(self) -> list[Path]:
        """The recordings of a long-form input: every named file, and the audio files directly inside
        every named folder (sorted)."""
        out: list[Path] = []
        for p in self.paths:
            out.extend(list_audio(p) if p.is_dir() else [p])
        return out

    def paired_transcript(self) -> Path | None:
        """`<name>.txt` next to a single recording `<name>.<ext>` (non-empty): its transcript when none
        is given and the format is auto-detected (the demo's data/demo/longform.flac + longform.txt)."""
        p = self.single
        if p is None or not p.is_file() or p.suffix.lower() not in AUDIO_SUFFIXES:
            return None
        txt = p.with_suffix(".txt")
        return txt if txt.is_file() and txt.stat().st_size > 0 else None

    def consent_candidates(self) -> list[Path]:
        """Where a consent record for this input may lie, in order: `<name>.consent.json` beside the
        first recording, `consent.json` in it (a folder) or beside it."""
        first = self.first
        return [first.with_name(first.stem + ".consent.json"), *([first / "consent.json"] if first.is_dir() else []),
                first.parent / "consent.json"]


def list_audio(d: Path) -> list[Path]:
    """The audio files directly inside folder `d`, sorted."""
    return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)


def find_record(audio: str | None, consent: str | None, root: str | os.PathLike[str]) -> Path | None:
    """The consent record for this input: the one given, else one beside the recording or in its folder."""
    if consent:
        return resolve_input(consent, root)
    if not audio:
        return None
    try:
        given = AudioInput.parse(audio, root)
    except LaneError:
        return None
    return next((c for c in given.consent_candidates() if c.is_file()), None)


class InputDigest(TypedDict):
    role: str  # audio | transcript | consent | weights_manifest
    path: str
    sha256: str | None


def input_paths(root: str | os.PathLike[str], *, audio: str | None, transcript: str | None = None,
                consent: str | None = None, weights_manifest: str | None = None) -> list[tuple[str, Path]]:
    """(role, path) of every input, auto-paired files included."""
    try:
        given: AudioInput | None = AudioInput.parse(audio, root)
    except LaneError:  # no audio named: the audio check's to report
        given = None
    out: list[tuple[str, Path]] = [("audio", p) for p in given.paths] if given else []
    if transcript:
        out.append(("transcript", resolve_input(transcript, root)))
    elif given is not None:
        paired = given.paired_transcript()
        if paired is not None:
            out.append(("transcript", paired))
    record = find_record(audio, consent, root)
    if record is not None:
        out.append(("consent", record))
    if weights_manifest:
        out.append(("weights_manifest", resolve_input(weights_manifest, root)))
    return out


def input_digests(root: str | os.PathLike[str], *, audio: str | None, transcript: str | None = None,
                  consent: str | None = None, weights_manifest: str | None = None) -> list[InputDigest]:
    """[{role, path, sha256}] for every input (sha256 None when the path does not exist). Hashes are
    cached by (path, size, mtime) in .cache/, so a large corpus is hashed once."""
    from .weights import HashCache

    cache = HashCache(root)
    rows: list[InputDigest] = []
    for role, path in input_paths(root, audio=audio, transcript=transcript, consent=consent,
                                  weights_manifest=weights_manifest):
        digest = cache.digest(path) if path.exists() else None
        rows.append(InputDigest(role=role, path=rel(path, root), sha256=digest))
    cache.save()
    return rows
