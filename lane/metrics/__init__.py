"""Quality metrics for a synthesized voice, and the thresholds that turn them into checks.

    audio       mono float32, resampling, reading, trimming
    text        CER / WER on normalised words
    acoustic    speaker cosine, MCD, F0 and voicing, duration, sanity, speed
    evaluators  ASR, speaker encoder, DNSMOS from the weights manifest (licence-checked)
    thresholds  `eval.thresholds` as checks

Every metric here is a plain function on audio arrays (float32, mono, with their sample rate) so it
can be tested on known inputs. The evaluators that need weights take them from the weights manifest
(`lane.core.weights.resolve_weight`) through `load_evaluators`; an evaluator that is missing or whose
licence is blocked is reported as such, and its checks become "not evaluated".

Metrics:

* intelligibility - an ASR that decodes freely (is not told the sentence) + `cer` / `wer`: pocketsphinx
  with its general English LM (`Asr`, the default), a NeMo ASR `.nemo` (`NemoAsr`), openai-whisper
  (`WhisperAsr`) or faster-whisper (`FasterWhisperAsr`), from local weights (`asr_models`). The
  gates are the CER of the synthesis and its ratio to the recordings'. pocketsphinx can also decode
  with a grammar of the expected words (``mode="jsgf"``): reported as an advisory row, never gated.
* speaker similarity - `SpeakerEncoder` (resemblyzer's GE2E) or `TitaNet` (NeMo), cosine of utterance
  embeddings (`speaker_models`).
* spectral distance - `mcd_dtw` (mel-cepstral-distance, DTW-aligned).
* prosody - `prosody_metrics`: F0 RMSE / correlation and voiced-unvoiced error on DTW-aligned frames
  (pyworld harvest for F0, MFCC DTW from librosa), and `duration_ratio` of the trimmed speech.
* naturalness - `Dnsmos` (speechmos' DNSMOS ONNX models) or `Utmos` (UTMOS22 via utmos-pytorch),
  `mos_models`.
* sanity - `sanity`: NaN/inf, silence, clipping, long internal silences, length for the text.
* speed - `measure_rtf`.
"""

from __future__ import annotations

from .acoustic import (
    Sanity,
    cosine,
    dtw_path,
    duration_ratio,
    f0_contour,
    mcd_dtw,
    measure_rtf,
    nanmean,
    prosody_metrics,
    safe_ratio,
    sanity,
    speech_duration,
)
from .asr_models import Asr, AsrModel, FasterWhisperAsr, NemoAsr, WhisperAsr
from .audio import ASR_SR, EVAL_SR, load_audio, resample, to_mono_float, trim
from .evaluators import (
    CLASSES,
    DEFAULT_CLASS,
    EVALUATOR_ROLES,
    Evaluators,
    EvaluatorStatus,
    entry_class,
    evaluator_status,
    load_evaluators,
    selection_of,
)
from .mos_models import Dnsmos, MosModel, Utmos
from .speaker_models import SpeakerEncoder, SpeakerModel, TitaNet
from .text import cer, normalize_words, wer
from .thresholds import (
    METRIC_EVALUATOR,
    METRIC_TOOLS,
    Threshold,
    evaluator_label,
    load_thresholds,
    metric_evaluators,
)

__all__ = ["ASR_SR", "CLASSES", "DEFAULT_CLASS", "EVALUATOR_ROLES", "EVAL_SR", "METRIC_EVALUATOR", "METRIC_TOOLS", "Asr", "AsrModel",
           "Dnsmos", "EvaluatorStatus", "Evaluators", "FasterWhisperAsr", "MosModel", "NemoAsr", "Sanity",
           "SpeakerEncoder", "SpeakerModel", "Threshold", "TitaNet", "Utmos", "WhisperAsr", "cer", "cosine",
           "dtw_path", "duration_ratio", "entry_class", "evaluator_label", "evaluator_status",
           "f0_contour", "load_audio", "load_evaluators", "load_thresholds", "mcd_dtw", "measure_rtf", "metric_evaluators", "nanmean",
           "normalize_words", "prosody_metrics", "resample", "safe_ratio", "sanity", "selection_of", "speech_duration", "to_mono_float",
           "trim", "wer"]
