"""The content of a run's inputs, by hash: the recordings (a file, several, or a folder as a tree
hash), the transcript (given, or X.txt beside X.flac), the consent record (given or found beside the
recording) and the weights manifest. The verify stage certifies them (`inputs.json`), resume
fingerprints include them (replacing a recording at the same path is a change), and the bundle's
provenance names them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fsutil import rel
from .paths import resolve_input


def input_paths(root: str | os.PathLike[str], *, audio: str | None, transcript: str | None = None,
                consent: str | None = None, weights_manifest: str | None = None) -> list[tuple[str, Path]]:
    """(role, path) of every input, auto-paired files included."""
    from ..data.inputs import paired_transcript
    from .consent import find_record

    out: list[tuple[str, Path]] = []
    for part in [a.strip() for a in str(audio or "").split(",") if a.strip()]:
        out.append(("audio", resolve_input(part, root)))
    if transcript:
        out.append(("transcript", resolve_input(transcript, root)))
    elif audio:
        try:
            paired = paired_transcript(str(audio), Path(root))
        except Exception:  # a missing input is the audio check's to report
            paired = None
        if paired is not None:
            out.append(("transcript", paired))
    record = find_record(audio, consent, root)
    if record is not None:
        out.append(("consent", record))
    if weights_manifest:
        out.append(("weights_manifest", resolve_input(weights_manifest, root)))
    return out


def input_digests(root: str | os.PathLike[str], *, audio: str | None, transcript: str | None = None,
                  consent: str | None = None, weights_manifest: str | None = None) -> list[dict[str, Any]]:
    """[{role, path, sha256}] for every input (sha256 None when the path does not exist). Hashes are
    cached by (path, size, mtime) in .cache/, so a large corpus is hashed once."""
    from .weights import HashCache

    cache = HashCache(root)
    rows = []
    for role, path in input_paths(root, audio=audio, transcript=transcript, consent=consent,
                                  weights_manifest=weights_manifest):
        digest = cache.digest(path) if path.exists() else None
        rows.append({"role": role, "path": rel(path, root), "sha256": digest})
    cache.save()
    return rows
