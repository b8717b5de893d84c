"""Preflight: what the verify stage checks before anything heavy runs, and what the orchestrator
checks before it starts a run at all.

The orchestrator uses the cheap parts (`check_head`, `inspect_audio`) to fail fast; the verify
notebook calls `run_preflight`, which records every check on its StageRun so the gate, the ledger
and the readiness report see them:

==============================  ==================================================  ======================
check id                        what                                                failing reason
==============================  ==================================================  ======================
head                            git HEAD vs expected head, clean tree if required   deterministic_head_mismatch
audio_present                   the input exists and holds decodable audio          missing_audio_path
weights_manifest_ok             schema, files present, sha256                       weights_* (first problem)
weights_license_commercial      code and weights licences, separately               weights/code_license_blocked
base_weights                    production needs usable base weights                base_weights_missing
runtime_nemo                    NeMo importable (for NeMo lanes)                     nemo_runtime_unavailable
runtime_torch                   torch importable; CUDA device or CPU                nemo_runtime_unavailable
resources_disk / resources_mem  free disk and memory vs the profile's resources     insufficient_resources
config_valid                    config file vs its schema, profile loads, lane ok   config_invalid
==============================  ==================================================  ======================

Every check is recorded first; then the first failing one is raised as its LaneError, so the stage
result carries a precise reason while the report still shows all checks.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..core.paths import config_file, git_head, resolve_input
from ..core.reasons import LaneError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".aifc", ".opus")
CONFIG_SCHEMA = "lane_config.schema.json"
_DECODE_FRAMES = 2048


# ----------------------------------------------------------------------------------------- head
@dataclass
class HeadInfo:
    sha: str | None
    dirty: bool | None
    ok: bool
    detail: str


def check_head(root: str | os.PathLike[str], expected_head: str | None, require_clean_tree: bool) -> HeadInfo:
    """Compare HEAD with `expected_head` (a full sha or a prefix of at least 7 hex digits)."""
    if not expected_head and not require_clean_tree:
        head = git_head(root)
        return HeadInfo(head.sha, head.dirty, True, f"no expected head given; HEAD={head.sha or 'n/a'}")
    head = git_head(root)
    sha, dirty, problem = head.sha, head.dirty, head.problem
    if sha is None:
        return HeadInfo(None, None, False, f"cannot read HEAD: {problem}")
    if expected_head:
        exp = expected_head.strip().lower()
        if len(exp) < 7 or not sha.startswith(exp):
            return HeadInfo(sha, dirty, False, f"HEAD {sha} != expected {expected_head}")
    if require_clean_tree and dirty is not False:
        return HeadInfo(sha, dirty, False, f"tree at {sha[:12]} has uncommitted changes (require_clean_tree)")
    return HeadInfo(sha, dirty, True, f"HEAD {sha}" + (" (clean)" if dirty is False else " (dirty)" if dirty else ""))


def require_head(root: str | os.PathLike[str], expected_head: str | None, require_clean_tree: bool) -> HeadInfo:
    info = check_head(root, expected_head, require_clean_tree)
    if not info.ok:
        raise LaneError("deterministic_head_mismatch", info.detail)
    return info


# ---------------------------------------------------------------------------------------- audio
@dataclass
class AudioInfo:
    path: str
    duration_s: float
    sample_rate: int
    channels: int
    format: str
    subtype: str
    bytes: int


@dataclass
class AudioInventory:
    kind: str  # file | directory | ljspeech | nemo_manifest
    source: str
    files: list[AudioInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # files skipped as undecodable

    @property
    def total_s(self) -> float:
        return round(sum(f.duration_s for f in self.files), 3)

    def summary(self) -> dict[str, Any]:
        rates = sorted({f.sample_rate for f in self.files})
        chans = sorted({f.channels for f in self.files})
        return {"audio_kind": self.kind, "audio_files": len(self.files), "audio_total_s": self.total_s,
                "audio_sample_rates": ",".join(map(str, rates)), "audio_channels": ",".join(map(str, chans)),
                "audio_undecodable": len(self.problems)}

    def table(self) -> list[dict[str, Any]]:
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
    from ..data.inputs import read_nemo_manifest

    try:
        return [clip.path for clip in read_nemo_manifest(path)]
    except OSError as exc:
        raise LaneError("missing_audio_path", f"{path}: unreadable manifest ({exc})") from None


def inspect_audio(audio: str | os.PathLike[str] | None, root: str | os.PathLike[str] = ".",
                  max_files: int | None = None) -> AudioInventory:
    """What the audio input is and what it holds. A file, a folder of recordings, an LJSpeech folder
    (metadata.csv + wavs/) or a NeMo manifest. Raises LaneError(missing_audio_path) when it is
    missing, unreadable, empty, or holds no decodable audio. `max_files` caps how many files of a
    large folder are probed (the rest are counted, not decoded)."""
    if audio is None or str(audio).strip() == "":
        raise LaneError("missing_audio_path", "no audio path given (--audio / AUDIO_PATH)")
    path = resolve_input(audio, root)
    if not path.exists():
        raise LaneError("missing_audio_path", f"{audio}: no such file or directory")
    if not os.access(path, os.R_OK):
        raise LaneError("missing_audio_path", f"{audio}: not readable (permissions)")
    if path.is_dir():
        if (path / "metadata.csv").is_file() and (path / "wavs").is_dir():
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


# -------------------------------------------------------------------------------------- runtime
@dataclass
class RuntimeInfo:
    nemo_version: str | None
    torch_version: str | None
    device: str  # "cuda:0 (<name>)" or "cpu"
    cuda: bool
    problem: str = ""


def check_nemo() -> str:
    """The NeMo version; LaneError(nemo_runtime_unavailable) when `nemo` or its TTS collection
    cannot be imported in this Python."""
    import importlib.util

    try:
        import nemo

        spec = importlib.util.find_spec("nemo.collections.tts")
    except Exception as exc:  # ImportError, or anything a broken install raises at import
        raise LaneError("nemo_runtime_unavailable", f"import nemo failed: {type(exc).__name__}: {exc}") from None
    if spec is None:
        raise LaneError("nemo_runtime_unavailable", "nemo is installed without nemo.collections.tts (install nemo_toolkit[tts])")
    return str(getattr(nemo, "__version__", "unknown"))


def check_torch() -> tuple[str, str, bool]:
    try:
        import torch
    except Exception as exc:
        raise LaneError("nemo_runtime_unavailable", f"import torch failed: {type(exc).__name__}: {exc}") from None
    cuda = bool(torch.cuda.is_available())
    device = f"cuda:0 ({torch.cuda.get_device_name(0)})" if cuda else "cpu"
    return str(torch.__version__), device, cuda


def free_memory_gb() -> float:
    """MemAvailable from /proc/meminfo (Linux); falls back to total physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / 1024**3
    except (ValueError, OSError, AttributeError):
        return float("nan")


