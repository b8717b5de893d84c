"""Describe a NeMo text tokenizer as plain JSON so the ONNX bundle can tokenize without NeMo.

Only character tokenizers (BaseCharsTokenizer family, e.g. EnglishCharsTokenizer) can be described
completely: the description holds the token list, the pad id, the punctuation list and the text
preprocessing (unicode folding + lowercasing). lane.bundle.voice.CharTokenizer replays it exactly.
Phoneme tokenizers (ARPABET/IPA with a G2P) are recorded with `runnable_without_nemo: false`.
"""

from __future__ import annotations

from typing import Any

TOKENIZER_SCHEMA = "lane.tokenizer/1"


def describe_tokenizer(vocab) -> dict[str, Any]:
    """JSON description of `model.vocab` (a NeMo BaseTokenizer)."""
    from nemo.collections.common.tokenizers.text_to_speech.tokenizer_utils import (
        SYNOGLYPH2ASCII,
        english_text_preprocessing,
    )
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import BaseCharsTokenizer

    desc: dict[str, Any] = {
        "schema": TOKENIZER_SCHEMA,
        "class": type(vocab).__name__,
        "tokens": list(vocab.tokens),
        "pad_id": int(vocab.pad),
        "oov_id": int(vocab.oov) if getattr(vocab, "oov", None) is not None else None,
        "blank_id": int(vocab.blank) if getattr(vocab, "blank", None) is not None else None,
    }
    if isinstance(vocab, BaseCharsTokenizer):
        func = vocab.text_preprocessing_func
        if func is english_text_preprocessing:
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
            "synoglyphs": dict(SYNOGLYPH2ASCII) if prep == "english_lower" else {},
            "runnable_without_nemo": prep in ("english_lower", "identity"),
        })
    else:
        desc.update({"type": "phonemes", "runnable_without_nemo": False})
    return desc
