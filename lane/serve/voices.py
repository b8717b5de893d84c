"""The voices a server speaks with: every live bundle (bundles/<id>/voice_bundle) that lane.promotion's
`servable` accepts (promoted, validated, signed GO provenance, hashes verified), loaded once with
onnxruntime (lane.bundle.voice.OnnxVoice) and cached by the bundle's real path and a fingerprint of
its files (size, mtime, inode of each).

`refresh()` looks again (the server calls it every `rescan_s` seconds, and at once when a request
names a voice it does not know): a newly promoted voice appears, a rolled-back one switches to its
earlier candidate, and a bundle whose files changed is verified again before it speaks. What is not
servable is kept out with its reasons (`refused`), never half-served. With `allow_unpromoted` only the
hashes are checked (development), and the source may be one bundle directory, as before.

Which live bundle may be served is lane.promotion's rule, asked in exactly one place
(`servable_problems`), so a change of that rule (what makes a promotion verifiable) needs no change
here. What a voice says about itself (its language, its models) comes from its own manifest.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ..bundle.manifest import MANIFEST, BundleManifest
from ..bundle.store import LIVE
from ..core.ids import check_id, within
from ..core.reasons import LaneError
from .settings import ServeSettings

MIN_LOOK_S = 1.0


class VoiceSummary(TypedDict):
    """A served voice as GET /api/voice shows it: its manifest's identity, models, tokenizer and
    validation record (as the manifest has them), and how the server serves it."""

    bundle_version: str | None
    voice_profile_id: str | None
    sample_rate: int | None
    models: dict[str, Any] | None
    tokenizer: dict[str, Any] | None
    run_id: str | None
    validation: dict[str, Any] | None
    id: str
    unpromoted: bool
    language: str
    description: str


@dataclass
class Voice:
    id: str
    path: Path  # the bundle's real directory (a candidate, when live)
    manifest: BundleManifest
    engine: Any  # lane.bundle.voice.OnnxVoice
    fingerprint: tuple[Any, ...]
    unpromoted: bool = False
    loaded_at: float = field(default_factory=time.time)

    @property
    def sample_rate(self) -> int:
        return self.manifest.sample_rate

    @property
    def run_id(self) -> str | None:
        rid = self.manifest.run_id
        return str(rid) if rid else None

    @property
    def language(self) -> str:
        """BCP 47 (en-US): the manifest's `language`, else the language of the normaliser it names."""
        return language_of(self.manifest)

    @property
    def description(self) -> str:
        return describe(self.manifest, self.id)

    def summary(self) -> VoiceSummary:
        m = self.manifest.data
        return VoiceSummary(bundle_version=m.get("bundle_version"), voice_profile_id=m.get("voice_profile_id"),
                            sample_rate=m.get("sample_rate"), models=m.get("models"), tokenizer=m.get("tokenizer"),
                            run_id=m.get("run_id"), validation=m.get("validation"), id=self.id,
                            unpromoted=self.unpromoted, language=self.language, description=self.description)


MODEL_NAMES = {"fastpitch": "FastPitch", "hifigan": "HiFi-GAN", "griffin_lim": "Griffin-Lim"}


def language_of(manifest: BundleManifest) -> str:
    from ..text.normalize import NORMALIZER_NAME, normalizer_info

    language = manifest.data.get("language")
    if isinstance(language, str) and language:
        return language
    speaks = manifest.tokenizer.get("speaks") or {}
    if str(speaks.get("normalizer") or "").startswith(NORMALIZER_NAME):
        return str(normalizer_info()["language"])
    return "en-US"  # every tokenizer the lane exports is English


def describe(manifest: BundleManifest, vid: str) -> str:
    """"jane: FastPitch + HiFi-GAN, 45-token chars tokenizer, run R", from the manifest's own entries."""
    models = manifest.data.get("models") or {}
    names = [MODEL_NAMES.get(str((models.get(k) or {}).get("type")), str((models.get(k) or {}).get("type")))
             for k in ("spectrogram", "vocoder") if models.get(k)]
    tok = manifest.tokenizer
    parts = [" + ".join(names) or "unknown models"]
    if tok:
        parts.append(f"{tok.get('n_tokens')}-token {tok.get('type')} tokenizer")
    if manifest.run_id:
        parts.append(f"run {manifest.run_id}")
    return f"{vid}: " + ", ".join(parts)


def fingerprint(path: Path) -> tuple[Any, ...]:
    """The bundle's real path and (name, size, mtime, inode) of every file: changes when the live link
    moves or a file is replaced or edited."""
    real = path.resolve()
    rows = []
    for p in sorted(real.rglob("*")):
        if p.is_file():
            st = p.stat()
            rows.append((p.relative_to(real).as_posix(), st.st_size, st.st_mtime_ns, st.st_ino))
    return (str(real), tuple(rows))


