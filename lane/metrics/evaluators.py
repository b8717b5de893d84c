"""The evaluators that need weights: ASR, speaker encoder, MOS estimator. Each comes from the weights
manifest (`lane.core.weights.resolve_weight`: sha256 and licences checked) through `load_evaluators`;
one that is missing or whose licence is blocked is reported as such, and its checks become "not
evaluated".

Which entry: a profile names one per role (`eval.evaluators: {asr: <id>, speaker: <id>, mos: <id>}`);
with none named, the role's default class is used (pocketsphinx, GE2E, DNSMOS: their weights ship in
wheels). An entry's class is its manifest `class`, else inferred from its path (`entry_class`). Every
loaded evaluator carries its identity (manifest id, class, sha256), which the validate stage records
beside each metric it produces.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from ..core.reasons import LaneError
from .asr_models import Asr, AsrModel, FasterWhisperAsr, NemoAsr, WhisperAsr
from .mos_models import Dnsmos, MosModel, Utmos
from .speaker_models import SpeakerEncoder, SpeakerModel, TitaNet

EVALUATOR_ROLES = ("asr", "speaker_encoder", "mos_estimator")
# the profile's short names (eval.evaluators) for the roles
PROFILE_KEYS = {"asr": "asr", "speaker": "speaker_encoder", "mos": "mos_estimator"}
CLASSES: dict[str, tuple[str, ...]] = {
    "asr": ("pocketsphinx", "nemo_asr", "whisper", "faster_whisper"),
    "speaker_encoder": ("ge2e", "titanet"),
    "mos_estimator": ("dnsmos", "utmos"),
}
DEFAULT_CLASS = {"asr": "pocketsphinx", "speaker_encoder": "ge2e", "mos_estimator": "dnsmos"}


def entry_class(role: str, entry: Any) -> str | None:
    """The evaluator class of a manifest entry: its `class`, else what its path says."""
    declared = getattr(entry, "eval_class", None)
    if declared:
        return str(declared)
    path = Path(str(entry.path if entry.path is not None else entry.spec_path))
    name = path.name.lower()
    if role == "asr":
        if name.endswith(".nemo"):
            return "nemo_asr"
        if name.endswith(".pt"):
            return "whisper"
        if (path / "model.bin").exists():
            return "faster_whisper"
        return "pocketsphinx"
    if role == "speaker_encoder":
        return "titanet" if name.endswith(".nemo") else "ge2e"
    if role == "mos_estimator":
        return "dnsmos" if name.endswith(".onnx") else "utmos"
    return None


# An evaluator as the validate stage records it beside its metrics (`class` is a keyword).
Identity = TypedDict("Identity", {"role": str, "state": str, "class": str | None, "id": str | None,
                                  "sha256": str | None, "detail": str})


@dataclass
class EvaluatorStatus:
    role: str
    state: str  # ok | evaluator_license_blocked | evaluator_unavailable
    detail: str
    paths: list[Path] = field(default_factory=list)
    eval_class: str | None = None
    ids: list[str] = field(default_factory=list)
    sha256: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    def identity(self) -> Identity:
        """What the validate stage records beside each metric this evaluator produced."""
        return Identity({"role": self.role, "state": self.state, "class": self.eval_class,
                         "id": ",".join(self.ids) or None, "sha256": ",".join(self.sha256) or None,
                         "detail": self.detail})


def _selected(entries: list[Any], role: str, wanted: str | None) -> list[Any]:
    """The entries of `role` that make the evaluator: the one the profile names (for DNSMOS, with the
    other DNSMOS files beside it), else those of the role's default class."""
    if wanted:
        named = [e for e in entries if e.id == wanted]
        if not named:
            raise LaneError("evaluator_unavailable", f"the profile names {role} evaluator {wanted!r}, which the "
                            f"weights manifest does not list (it lists {[e.id for e in entries] or 'none'})")
        cls = entry_class(role, named[0])
        if cls not in CLASSES[role]:
            raise LaneError("evaluator_unavailable", f"{wanted}: class {cls!r} is not a {role} evaluator "
                            f"({', '.join(CLASSES[role])})")
        if cls == "dnsmos":
            named += [e for e in entries if e.id != wanted and entry_class(role, e) == "dnsmos"]
        return named
    return [e for e in entries if entry_class(role, e) == DEFAULT_CLASS[role]]


