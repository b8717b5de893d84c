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

* intelligibility - `Asr` (pocketsphinx, the wheel's en-us model) + `cer` / `wer`. The decoder can use
  its general n-gram LM (``mode="lm"``) or a grammar built from the expected text (``mode="jsgf"``: a
  loop over the sentence's own words, so order, count and omissions still have to be heard). The
  gate is the ratio synth/reference, never the bare CER.
* speaker similarity - `SpeakerEncoder` (resemblyzer), cosine of utterance embeddings.
* spectral distance - `mcd_dtw` (mel-cepstral-distance, DTW-aligned).
* prosody - `prosody_metrics`: F0 RMSE / correlation and voiced-unvoiced error on DTW-aligned frames
  (pyworld harvest for F0, MFCC DTW from librosa), and `duration_ratio` of the trimmed speech.
* naturalness - `Dnsmos` (speechmos' DNSMOS ONNX models).
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
from .audio import ASR_SR, EVAL_SR, load_audio, resample, to_mono_float, trim
from .evaluators import (
    EVALUATOR_ROLES,
    Asr,
    Dnsmos,
    Evaluators,
    EvaluatorStatus,
    SpeakerEncoder,
    evaluator_status,
    load_evaluators,
)
from .text import cer, normalize_words, wer
from .thresholds import METRIC_EVALUATOR, Threshold, load_thresholds

__all__ = ["ASR_SR", "EVALUATOR_ROLES", "EVAL_SR", "METRIC_EVALUATOR", "Asr", "Dnsmos", "EvaluatorStatus", "Evaluators",
           "Sanity", "SpeakerEncoder", "Threshold", "cer", "cosine", "dtw_path", "duration_ratio", "evaluator_status",
           "f0_contour", "load_audio", "load_evaluators", "load_thresholds", "mcd_dtw", "measure_rtf", "nanmean",
           "normalize_words", "prosody_metrics", "resample", "safe_ratio", "sanity", "speech_duration", "to_mono_float",
           "trim", "wer"]