def free_disk_gb(path: str | os.PathLike[str]) -> float:
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    return shutil.disk_usage(p).free / 1024**3


# --------------------------------------------------------------------------------------- config
def validate_config_file(path: str | os.PathLike[str], root: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """The config file checked against configs/schemas/lane_config.schema.json (config_invalid)."""
    import jsonschema

    from ..core.config import load_yaml
    from ..core.fsutil import read_json

    data = load_yaml(path)
    validator = jsonschema.Draft202012Validator(read_json(config_file(root, "schemas", CONFIG_SCHEMA)))
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise LaneError("config_invalid", f"{path}: {where}: {errors[0].message}")
    return data


def find_config_file(root: str | os.PathLike[str], config_path: str | os.PathLike[str] | None) -> Path | None:
    from ..core.config import DEFAULT_CONFIG

    cfg = config_path or os.environ.get("LANE_CONFIG")
    if cfg:
        p = Path(cfg)
        return p if p.is_absolute() or p.exists() else Path(root) / p
    p = Path(root) / DEFAULT_CONFIG
    return p if p.exists() else None


# ------------------------------------------------------------------------------------ preflight
@dataclass
class Preflight:
    checks: list[dict[str, Any]] = field(default_factory=list)
    audio: AudioInventory | None = None
    weights: list[dict[str, Any]] = field(default_factory=list)
    runtime: RuntimeInfo | None = None
    promotable: bool = False
    not_promotable_reason: str = ""
    errors: list[LaneError] = field(default_factory=list)


def run_preflight(st: Any, *, root: str | os.PathLike[str], lane: str, profile: str, audio: str | None,
                  transcript: str | None = None, input_format: str = "auto", expected_head: str | None = None,
                  weights_manifest: str | None = None, allow_from_scratch: bool = False,
                  require_clean_tree: bool = False, config_path: str | os.PathLike[str] | None = None,
                  raise_first: bool = True) -> Preflight:
    """Run every preflight check, recording each on `st` (a lane.core.stage.StageRun), then raise the first
    failure as its LaneError (unless raise_first=False)."""
    from ..core.config import load_profile
    from ..core.lanes import load_lane
    from ..core.weights import verify_manifest

    rootp = Path(root).resolve()
    pf = Preflight()
    total = 7

    def record(check_id: str, ok: bool | None, detail: str, err: LaneError | None = None, **kw: Any) -> None:
        st.check(check_id, ok, detail, **kw)
        pf.checks.append({"check": check_id, "ok": ok, "detail": detail})
        if err is not None:
            pf.errors.append(err)

    # 1. config, lane and profile (everything below depends on them)
    st.progress(1, total, "config")
    spec = None
    prof: dict[str, Any] = {}
    try:
        cfg = find_config_file(rootp, config_path)
        if cfg is not None:
            validate_config_file(cfg, rootp)
        spec = load_lane(rootp, lane)
        prof = load_profile(profile, rootp)
        record("config_valid", True, f"config {cfg.name if cfg else '(defaults)'} valid; lane {lane} -> {spec.id} "
               f"({spec.status}); profile {profile}")
    except LaneError as err:
        record("config_valid", False, f"{err.code}: {err.detail}", err)

    # 2. head
    st.progress(2, total, "head")
    head = check_head(rootp, expected_head, require_clean_tree)
    record("head", head.ok, head.detail,
           None if head.ok else LaneError("deterministic_head_mismatch", head.detail))
    st.stats(head=head.sha or "n/a", tree_dirty=bool(head.dirty))

    # 3. audio
    st.progress(3, total, "audio")
    try:
        inv = inspect_audio(audio, rootp)
        pf.audio = inv
        s = inv.summary()
        skipped = f"; {len(inv.problems)} undecodable file(s) skipped" if inv.problems else ""
        record("audio_present", True, f"{inv.kind}: {s['audio_files']} file(s), {s['audio_total_s']} s, "
               f"{s['audio_sample_rates']} Hz, {s['audio_channels']} ch{skipped}")
        st.stats(**s)
    except LaneError as err:
        record("audio_present", False, f"{err.code}: {err.detail}", err)
    if transcript:
        tpath = resolve_input(transcript, rootp)
        ok = tpath.is_file() and tpath.stat().st_size > 0
        record("transcript_present", ok, f"{transcript}" + ("" if ok else ": missing or empty"),
               None if ok else LaneError("missing_audio_path", f"transcript {transcript}: missing or empty"))

    # 4. weights and licences
    st.progress(4, total, "weights")
    if weights_manifest:
        report = verify_manifest(resolve_input(weights_manifest, rootp), rootp)
        pf.weights = [e.as_dict() for e in report.entries]
        file_problems = [p for p in report.problems if p.code not in ("weights_license_blocked", "code_license_blocked")]
        lic_problems = [p for p in report.problems if p.code in ("weights_license_blocked", "code_license_blocked")]
        n_ok = sum(1 for e in report.entries if e.state == "ok")
        n_abs = sum(1 for e in report.entries if e.state.startswith("absent"))
        if file_problems:
            fp = file_problems[0]
            record("weights_manifest_ok", False, f"{fp.code}: {fp.detail}", LaneError(fp.code, fp.detail))
        else:
            record("weights_manifest_ok", True, f"{n_ok} verified, {n_abs} optional absent ({weights_manifest})")
        if lic_problems:
            lp = lic_problems[0]
            record("weights_license_commercial", False, f"{lp.code}: {lp.detail}", LaneError(lp.code, lp.detail))
        elif report.entries:
            record("weights_license_commercial", True,
                   "code and weights licences allowed for all entries: "
                   + ", ".join(f"{e.id}={e.weights_license}" for e in report.entries))
        else:
            record("weights_license_commercial", False, "manifest has no entries to check",
                   LaneError("weights_manifest_invalid", "manifest has no entries"))
        st.stats(weights_entries=len(report.entries), weights_verified=n_ok, weights_absent_optional=n_abs)
        needs_base = bool(prof.get("promotable", False)) and not allow_from_scratch
        usable_roles = {e.role for e in report.entries if e.state == "ok"}
        missing_roles = [r for r in ("base_spectrogram", "base_vocoder") if r not in usable_roles]
        if needs_base and missing_roles:
            msg = f"profile {profile} fine-tunes from base weights; no usable entry for {missing_roles}"
            record("base_weights", False, msg, LaneError("base_weights_missing", msg))
        elif needs_base:
            record("base_weights", True, "base_spectrogram and base_vocoder verified")
        else:
            why = "--allow-from-scratch" if allow_from_scratch else f"profile {profile} trains from scratch"
            record("base_weights", True, f"not required ({why})")
    else:
        no_manifest = LaneError("weights_manifest_invalid", "no weights manifest given (--weights-manifest)")
        record("weights_manifest_ok", False, no_manifest.detail, no_manifest)
        record("weights_license_commercial", False, "no manifest: licences unknown",
               LaneError("weights_license_blocked", "no manifest: licences unknown"))

    # 5. runtime
    st.progress(5, total, "runtime")
    runtime_kind = spec.runtime if spec else "nemo"
    nemo_version: str | None = None
    if runtime_kind == "nemo":
        try:
            nemo_version = check_nemo()
            record("runtime_nemo", True, f"nemo {nemo_version} importable (nemo.collections.tts present)")
        except LaneError as err:
            record("runtime_nemo", False, f"{err.code}: {err.detail}", err)
    else:
        record("runtime_nemo", None, f"lane runtime is {runtime_kind}, not NeMo", optional=True)
    try:
        torch_version, device, cuda = check_torch()
        record("runtime_torch", True, f"torch {torch_version} on {device}")
    except LaneError as err:
        torch_version, device, cuda = None, "none", False
        record("runtime_torch", False, f"{err.code}: {err.detail}", err)
    pf.runtime = RuntimeInfo(nemo_version, torch_version, device, cuda)
    st.stats(nemo_version=nemo_version or "n/a", torch_version=torch_version or "n/a", device=device, cuda=cuda)

    # 6. resources
    st.progress(6, total, "resources")
    res = prof.get("resources", {}) or {}
    need_disk = float(res.get("min_free_disk_gb", 0))
    need_mem = float(res.get("min_free_mem_gb", 0))
    disk = free_disk_gb(rootp)
    mem = free_memory_gb()
    ok_disk = disk >= need_disk
    ok_mem = not (mem < need_mem)  # nan (unknown) passes: the kernel, not this check, will say
    record("resources_disk", ok_disk, f"{disk:.1f} GB free at {rootp}, profile needs {need_disk:g} GB",
           None if ok_disk else LaneError("insufficient_resources", f"free disk {disk:.1f} GB < {need_disk:g} GB"),
           value=round(disk, 2), threshold=need_disk)
    record("resources_mem", ok_mem, f"{mem:.1f} GB available, profile needs {need_mem:g} GB",
           None if ok_mem else LaneError("insufficient_resources", f"free memory {mem:.1f} GB < {need_mem:g} GB"),
           value=round(mem, 2), threshold=need_mem)
    st.stats(free_disk_gb=round(disk, 2), free_mem_gb=round(mem, 2))

    # 7. promotability (a stat the report reads, not a check: a demo run still passes verify)
    st.progress(7, total, "promotable")
    if spec is not None and spec.status == "experimental":
        reason = "experimental_lane"
    elif spec is None or not spec.promotable or not prof.get("promotable", False) or allow_from_scratch:
        reason = "lane_not_promotable"
    else:
        reason = ""
    pf.promotable = reason == ""
    pf.not_promotable_reason = reason
    st.stats(promotable=pf.promotable, not_promotable_reason=reason, lane_id=spec.id if spec else lane,
             input_format=input_format)

    write_media(st, pf)
    if raise_first and pf.errors:
        raise pf.errors[0]
    return pf


def _md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(none)\n"
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(c, "")).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(out) + "\n"


def write_media(st: Any, pf: Preflight) -> None:
    """The weights/licence table and the audio inventory as report media (text tables)."""
    from ..core.fsutil import atomic_write_text
    from ..core.media import MediaItem, media_dir, write_index

    mdir = media_dir(st.stage_dir)
    items = []
    if pf.weights:
        atomic_write_text(mdir / "weights.md", _md_table(
            pf.weights, ["id", "role", "state", "code_license", "weights_license", "path", "source"]))
        items.append(MediaItem("table", "media/weights.md", "weights manifest: state and licences per entry",
                               "Weights and licences"))
    if pf.audio is not None:
        rows = pf.audio.table()
        text = _md_table(rows[:200], ["path", "duration_s", "sample_rate", "channels", "format", "subtype", "bytes"])
        if len(rows) > 200:
            text += f"\n... and {len(rows) - 200} more file(s)\n"
        for problem in pf.audio.problems[:50]:
            text += f"\nskipped: {problem}"
        atomic_write_text(mdir / "audio_inputs.md", text)
        items.append(MediaItem("table", "media/audio_inputs.md",
                               f"audio inputs: {len(rows)} file(s), {pf.audio.total_s} s", "Audio inputs"))
    write_index(st.stage_dir, "verify", items)