def discover(settings: ServeSettings) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """(voice id, bundle path) for every bundle the source holds, and what was skipped with why: one
    bundle directory (it has manifest.json), or a bundles directory with <id>/voice_bundle links."""
    src = settings.bundles
    if (src / MANIFEST).is_file():
        name = BundleManifest.load(src).voice_profile_id or (src.parent.name if src.name == LIVE else src.name)
        return [(check_id("voice profile id", name), src)], {}
    found, skipped = [], {}
    for d in sorted(src.iterdir()) if src.is_dir() else []:
        if not (d / LIVE).exists():
            continue
        try:
            vid = check_id("voice profile id", d.name)
            found.append((vid, within(src, vid, LIVE, kind="voice profile id")))
        except LaneError as err:
            skipped[d.name] = err.detail
    return found, skipped


Loader = Callable[[Path, ServeSettings], Any]


def servable_problems(path: Path, settings: ServeSettings) -> list[str]:
    """Why the bundle at `path` may not be served ([] when it may): lane.promotion's rule, the only
    place the server asks it."""
    from ..promotion import servable

    return list(servable(path, settings.root, allow_unpromoted=settings.allow_unpromoted))


WARM_UP = "Hello."


def load_engine(path: Path, settings: ServeSettings) -> Any:
    """OnnxVoice over the bundle, warmed up by one short synthesis (the first run of a session, and
    librosa's first Griffin-Lim, cost seconds that no request should pay)."""
    from ..bundle.voice import OnnxVoice

    engine = OnnxVoice(path, threads=settings.threads, spin=False)
    engine.synthesize(WARM_UP)
    return engine


class Registry:
    """The live voices, refreshed in place; readers get a consistent snapshot (dicts are replaced, never
    mutated)."""

    def __init__(self, settings: ServeSettings, loader: Loader = load_engine) -> None:
        self.settings = settings
        self.loader = loader
        self.voices: dict[str, Voice] = {}
        self.refused: dict[str, str] = {}
        self.scanned_at = 0.0
        self._lock = threading.Lock()

    def _admit(self, vid: str, path: Path, old: Voice | None) -> Voice:
        """The voice at `path` ready to speak, or LaneError with why not."""
        fp = fingerprint(path)
        if old is not None and old.fingerprint == fp:
            return old
        problems = servable_problems(path, self.settings)
        if problems:
            code = "bundle_invalid" if problems[0].startswith("hashes:") else "bundle_not_promoted"
            raise LaneError(code, "; ".join(problems[:3]))
        real = path.resolve()
        return Voice(vid, real, BundleManifest.load(real), self.loader(real, self.settings), fp,
                     unpromoted=self.settings.allow_unpromoted)

    def refresh(self) -> dict[str, Voice]:
        """Look at the source again; returns the voices now live."""
        with self._lock:
            found, refused = discover(self.settings)
            voices: dict[str, Voice] = {}
            for vid, path in found:
                try:
                    voices[vid] = self._admit(vid, path, self.voices.get(vid))
                except LaneError as err:
                    refused[vid] = f"{err.code}: {err.detail}"
                except Exception as exc:  # a broken bundle must not take the others down
                    refused[vid] = f"synthesis_failed: {type(exc).__name__}: {exc}"
            self.voices, self.refused, self.scanned_at = voices, refused, time.monotonic()
            return voices

    def stale(self) -> bool:
        return time.monotonic() - self.scanned_at >= self.settings.rescan_s

    def should_look_again(self, names: list[str | None]) -> bool:
        """A request named a voice not served now, and the last look is over a second old (a voice
        promoted a moment ago is then served at once; a flood of unknown names costs one look a second)."""
        unknown = any(n and n not in self.voices for n in names)
        return unknown and time.monotonic() - self.scanned_at >= MIN_LOOK_S

    def alias(self, name: str | None) -> Voice | None:
        """The voice an alias (serve.voice_aliases) speaks with: its target, or the default voice."""
        aliases = self.settings.aliases
        if not name or name not in aliases:
            return None
        target = aliases[name]
        voices = self.voices
        if target is None:
            return next(iter(voices.values()), None)
        return voices.get(target)

    def default_id(self) -> str | None:
        voices = self.voices
        return next(iter(voices)) if voices else None

    def get(self, voice_id: str | None) -> Voice:
        """The voice `voice_id` (None: the only or first one); not_found, or bundle_not_promoted with
        the reasons when it exists but may not speak."""
        voices = self.voices
        if voice_id is None:
            if not voices:
                raise LaneError("not_found", "no live voice is being served" + self._why())
            return next(iter(voices.values()))
        if voice_id in voices:
            return voices[voice_id]
        if voice_id in self.refused:
            code, _, detail = self.refused[voice_id].partition(": ")
            raise LaneError(code if code in ("bundle_not_promoted", "bundle_invalid") else "bundle_not_promoted",
                            f"voice {voice_id!r} is not served: {detail}")
        raise LaneError("not_found", f"no voice {voice_id!r}; served: {', '.join(voices) or 'none'}")

    def _why(self) -> str:
        return "" if not self.refused else " (refused: " + "; ".join(f"{k}: {v}" for k, v in self.refused.items()) + ")"
