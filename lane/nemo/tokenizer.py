"""Describe a NeMo text tokenizer as plain JSON (+ its G2P files) so the ONNX bundle tokenizes without NeMo.

`export_tokenizer(vocab, out_dir)` writes ``tokenizer.json`` and, for phoneme tokenizers, the G2P's
pronunciation dictionary (``g2p_dict.txt``) and heteronym list (``heteronyms.txt``) taken from the
tokenizer's IN-MEMORY G2P (`vocab.g2p.phoneme_dict`, `vocab.g2p.heteronyms`: the content of the .nemo's
own artifacts after NeMo parsed them, i.e. exactly what NeMo looks words up in). The description holds
their sha256, sizes and entry counts, and `lane.text.tokenizers.load_tokenizer` replays it.

Replayed exactly (see lane.text.tokenizers / lane.text.g2p): character tokenizers (BaseCharsTokenizer
family with english_text_preprocessing or identity preprocessing), EnglishPhonemesTokenizer + EnglishG2p
and IPATokenizer + IpaG2p (locale en-US), with apply_to_oov_word=None. `runnable_without_nemo` is true
only when every option in use is replayable; otherwise `unsupported` lists why.

`phoneme_probability` in the description is the INFERENCE value: FastPitchModel.parse wraps encoding in
`vocab.set_phone_prob(1.0)`, so every dictionary word is phonemised; the training value is kept as
`phoneme_probability_training`. `nemo_encode(vocab, text)` is NeMo's side of that (use it, not
`vocab.encode`, when comparing with the replay: a tokenizer trained with phoneme_probability=0.5 encodes
at random otherwise).
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TOKENIZER_SCHEMA = "lane.tokenizer/1"
DICT_FILE = "g2p_dict.txt"
HETERONYMS_FILE = "heteronyms.txt"


def _normalizer_id() -> str | None:
    try:
        from ..text.normalize import NORMALIZER_ID
    except Exception:  # num2words missing: the description still works, it just cannot name it
        return None
    return NORMALIZER_ID


def nemo_encode(vocab: Any, text: str) -> list[int]:
    """Token ids as FastPitchModel.parse computes them (without its text normaliser)."""
    if hasattr(vocab, "set_phone_prob"):
        with vocab.set_phone_prob(prob=1.0):
            return [int(i) for i in vocab.encode(text)]
    return [int(i) for i in vocab.encode(text)]


def _file_spec(name: str, data: bytes, extra: dict[str, Any], provenance: Mapping[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"path": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), **extra}
    spec.update({"source": None, "licence": None})
    if provenance:
        spec.update(dict(provenance))
    return spec


def _g2p_files(g2p: Any, unsupported: list[str], provenance: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    from ..text.g2p import (
        G2P_DICT_FORMAT,
        HETERONYMS_FORMAT,
        G2pUnsupported,
        write_g2p_dict,
        write_heteronyms,
    )

    out: dict[str, Any] = {"dictionary": None, "heteronyms": None}
    files: dict[str, bytes] = {}
    pdict = getattr(g2p, "phoneme_dict", None)
    if not isinstance(pdict, Mapping):
        unsupported.append(f"g2p.phoneme_dict is a {type(pdict).__name__}, not a mapping")
        return out, files
    try:
        data = write_g2p_dict(pdict)
    except G2pUnsupported as exc:
        unsupported.append(str(exc))
        return out, files
    n_prons = sum(len(v) for v in pdict.values())
    out["dictionary"] = _file_spec(DICT_FILE, data, {
        "format": G2P_DICT_FORMAT, "entries": len(pdict), "pronunciations": n_prons,
        "ambiguous": sum(1 for v in pdict.values() if len(v) > 1)}, provenance.get("dictionary"))
    files[DICT_FILE] = data
    het = getattr(g2p, "heteronyms", None)
    if het is not None:
        if not isinstance(het, set | frozenset | list | tuple) or not all(isinstance(w, str) for w in het):
            unsupported.append(f"g2p.heteronyms is a {type(het).__name__} of non-strings")
        else:
            try:
                hdata = write_heteronyms(het)
            except G2pUnsupported as exc:
                unsupported.append(str(exc))
            else:
                out["heteronyms"] = _file_spec(HETERONYMS_FILE, hdata, {
                    "format": HETERONYMS_FORMAT, "entries": len(set(het))}, provenance.get("heteronyms"))
                files[HETERONYMS_FILE] = hdata
    return out, files


def _inference_probability(g2p: Any) -> dict[str, Any]:
    trained = getattr(g2p, "phoneme_probability", None)
    return {"phoneme_probability": 1.0, "phoneme_probability_training": trained}


def _describe_chars(vocab: Any, desc: dict[str, Any]) -> list[str]:
    from nemo.collections.common.tokenizers.text_to_speech import tokenizer_utils as tu

    func = vocab.text_preprocessing_func
    if func is tu.english_text_preprocessing:
        prep = "english_lower"
    elif getattr(func, "__name__", "") == "<lambda>":
        prep = "identity"
    else:
        prep = getattr(func, "__name__", "unknown")
    desc.update({
        "type": "chars",
        "space_id": int(vocab.space),
        "punct": bool(vocab.punct),
        "punct_list": list(vocab.PUNCT_LIST) if vocab.punct else [],
        "pad_with_space": bool(vocab.pad_with_space),
        "preprocessing": prep,
        "synoglyphs": dict(tu.SYNOGLYPH2ASCII) if prep == "english_lower" else {},
    })
    return [] if prep in ("english_lower", "identity") else [f"text preprocessing {prep!r} is not replayed"]


def _g2p_common(g2p: Any) -> dict[str, Any]:
    from nemo.collections.common.tokenizers.text_to_speech import tokenizer_utils as tu

    return {"word_tokenizer": "english_word_tokenize" if g2p.word_tokenize_func is tu.english_word_tokenize
            else "custom",
            "ignore_ambiguous_words": bool(g2p.ignore_ambiguous_words),
            "apply_to_oov_word": None if g2p.apply_to_oov_word is None else repr(g2p.apply_to_oov_word),
            **_inference_probability(g2p)}


def _describe_arpabet(vocab: Any, desc: dict[str, Any], unsupported: list[str],
                      provenance: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    from nemo.collections.common.tokenizers.text_to_speech import tokenizer_utils as tu
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import EnglishPhonemesTokenizer
    from nemo.collections.tts.g2p.models.en_us_arpabet import EnglishG2p

    g2p = vocab.g2p
    default_prep = inspect.signature(EnglishPhonemesTokenizer.__init__).parameters["text_preprocessing_func"].default
    desc.update({
        "type": "arpabet",
        "space_id": int(vocab.space),
        "punct": bool(vocab.punct),
        "punct_list": list(vocab.PUNCT_LIST),
        "stresses": bool(vocab.stresses),
        "chars": bool(vocab.chars),
        "pad_with_space": bool(vocab.pad_with_space),
        "preprocessing": "english_text_preprocessing(lower=False)"
        if vocab.text_preprocessing_func is default_prep else "custom",
        "synoglyphs": dict(tu.SYNOGLYPH2ASCII),
    })
    if desc["preprocessing"] == "custom":
        unsupported.append("EnglishPhonemesTokenizer has a custom text_preprocessing_func")
    if type(g2p) is not EnglishG2p:
        unsupported.append(f"g2p is {type(g2p).__name__}, only EnglishG2p is replayed with ARPABET")
        return {"class": type(g2p).__name__}, {}
    g2p_desc = {"class": "EnglishG2p", **_g2p_common(g2p)}
    found, files = _g2p_files(g2p, unsupported, provenance)
    g2p_desc.update(found)
    return g2p_desc, files


def _describe_ipa(vocab: Any, desc: dict[str, Any], unsupported: list[str],
                  provenance: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    from nemo.collections.common.tokenizers.text_to_speech import tokenizer_utils as tu
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import IPATokenizer
    from nemo.collections.tts.g2p.models.i18n_ipa import IpaG2p

    g2p = vocab.g2p
    en_us_lambda = [c for c in IPATokenizer.__init__.__code__.co_consts if getattr(c, "co_name", None) == "<lambda>"]
    code = getattr(vocab.text_preprocessing_func, "__code__", None)
    en_us = len(en_us_lambda) == 1 and code is en_us_lambda[0]
    desc.update({
        "type": "ipa",
        "locale": getattr(g2p, "locale", None) if en_us else "other",
        "space_id": int(vocab.space),
        "punct": bool(vocab.punct),
        "punct_list": list(vocab.punct_list) if vocab.punct else None,
        "pad_with_space": bool(vocab.pad_with_space),
        "preprocessing": "english_text_preprocessing(lower=False)" if en_us else "any_locale",
        "synoglyphs": dict(tu.SYNOGLYPH2ASCII),
    })
    if not en_us:
        unsupported.append("IPATokenizer is not en-US: only the en-US text preprocessing is replayed")
    if type(g2p) is not IpaG2p:
        unsupported.append(f"g2p is {type(g2p).__name__}, only IpaG2p is replayed with IPA")
        return {"class": type(g2p).__name__}, {}
    if g2p.locale != "en-US":
        unsupported.append(f"IpaG2p locale {g2p.locale!r}: only en-US is replayed")
    g2p_desc = {"class": "IpaG2p", "locale": g2p.locale, **_g2p_common(g2p),
                "grapheme_case": g2p.grapheme_case, "grapheme_prefix": g2p.grapheme_prefix or "",
                "use_chars": bool(g2p.use_chars), "use_stresses": bool(g2p.use_stresses)}
    found, files = _g2p_files(g2p, unsupported, provenance)
    g2p_desc.update(found)
    return g2p_desc, files


def _describe(vocab: Any, provenance: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, bytes]]:
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import (
        BaseCharsTokenizer,
        EnglishPhonemesTokenizer,
        IPATokenizer,
    )

    desc: dict[str, Any] = {
        "schema": TOKENIZER_SCHEMA,
        "class": type(vocab).__name__,
        "tokens": list(vocab.tokens),
        "pad_id": int(vocab.pad),
        "oov_id": int(vocab.oov) if getattr(vocab, "oov", None) is not None else None,
        "blank_id": int(vocab.blank) if getattr(vocab, "blank", None) is not None else None,
        "normalizer": _normalizer_id(),
    }
    files: dict[str, bytes] = {}
    if isinstance(vocab, BaseCharsTokenizer):
        unsupported = _describe_chars(vocab, desc)
    elif type(vocab) in (EnglishPhonemesTokenizer, IPATokenizer):
        unsupported = []
        describe = _describe_arpabet if type(vocab) is EnglishPhonemesTokenizer else _describe_ipa
        g2p_desc, files = describe(vocab, desc, unsupported, provenance or {})
        if g2p_desc.get("word_tokenizer") == "custom":
            unsupported.append("the G2P's word_tokenize_func is not english_word_tokenize")
        if g2p_desc.get("apply_to_oov_word") is not None:
            unsupported.append("apply_to_oov_word is a Python callable; only None (graphemes) is replayed")
        if "dictionary" in g2p_desc and g2p_desc["dictionary"] is None and not unsupported:
            unsupported.append("the G2P dictionary could not be written")
        desc["g2p"] = g2p_desc
    else:
        unsupported = [f"{type(vocab).__name__} is not replayed without NeMo"]
        desc["type"] = "phonemes"
    desc["runnable_without_nemo"] = not unsupported
    if unsupported:
        desc["unsupported"] = unsupported
    return desc, files


def describe_tokenizer(vocab: Any, provenance: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """JSON description of `model.vocab` (a NeMo BaseTokenizer). For phoneme tokenizers the description
    names the G2P files by sha256; `export_tokenizer` writes them."""
    return _describe(vocab, provenance)[0]


def export_tokenizer(vocab: Any, out_dir: str | Path, *, provenance: Mapping[str, Any] | None = None,
                     name: str = "tokenizer.json") -> dict[str, Any]:
    """Write `name` (the description) and the G2P files it names into out_dir; return the description.

    `provenance` may carry {"dictionary": {"source": ..., "licence": ...}, "heteronyms": {...}} (e.g. the
    .nemo artifact name from model.cfg.text_tokenizer.g2p.phoneme_dict and the base weights' licence)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    desc, files = _describe(vocab, provenance)
    for fname, data in files.items():
        (out / fname).write_bytes(data)
    (out / name).write_text(json.dumps(desc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return desc


def exported_files(desc: Mapping[str, Any]) -> list[str]:
    """The file names a description refers to besides itself (for the bundle's file list)."""
    g = desc.get("g2p") or {}
    return [spec["path"] for key in ("dictionary", "heteronyms") if isinstance(spec := g.get(key), dict)]