def evaluator_status(weights_manifest: str | os.PathLike[str] | None, root: str | os.PathLike[str],
                     role: str, wanted: str | None = None) -> EvaluatorStatus:
    """Whether the weights manifest lists a usable, licence-allowed evaluator of `role` (the entry
    `wanted`, or the role's default class)."""
    if not weights_manifest:
        return EvaluatorStatus(role, "evaluator_unavailable", "no weights manifest given")
    from ..core.weights import resolve_weight

    try:
        entries = _selected(resolve_weight(weights_manifest, root, role), role, wanted)
    except LaneError as err:
        return EvaluatorStatus(role, "evaluator_unavailable", f"{err.code}: {err.detail}")
    if not entries:
        return EvaluatorStatus(role, "evaluator_unavailable",
                               f"no {DEFAULT_CLASS[role]} {role} entry in {weights_manifest}")
    cls = entry_class(role, entries[0])
    blocked = [e for e in entries if not (e.weights_license_ok and e.code_license_ok)]
    if blocked:
        e = blocked[0]
        lic = e.weights_license if not e.weights_license_ok else e.code_license
        return EvaluatorStatus(role, "evaluator_license_blocked",
                               f"{e.id}: licence {lic!r} is not allowed ({e.state})", eval_class=cls, ids=[e.id])
    bad = [e for e in entries if not e.usable]
    if bad:
        e = bad[0]
        return EvaluatorStatus(role, "evaluator_unavailable", f"{e.id}: {e.state} ({'; '.join(e.problems)})",
                               eval_class=cls, ids=[e.id])
    return EvaluatorStatus(role, "ok", ", ".join(e.id for e in entries),
                           [e.path for e in entries if e.path is not None], cls, [e.id for e in entries],
                           [str(e.actual_sha256) for e in entries])


@dataclass
class Evaluators:
    status: dict[str, EvaluatorStatus]
    asr: AsrModel | None = None
    speaker: SpeakerModel | None = None
    mos: MosModel | None = None

    def identities(self) -> dict[str, Identity]:
        return {role: s.identity() for role, s in self.status.items()}


def _load_asr(cls: str, paths: list[Path]) -> AsrModel:
    if cls == "pocketsphinx":
        return Asr(next((p for p in paths if p.is_dir()), None))
    loader: dict[str, Any] = {"nemo_asr": NemoAsr, "whisper": WhisperAsr, "faster_whisper": FasterWhisperAsr}
    model: AsrModel = loader[cls](paths[0])
    return model


def _load_speaker(cls: str, paths: list[Path]) -> SpeakerModel:
    if cls == "titanet":
        return TitaNet(paths[0])
    return SpeakerEncoder(next((p for p in paths if p.suffix == ".pt"), None))


def _load_mos(cls: str, paths: list[Path]) -> MosModel:
    if cls == "utmos":
        return Utmos(paths[0])
    primary = next((p for p in paths if "sig_bak_ovr" in p.name), None)
    p808 = next((p for p in paths if "v8" in p.name or "p808" in p.name), None)
    return Dnsmos(primary, p808)


def selection_of(profile_evaluators: Mapping[str, Any] | None) -> dict[str, str | None]:
    """`eval.evaluators` of a profile ({asr, speaker, mos} -> manifest id or null) by role."""
    raw = dict(profile_evaluators or {})
    unknown = sorted(set(raw) - set(PROFILE_KEYS))
    if unknown:
        raise LaneError("config_invalid", f"eval.evaluators: unknown key(s) {unknown} (use {', '.join(PROFILE_KEYS)})")
    return {PROFILE_KEYS[k]: (str(v) if v else None) for k, v in raw.items()}


def load_evaluators(weights_manifest: str | os.PathLike[str] | None, root: str | os.PathLike[str],
                    roles: Sequence[str] = EVALUATOR_ROLES,
                    selection: Mapping[str, str | None] | None = None) -> Evaluators:
    """Load every evaluator whose manifest entry is usable (the entry `selection[role]` names, else the
    role's default class); the others are recorded, not raised."""
    ev = Evaluators(status={})
    for role in roles:
        st = evaluator_status(weights_manifest, root, role, (selection or {}).get(role))
        if st.ok:
            cls = str(st.eval_class)
            try:
                if role == "asr":
                    ev.asr = _load_asr(cls, st.paths)
                elif role == "speaker_encoder":
                    ev.speaker = _load_speaker(cls, st.paths)
                elif role == "mos_estimator":
                    ev.mos = _load_mos(cls, st.paths)
            except LaneError as err:
                st = EvaluatorStatus(role, err.code, err.detail, eval_class=cls, ids=st.ids, sha256=st.sha256)
        ev.status[role] = st
    return ev
