"""The failure taxonomy: every way a run can end, as a code with a meaning, an unblock action and an
exit code, plus the one exception root (`LaneError`) that carries a code through the whole lane.

Exit codes group codes by who has to act:

====  ===========================================================================
0     success (`ok`)
2     blocked: an operator decision or environment is missing (seed: managed job without an engine)
3     bad input: audio, transcript, dataset or manifest the operator supplied
4     runtime failure: a stage, kernel, container or export broke
5     gate: the run finished but a quality, integrity or policy check said no
====  ===========================================================================

Codes with ``scope="clip"`` reject a single clip during data preparation; they appear in the dataset
manifest, never as a run's final reason, but they are listed here so there is one table of reasons.
Codes with ``scope="request"`` answer a request to `lane serve` (HTTP or Wyoming): the `error` of its JSON
error body; their exit code only groups them like the others.

This module must stay import-light: `lane --help` and `lane reasons` load it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["run", "clip", "request"]
FailStatus = Literal["blocked", "failed"]

EXIT_OK = 0
EXIT_BLOCKED = 2
EXIT_INPUT = 3
EXIT_RUNTIME = 4
EXIT_GATE = 5


@dataclass(frozen=True)
class Reason:
    code: str
    meaning: str
    action: str
    exit_code: int
    scope: Scope = "run"
    seed: bool = False


def _r(code: str, meaning: str, action: str, exit_code: int, scope: Scope = "run", seed: bool = False) -> Reason:
    return Reason(code, meaning, action, exit_code, scope, seed)


_ALL: list[Reason] = [
    _r("ok", "the run or stage completed and every gate passed", "none", EXIT_OK),
    # --- seed codes: names are a contract, never rename -----------------------------------------
    _r("deterministic_head_mismatch", "checkout does not match the required head, or the tree is dirty where the config requires it clean",
       "sync the repo (git fetch && git checkout <sha>) and rerun with the expected SHA", EXIT_BLOCKED, seed=True),
    _r("missing_audio_path", "the input audio path is missing, unreadable, empty or holds no decodable audio",
       "stage source audio into data/knowledge_audio_source and pass it with --audio / AUDIO_PATH", EXIT_INPUT, seed=True),
    _r("docker_build_failed", "the production image failed to build (or no Docker engine is reachable)",
       "inspect artifacts/voice_train_prod.orchestrator.log and fix the dependency pin or start the engine", EXIT_RUNTIME, seed=True),
    _r("docker_run_failed", "the runner inside the container returned non-zero",
       "inspect the log tail and artifacts/train_status.<lane>.json", EXIT_RUNTIME, seed=True),
    _r("managed_job_not_implemented", "the managed backend has no engine configured (the seed's stub)",
       "set managed_job.engine: slurm in configs/lane.yaml (docs/slurm.md), or use the local_docker (or local) backend",
       EXIT_BLOCKED, seed=True),
    _r("nemo_runtime_unavailable", "NeMo (nemo_toolkit[tts]) cannot be imported in the stage's Python",
       "install the nemo extra (bash scripts/setup.sh) or run with --backend local_docker", EXIT_BLOCKED, seed=True),
    # --- runner and gates -----------------------------------------------------------------------
    _r("stage_failed", "a notebook cell raised; the detail names the cell, exception and value",
       "open runs/<run_id>/<stage>.html at the failing cell and fix the cause", EXIT_RUNTIME),
    _r("stage_timeout", "a notebook cell ran past the configured per-cell timeout",
       "raise cell_timeout_s in the config or make the stage cheaper", EXIT_RUNTIME),
    _r("kernel_died", "the notebook's kernel process died (crash, OOM kill, os._exit)",
       "check memory and native crashes in the stage log, then rerun with --resume", EXIT_RUNTIME),
    _r("gate_failed", "a stage finished but one of its checks failed; first_fail names it",
       "read the failing check in the readiness report and fix the data, config or model", EXIT_GATE),
    _r("result_invalid", "a stage wrote no result.json, or one that breaks its JSON Schema",
       "fix the notebook so it ends by writing its stage result", EXIT_RUNTIME),
    _r("config_invalid", "the lane configuration or a profile fails its schema or names an unknown key",
       "fix the config file; `lane run --help` lists the settings", EXIT_INPUT),
    _r("interrupted", "the run was interrupted (Ctrl-C or SIGTERM)", "rerun with --resume RUN_ID", EXIT_RUNTIME),
    _r("lost", "the run's status says running but the process that kept it is gone (kill -9, the OOM killer, a "
       "restarted machine): nothing recorded how it ended", "`lane run --resume RUN_ID` continues after the last stage "
       "that passed", EXIT_RUNTIME),
    _r("run_not_found", "no run directory exists for the given run id", "check `lane status` for known run ids", EXIT_INPUT),
    _r("ledger_broken", "the ledger's hash chain, a certificate or an artifact hash no longer verifies",
       "restore reports/ledger.jsonl from a trusted copy; `lane ledger verify` names the first broken entry", EXIT_GATE),
    _r("not_evaluated", "a required check had no evidence (its stage or evaluator did not run)",
       "run the missing stage or evaluator; optional checks are marked so in the config", EXIT_GATE),
    # --- orchestrator, lanes, weights and licences ---------------------------------------------
    _r("unknown_backend", "the backend is not one of local, local_docker, managed_job",
       "pass --backend local|local_docker|managed_job", EXIT_INPUT),
    _r("unknown_lane", "the lane name is not in configs/lanes/", "run `lane lanes` and pick a listed lane", EXIT_INPUT),
    _r("espnet_runtime_unavailable", "the ESPnet fallback lane is declared but not built yet",
       "use the tts_prod_train_nemo lane", EXIT_BLOCKED),
    _r("experimental_lane", "the lane is experimental and never promotable", "use a production lane for release", EXIT_GATE),
    _r("lane_not_promotable", "the run used a profile or option that cannot be promoted (demo, from scratch)",
       "rerun with the production profile and licensed base weights", EXIT_GATE),
    _r("weights_manifest_invalid", "the weights manifest is not JSON or breaks its schema",
       "fix the manifest; `lane verify-weights PATH` shows the first error", EXIT_INPUT),
    _r("weights_file_missing", "a weights file named in the manifest does not exist",
       "place the file at the manifest's path or mark the entry optional", EXIT_INPUT),
    _r("weights_hash_mismatch", "a weights file's sha256 differs from the manifest",
       "re-fetch the file from its source or correct the manifest after review", EXIT_INPUT),
    _r("weights_license_blocked", "a weights licence is non-commercial, unknown or unclear: NO-GO by policy",
       "use weights whose licence allows commercial use (configs/licenses.yaml)", EXIT_GATE),
    _r("code_license_blocked", "a code licence is not on the allow-list", "replace the component or get a legal review", EXIT_GATE),
    _r("insufficient_resources", "free disk or memory is below what the profile needs",
       "free disk/memory or pick a smaller profile", EXIT_BLOCKED),
    _r("gpu_unavailable", "the run asks for a GPU (profile train.accelerator: gpu, `--gpus` of local_docker, a Slurm "
       "gres/gpus request) but the runner finds none (torch.cuda.is_available() false or nvidia-smi lists none); "
       "checked before any stage, so nothing trains on the CPU by accident",
       "run on a machine with a working GPU (driver, NVIDIA Container Toolkit for containers), or ask for none: "
       "accelerator auto|cpu, LANE_DOCKER_GPUS=none", EXIT_BLOCKED),
    _r("workspace_not_writable", "a folder the container mounts read-write (artifacts, bundles, reports, runs, .cache) "
       "is not writable for the uid:gid the container runs as (the calling user)",
       "chown the folder to your user (or run as its owner); the container never runs as root", EXIT_BLOCKED),
    # --- data preparation: dataset level --------------------------------------------------------
    _r("input_format_unknown", "the input is none of: long recordings, recordings + transcript, LJSpeech folder, NeMo manifest",
       "pass --input-format or lay the data out as the README describes", EXIT_INPUT),
    _r("metadata_invalid", "an LJSpeech metadata.csv or NeMo manifest cannot be parsed (delimiter, encoding, fields)",
       "fix the file: UTF-8, id|text[|normalized] rows, one per clip", EXIT_INPUT),
    _r("asr_unavailable", "no transcription engine is available for untranscribed audio",
       "provide a transcript, install pocketsphinx, or list a NeMo ASR .nemo in the weights manifest", EXIT_BLOCKED),
    _r("dataset_empty", "no clip survived the checks, or the input lists none (a metadata.csv with only its header "
       "row): there is nothing to train on",
       "read the rejection table in the dataset manifest and fix the recordings (or list them)", EXIT_INPUT),
    _r("dataset_too_small", "the kept audio is shorter than the profile minimum",
       "record more speech or lower min_total_s for a non-production profile", EXIT_INPUT),
    # --- data preparation: per clip ------------------------------------------------------------
    _r("audio_decode_failed", "the file could not be decoded as audio", "re-export the file as WAV or FLAC", EXIT_INPUT, "clip"),
    _r("too_short", "clip shorter than the minimum duration", "none: the clip is dropped", EXIT_INPUT, "clip"),
    _r("too_long", "clip longer than the maximum duration and could not be split", "none: the clip is dropped", EXIT_INPUT, "clip"),
    _r("clipping", "too many samples at full scale", "re-record with lower input gain", EXIT_INPUT, "clip"),
    _r("low_snr", "estimated signal-to-noise ratio below the minimum", "record in a quieter room", EXIT_INPUT, "clip"),
    _r("silent", "the clip holds no speech energy", "none: the clip is dropped", EXIT_INPUT, "clip"),
    _r("excess_silence", "leading, trailing or internal silence beyond the limits", "trim the recording", EXIT_INPUT, "clip"),
    _r("empty_text", "the clip has no text after normalisation", "fix the transcript", EXIT_INPUT, "clip"),
    _r("text_out_of_vocabulary", "the text holds characters the tokenizer cannot represent",
       "fix the transcript or extend the normalisation map", EXIT_INPUT, "clip"),
    _r("speaking_rate_outlier", "characters per second far outside the speaker's range",
       "check the transcript matches the audio", EXIT_INPUT, "clip"),
    _r("duplicate_audio", "the same audio (sha256) appears more than once", "none: later copies are dropped", EXIT_INPUT, "clip"),
    _r("alignment_low_confidence", "the clip's transcript alignment confidence is below the threshold",
       "check that the transcript matches the recording", EXIT_INPUT, "clip"),
    _r("missing_file", "a metadata row names an audio file that does not exist", "add the file or remove the row", EXIT_INPUT, "clip"),
    # --- training and export --------------------------------------------------------------------
    _r("base_weights_missing", "the production profile needs base weights and none are in the manifest",
       "add base_spectrogram/base_vocoder entries to the weights manifest, or pass --allow-from-scratch (not promotable)", EXIT_BLOCKED),
    _r("base_checkpoint_incompatible", "the base checkpoint's vocabulary or architecture does not match the config",
       "use the checkpoint's own tokenizer or a matching base checkpoint", EXIT_INPUT),
    _r("training_diverged", "a training loss became NaN or infinite", "lower the learning rate or check the data", EXIT_RUNTIME),
    _r("checkpoint_missing", "resume was asked for but no usable checkpoint exists", "rerun without --resume", EXIT_RUNTIME),
    _r("export_failed", "exporting the model (.nemo or ONNX) failed", "read the export notebook's failing cell", EXIT_RUNTIME),
    _r("onnx_mismatch", "the ONNX output differs from the PyTorch output beyond tolerance",
       "check the export opset and dynamic axes", EXIT_RUNTIME),
    _r("bundle_invalid", "the voice bundle fails its schema, misses a file or a hash does not match",
       "rebuild the bundle with `lane run --resume`; never edit a bundle by hand", EXIT_GATE),
    # --- validation -----------------------------------------------------------------------------
    _r("evaluator_unavailable", "an evaluation model is missing or failed to load", "install it or mark the check optional", EXIT_GATE),
    _r("evaluator_license_blocked", "an evaluation model's weights licence is not allowed", "replace the evaluator", EXIT_GATE),
    _r("synthesis_failed", "the bundle could not synthesize the evaluation sentences", "check the bundle's ONNX files", EXIT_RUNTIME),
    # --- promotion: the verdict, consent, signatures, live bundles --------------------------------
    _r("stages_incomplete", "the run did not pass every stage of its lane in this run (validate included): no GO on partial evidence",
       "run the whole lane (or `lane run --resume RUN_ID` to finish it)", EXIT_GATE),
    _r("thresholds_below_floor", "a promotable profile sets a quality threshold looser than the lane's floor (or drops a gated metric)",
       "restore the threshold to at least the floor in lane/promotion.py, or mark the profile not promotable", EXIT_GATE),
    _r("consent_missing", "no verified spoken consent of this voice covers the recordings (a self-asserted record no longer "
       "counts), or it does not permit the use: NO-GO by policy",
       "record one: `lane consent challenge`, the speaker reads the statement, then `lane consent record` (README: "
       "Speaker consent)", EXIT_GATE),
    _r("consent_invalid", "the consent record is not JSON, breaks its schema, is not signed by a trusted key or not in the "
       "ledger, or its consent audio changed", "record the consent again with `lane consent record`; `lane verify-consent "
       "PATH` shows the first error", EXIT_INPUT),
    _r("consent_statement_mismatch", "the consent recording does not say the challenge's statement: too few of its one-time words were "
       "heard, the use was not heard as issued, or too much of the text differs",
       "have the speaker read the statement exactly as printed, one-time words included, and record it again", EXIT_INPUT),
    _r("consent_speaker_mismatch", "the consent voice is not the recordings' voice: its similarity to them is below the "
       "threshold or not clearly above a cohort of other voices", "the person in the recordings must record the consent "
       "themselves; recordings replaced after the consent need a new consent", EXIT_GATE),
    _r("consent_not_fresh", "the consent recording was not made for a live challenge: the challenge is unknown, expired or "
       "already used, or the audio was used before or copies a recording it should cover",
       "issue a new challenge (`lane consent challenge`) and record the speaker reading it", EXIT_INPUT),
    _r("signing_key_unavailable", "the ledger signing key cannot be read or created outside the workspace",
       "check LANE_SIGNING_KEY (or ~/.config/voice-lane/signing-ed25519.pem): a file outside the workspace, mode 0600",
       EXIT_BLOCKED),
    _r("provenance_invalid", "the bundle's signed provenance statement is missing, unsigned by a trusted key, or does not match its files",
       "rebuild and re-validate the bundle; `lane verify-bundle PATH` names the first problem", EXIT_GATE),
    _r("promotion_refused", "the run's verdict is NO-GO, or its evidence no longer verifies: the candidate is not made live",
       "read the run's readiness report; fix the reasons it lists and run again", EXIT_GATE),
    _r("bundle_not_promoted", "the bundle is not a live, GO, hash-verified voice", "promote a GO run (`lane promote RUN_ID`), "
       "or pass --allow-unpromoted for development", EXIT_GATE),
    _r("rollback_unavailable", "the voice has no earlier live bundle to go back to", "promote a GO run instead", EXIT_INPUT),
    # --- trust: anchors outside the workspace, a frozen configuration, rollback protection ------------
    _r("trust_anchor_in_workspace", "a workspace config file names signing keys or a key path (signing.trusted_keys, "
       "signing.key_path): trust anchors come only from outside the workspace, so it is refused",
       "remove the signing section from configs/lane.yaml; trust keys with LANE_TRUSTED_KEYS or "
       "~/.config/voice-lane/trusted-keys (README: the signing key)", EXIT_BLOCKED),
    _r("ledger_rolled_back", "the ledger's signed head is older than the newest head this machine has witnessed: "
       "entries were removed by restoring an earlier ledger", "restore the newest reports/ledger.jsonl and "
       "ledger.head.json from a trusted copy; `lane ledger verify` names the versions", EXIT_GATE),
    _r("witness_unavailable", "the rollback witness outside the workspace cannot be read or written",
       "make LANE_WITNESS_DIR (or ~/.config/voice-lane/witness) a writable folder outside the workspace", EXIT_BLOCKED),
    _r("config_changed", "a resumed run's configuration differs from the snapshot frozen when it started",
       "start a new run (`lane run` without --resume), or restore the configuration the run started with", EXIT_INPUT),
    _r("candidate_mismatch", "the candidate bundle is not the promoted run's own: another path, run or voice than "
       "the one verified", "promote the run whose candidate it is; never link or copy candidates by hand", EXIT_GATE),
    # --- lane serve: the answer to one request (its HTTP status: lane/serve/errors.py) ---------------
    _r("request_invalid", "the request is malformed: bad JSON, a missing or wrong field, an invalid header (such as "
       "a negative Content-Length), an unsupported format", "fix the request; the detail names what is wrong",
       EXIT_INPUT, "request"),
    _r("request_too_large", "the request body or its text is over the server's limit (characters, or pieces or "
       "seconds of audio once numbers and symbols are spelled out)",
       "send less text per request (long texts stream sentence by sentence anyway)", EXIT_INPUT, "request"),
    _r("unauthorized", "a training endpoint was called without the bearer token, or with a wrong one",
       "send Authorization: Bearer <token> (the server's LANE_SERVE_TOKEN or serve.token_file)", EXIT_BLOCKED, "request"),
    _r("forbidden", "refused: a Host or Origin the server does not trust (DNS rebinding, a cross-site post), or a "
       "training endpoint while no token is configured", "call from an allowed origin (serve.allowed_hosts, "
       "serve.allowed_origins), or configure a token", EXIT_BLOCKED, "request"),
    _r("not_found", "no such endpoint, voice or job", "GET /v1/models lists the voices being served", EXIT_INPUT, "request"),
    _r("overloaded", "every synthesis slot is busy and the short wait queue is full (or every connection is busy): "
       "the server answers 503 with Retry-After instead of queueing without bound", "retry after Retry-After seconds "
       "(OpenAI's clients do), or raise serve.max_inflight / serve.max_queue", EXIT_RUNTIME, "request"),
    _r("request_timeout", "synthesis ran past the per-request time limit", "send shorter text or raise "
       "serve.request_timeout_s", EXIT_RUNTIME, "request"),
    _r("internal_error", "the server failed in an unexpected way (a bug)", "read the server log", EXIT_RUNTIME, "request"),
    # --- managed jobs (Slurm) and the job queue ---------------------------------------------------
    _r("scheduler_unavailable", "the scheduler cannot be used: no sbatch on PATH, SLURM_CONF names a missing file, "
       "or the controller (or MUNGE) does not answer in time",
       "install the Slurm client, check SLURM_CONF and `scontrol ping`, then `lane run --backend managed_job --resume RUN_ID`",
       EXIT_BLOCKED),
    _r("shared_fs_unavailable", "the job could not read back the probe file the submitter wrote: the workspace is not on "
       "a filesystem the compute node sees at the same path",
       "put the workspace on a shared filesystem mounted at the same path on every node (docs/slurm.md)", EXIT_BLOCKED),
    _r("job_rejected", "sbatch refused the job (unknown partition, account, QoS or GRES, or over a limit)",
       "fix the managed_job section of configs/lane.yaml; the detail quotes sbatch", EXIT_INPUT),
    _r("job_timeout", "the job reached its time limit (Slurm TIMEOUT or DEADLINE)",
       "raise managed_job.time, then `lane run --backend managed_job --resume RUN_ID` continues after the last stage that passed",
       EXIT_RUNTIME),
    _r("job_oom", "the job went over its memory limit (OUT_OF_MEMORY, or killed for exceeding --mem)",
       "raise managed_job.mem (or lower the batch size), then resume the run", EXIT_RUNTIME),
    _r("job_cancelled", "the job was cancelled (lane cancel, the job API, scancel or an administrator)",
       "resume it with `lane run --resume RUN_ID` if that was not intended", EXIT_RUNTIME),
    _r("job_failed", "the job ended without the runner's final status (node failure after its one requeue, boot "
       "failure, the job script failed, or the scheduler lost the job)",
       "read runs/<run_id>/slurm/slurm-<job_id>.out, then resume the run", EXIT_RUNTIME),
]

REASONS: dict[str, Reason] = {r.code: r for r in _ALL}
SEED_CODES: tuple[str, ...] = tuple(r.code for r in _ALL if r.seed)


def get(code: str) -> Reason:
    """The reason for `code`; unknown codes raise KeyError so typos fail loudly in tests."""
    return REASONS[code]


def exit_code(code: str) -> int:
    return REASONS[code].exit_code if code in REASONS else EXIT_RUNTIME


def fail_status(code: str) -> FailStatus:
    """How a run or stage that ends with `code` is labelled: `blocked` when an operator decision or
    the environment is missing (exit 2), `failed` for everything else."""
    return "blocked" if exit_code(code) == EXIT_BLOCKED else "failed"


class LaneError(Exception):
    """The root of every error the lane raises on purpose. `code` is a key of REASONS."""

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in REASONS:
            raise ValueError(f"unknown reason code {code!r}")
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)

    @property
    def reason(self) -> Reason:
        return REASONS[self.code]

    @property
    def exit_code(self) -> int:
        return self.reason.exit_code

    @property
    def status(self) -> FailStatus:
        """`blocked` or `failed`: the status a run or stage ending with this error gets."""
        return fail_status(self.code)


def table_markdown() -> str:
    """The reason table as Markdown; the README embeds exactly this text between markers."""
    lines = ["| Code | Scope | Exit | Meaning | Unblock action |", "|---|---|---|---|---|"]
    for r in _ALL:
        lines.append(f"| `{r.code}` | {r.scope} | {r.exit_code} | {r.meaning} | {r.action} |")
    return "\n".join(lines) + "\n"
