"""NeMo-free text tokenizers for the voice bundle, built from the JSON description that
`lane.nemo.tokenizer.export_tokenizer` writes (schema ``lane.tokenizer/1``).

    tok = load_tokenizer(json.loads(Path("tokenizer.json").read_text()), Path("."))
    tok = load_tokenizer_file(bundle_dir / "tokenizer.json")   # the same, files next to the JSON
    ids = tok.encode("Hello there.")        # == NeMo's vocab.encode at FastPitch inference
    tok.describe()                           # what the voice speaks: type, G2P, dictionary, OOV policy

Three replays of NeMo 3.0 (`nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers`):

- ``chars``: BaseCharsTokenizer.encode (EnglishCharsTokenizer and friends with english_text_preprocessing
  or no preprocessing);
- ``arpabet``: EnglishPhonemesTokenizer.encode with an EnglishG2p (`lane.text.g2p.ArpabetG2p`);
- ``ipa``: IPATokenizer.encode (locale en-US) with an IpaG2p (`lane.text.g2p.IpaG2p`).

The G2P's dictionary and heteronym list are files next to the description; their sha256 and sizes are
in the description and are checked on load. Whatever the replay cannot guarantee (other locales, a
custom preprocessing function, apply_to_oov_word, phoneme_probability < 1 at inference, files that do
not match their hashes) raises `TokenizerError` at load time.

NeMo behaviour the replay keeps (surprising, but it is what the model was trained on):

- Symbols that are not tokens are dropped, never mapped to ``<oov>`` (NeMo logs a warning). With
  EnglishPhonemesTokenizer(chars=False), grapheme fallbacks (OOV words, heteronyms, ambiguous words)
  are therefore dropped entirely.
- EnglishPhonemesTokenizer cuts 3-character alphanumeric symbols to 2 when stresses=False ("AH0" ->
  "AH"), whatever they are (also inside |...| spans).
- IPATokenizer never drops a leading or repeated space: its first branch appends a space after a
  non-space, and its second branch (`p in tokens`) appends any other space anyway, the space being a
  token (EnglishPhonemes and chars tokenizers drop them: their second branch needs isalnum()). A text whose symbols are only spaces makes
  NeMo's IPATokenizer fail (IndexError popping trailing spaces); the replay raises TokenizerError.
- IPATokenizer with punct=False has no punct list: a non-token symbol makes NeMo raise
  AttributeError; the replay raises TokenizerError.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TypedDict

from .g2p import (
    G2P_DICT_FORMAT,
    HETERONYMS_FORMAT,
    ArpabetG2p,
    G2pUnsupported,
    IpaG2p,
    WordTrace,
    check_phoneme_probability,
    english_text_preprocessing,
    parse_g2p_dict,
    parse_heteronyms,
)

TOKENIZER_SCHEMA = "lane.tokenizer/1"

__all__ = ["TOKENIZER_SCHEMA", "ArpabetTokenizer", "CharTokenizer", "IpaTokenizer", "Tokenizer", "TokenizerError",
           "load_tokenizer", "load_tokenizer_file"]


class TokenizerError(ValueError):
    """A tokenizer description this runtime cannot replay exactly, or files that do not match it."""


# What a voice speaks, from its tokenizer (Tokenizer.describe): the bundle manifest's tokenizer.speaks.
# `dictionary` and `heteronyms` summarise the G2P files (path, sha256, entries, licence ...).
Speaks = TypedDict("Speaks", {
    "type": str, "class": str | None, "n_tokens": int, "g2p": str | None, "g2p_options": dict[str, Any],
    "dictionary": dict[str, Any] | None, "heteronyms": dict[str, Any] | None, "normalizer": str | None,
    "oov_policy": str}, total=False)


class Tokenizer(Protocol):
    tokens: list[str]
    pad_id: int
    space_id: int
    space: str

    def encode(self, text: str) -> list[int]: ...

    def describe(self) -> Speaks: ...


def _base_fields(desc: dict[str, Any]) -> tuple[list[str], int, int]:
    try:
        tokens = [str(t) for t in desc["tokens"]]
        pad_id, space_id = int(desc["pad_id"]), int(desc["space_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenizerError(f"tokenizer description lacks tokens/pad_id/space_id ({exc})") from exc
    if not (0 <= pad_id < len(tokens) and 0 <= space_id < len(tokens)):
        raise TokenizerError("pad_id or space_id outside the token list")
    return tokens, pad_id, space_id


def _token2id(tokens: Sequence[str]) -> dict[str, int]:
    # NeMo: {l: i for i, l in enumerate(tokens)} (a duplicated token maps to its LAST index)
    return {t: i for i, t in enumerate(tokens)}


# ------------------------------------------------------------------------------------------- chars
class CharTokenizer:
    """Exact replay of NeMo's BaseCharsTokenizer.encode from its JSON description."""

    def __init__(self, desc: dict[str, Any]) -> None:
        if desc.get("type") != "chars" or not desc.get("runnable_without_nemo", False):
            raise TokenizerError(f"tokenizer {desc.get('class')} ({desc.get('type')}) cannot run without NeMo")
        self.desc = desc
        self.tokens, self.pad_id, self.space_id = _base_fields(desc)
        self.space = self.tokens[self.space_id]
        self.punct = bool(desc.get("punct"))
        self.punct_list = set(desc.get("punct_list") or [])
        self.pad_with_space = bool(desc.get("pad_with_space"))
        self.preprocessing = str(desc.get("preprocessing", "identity"))
        if self.preprocessing not in ("english_lower", "identity"):
            raise TokenizerError(f"char tokenizer preprocessing {self.preprocessing!r} is not replayable")
        self.synoglyphs: dict[str, str] = dict(desc.get("synoglyphs") or {})
        self._id = _token2id(self.tokens)

    def _prep(self, text: str) -> str:
        if self.preprocessing == "english_lower":
            text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
            text = "".join(self.synoglyphs.get(c, c) for c in text)
            return text.lower()
        return text

    def encode(self, text: str) -> list[int]:
        cs: list[str] = []
        space = self.space
        for c in self._prep(text):
            if (c == space and cs and cs[-1] != space) or ((c.isalnum() or c == "'") and c in self._id) or (
                    c in self.punct_list and self.punct):
                cs.append(c)
        while cs and cs[-1] == space:
            cs.pop()
        if self.pad_with_space:
            cs = [space, *cs, space]
        return [self._id[c] for c in cs]

    def describe(self) -> Speaks:
        return Speaks({
            "type": "chars", "class": self.desc.get("class"), "n_tokens": len(self.tokens), "g2p": None,
            "dictionary": None, "normalizer": self.desc.get("normalizer"),
            "oov_policy": "characters outside the token list are dropped (NeMo logs a warning)",
        })


# ------------------------------------------------------------------------------------------- files
def _read_checked(files_dir: Path, spec: dict[str, Any] | None, what: str) -> bytes | None:
    if spec is None:
        return None
    try:
        name, sha, size = str(spec["path"]), str(spec["sha256"]), int(spec["bytes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise TokenizerError(f"{what}: description needs path, sha256 and bytes ({exc})") from exc
    path = files_dir / name
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise TokenizerError(f"{what}: path {name!r} must be relative to the tokenizer description")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TokenizerError(f"{what}: cannot read {path} ({exc})") from exc
    if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
        raise TokenizerError(f"{what}: {path} does not match the description's sha256/bytes")
    return data


def _file_summary(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    keys = ("path", "sha256", "bytes", "entries", "pronunciations", "ambiguous", "source", "licence", "format")
    return {k: spec[k] for k in keys if k in spec}


_PREPROCESSING = "english_text_preprocessing(lower=False)"


class _PhonemeTokenizerBase:
    kind = ""
    g2p_class = ""

    def __init__(self, desc: dict[str, Any], files_dir: Path) -> None:
        self.desc = desc
        self.tokens, self.pad_id, self.space_id = _base_fields(desc)
        self.space = self.tokens[self.space_id]
        self._id = _token2id(self.tokens)
        self._token_set = set(self.tokens)
        self.punct = bool(desc.get("punct"))
        self.pad_with_space = bool(desc.get("pad_with_space"))
        prep = desc.get("preprocessing")
        if prep != _PREPROCESSING:
            raise TokenizerError(f"{self.kind} tokenizer preprocessing {prep!r} is not replayable "
                                 f"(only {_PREPROCESSING})")
        g = desc.get("g2p")
        if not isinstance(g, dict):
            raise TokenizerError(f"{self.kind} tokenizer description has no g2p section")
        self.g2p_desc: dict[str, Any] = g
        # every option is checked before the (large) dictionary is read
        if g.get("class") != self.g2p_class:
            raise TokenizerError(f"{self.kind} tokenizer needs an {self.g2p_class}, not {g.get('class')!r}")
        if g.get("word_tokenizer") != "english_word_tokenize":
            raise TokenizerError(f"word tokenizer {g.get('word_tokenizer')!r} is not replayable")
        if g.get("apply_to_oov_word") is not None:
            raise TokenizerError(f"apply_to_oov_word={g.get('apply_to_oov_word')!r}: a Python callable is not "
                                 "replayable; only None (graphemes) is")
        try:
            check_phoneme_probability(g.get("phoneme_probability"))
        except G2pUnsupported as exc:
            raise TokenizerError(str(exc)) from exc
        self._check_options(desc, g)
        dict_spec = g.get("dictionary")
        if not isinstance(dict_spec, dict) or dict_spec.get("format") != G2P_DICT_FORMAT:
            raise TokenizerError(f"g2p dictionary must be a {G2P_DICT_FORMAT} file")
        het_spec = g.get("heteronyms")
        if het_spec is not None and (not isinstance(het_spec, dict) or het_spec.get("format") != HETERONYMS_FORMAT):
            raise TokenizerError(f"heteronyms must be null or a {HETERONYMS_FORMAT} file")
        raw = _read_checked(files_dir, dict_spec, "g2p dictionary")
        assert raw is not None
        het_raw = _read_checked(files_dir, het_spec, "heteronyms")
        try:
            self.phoneme_dict = parse_g2p_dict(raw)
            self.heteronyms = parse_heteronyms(het_raw) if het_raw is not None else None
            self.g2p: ArpabetG2p | IpaG2p = self._make_g2p(g)
        except (G2pUnsupported, UnicodeDecodeError) as exc:
            raise TokenizerError(str(exc)) from exc

    def _check_options(self, desc: dict[str, Any], g: dict[str, Any]) -> None:
        raise NotImplementedError

    def _make_g2p(self, g: dict[str, Any]) -> ArpabetG2p | IpaG2p:
        raise NotImplementedError

    def _encode_symbols(self, symbols: list[str]) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        text = english_text_preprocessing(text, lower=False)
        return [self._id[p] for p in self._encode_symbols(self.g2p(text))]

    def trace(self, text: str) -> list[WordTrace]:
        """How each word was handled (dictionary, heteronym, possessive, plural, ambiguous, oov, ...)."""
        return self.g2p.trace(english_text_preprocessing(text, lower=False))

    def _has_graphemes(self) -> bool:
        raise NotImplementedError

    def describe(self) -> Speaks:
        g = self.g2p_desc
        dict_spec = _file_summary(g.get("dictionary")) or {}
        dict_spec.setdefault("entries", len(self.phoneme_dict))
        spelled = "spelled as graphemes, which are tokens of this voice" if self._has_graphemes() else \
            "DROPPED: this voice has no grapheme tokens, so these words are not spoken"
        ambiguous = " and words with several pronunciations" if g.get("ignore_ambiguous_words") else ""
        first = "" if g.get("ignore_ambiguous_words") else "; words with several pronunciations use the first"
        return Speaks({
            "type": self.kind, "class": self.desc.get("class"), "n_tokens": len(self.tokens),
            "g2p": g.get("class"), "g2p_options": {k: v for k, v in g.items() if k not in ("dictionary", "heteronyms")},
            "dictionary": dict_spec, "heteronyms": _file_summary(g.get("heteronyms")),
            "normalizer": self.desc.get("normalizer"),
            "oov_policy": f"words outside the dictionary, heteronyms{ambiguous} are {spelled}{first}; "
                          "symbols outside the token list are dropped",
        })


# ------------------------------------------------------------------------------------------- arpabet
class ArpabetTokenizer(_PhonemeTokenizerBase):
    """Replay of EnglishPhonemesTokenizer.encode + EnglishG2p."""

    kind = "arpabet"
    g2p_class = "EnglishG2p"

    def _check_options(self, desc: dict[str, Any], g: dict[str, Any]) -> None:
        self.stresses = bool(desc.get("stresses"))
        self.punct_list = list(desc.get("punct_list") or [])

    def _make_g2p(self, g: dict[str, Any]) -> ArpabetG2p:
        return ArpabetG2p(self.phoneme_dict, heteronyms=self.heteronyms,
                          ignore_ambiguous_words=bool(g.get("ignore_ambiguous_words", True)),
                          phoneme_probability=g.get("phoneme_probability"))

    def _encode_symbols(self, symbols: list[str]) -> list[str]:
        ps: list[str] = []
        space, tokens = self.space, self._token_set
        for p in symbols:
            if p.isalnum() and len(p) == 3 and not self.stresses:
                p = p[:2]
            # NeMo: a space after a non-space, an alphanumeric token or apostrophe, or punctuation
            if ((p == space and ps and ps[-1] != space) or ((p.isalnum() or p == "'") and p in tokens)
                    or (p in self.punct_list and self.punct)):
                ps.append(p)
        if ps:
            while ps and ps[-1] == space:
                ps.pop()
            if not ps:  # only possible when a punct list holds the space
                raise TokenizerError("text has nothing but spaces (NeMo raises IndexError here)")
        if self.pad_with_space:
            ps = [space, *ps, space]
        return ps

    def _has_graphemes(self) -> bool:
        return all(c in self._token_set for c in "abcdefghijklmnopqrstuvwxyz")


# ------------------------------------------------------------------------------------------- ipa
class IpaTokenizer(_PhonemeTokenizerBase):
    """Replay of IPATokenizer.encode (locale en-US) + IpaG2p."""

    kind = "ipa"
    g2p_class = "IpaG2p"

    def _check_options(self, desc: dict[str, Any], g: dict[str, Any]) -> None:
        if desc.get("locale") != "en-US" or g.get("locale") != "en-US":
            raise TokenizerError(f"IPATokenizer/IpaG2p locale {desc.get('locale')!r}/{g.get('locale')!r}: "
                                 "only en-US is replayed")
        if g.get("grapheme_case", "upper") not in ("upper", "lower", "mixed"):
            raise TokenizerError(f"grapheme_case {g.get('grapheme_case')!r} is not one of upper, lower, mixed")
        self.punct_list: list[str] | None = list(desc["punct_list"]) if self.punct else None

    def _make_g2p(self, g: dict[str, Any]) -> IpaG2p:
        return IpaG2p(self.phoneme_dict, heteronyms=self.heteronyms,
                      ignore_ambiguous_words=bool(g.get("ignore_ambiguous_words", True)),
                      grapheme_case=str(g.get("grapheme_case", "upper")),
                      grapheme_prefix=str(g.get("grapheme_prefix") or ""),
                      locale=str(g.get("locale")), phoneme_probability=g.get("phoneme_probability"))

    def _encode_symbols(self, symbols: list[str]) -> list[str]:
        ps: list[str] = []
        space, tokens = self.space, self._token_set
        for p in symbols:
            # NeMo: a space after a non-space, or ANY token (the space included: leading and repeated
            # spaces are kept); punctuation symbols are always tokens here.
            if (p == space and ps and ps[-1] != space) or p in tokens:
                ps.append(p)
            elif self.punct_list is None:
                raise TokenizerError(f"symbol {p!r} is not a token and this IPATokenizer has punct=False "
                                     "(NeMo raises AttributeError here)")
        if ps:
            while ps and ps[-1] == space:
                ps.pop()
            if not ps:
                raise TokenizerError("text has nothing but spaces (NeMo's IPATokenizer raises IndexError here)")
        if self.pad_with_space:
            ps = [space, *ps, space]
        return ps

    def _has_graphemes(self) -> bool:
        prefix = str(self.g2p_desc.get("grapheme_prefix") or "")
        case = self.g2p_desc.get("grapheme_case", "upper")
        letters = "abcdefghijklmnopqrstuvwxyz"
        letters = letters.upper() if case == "upper" else letters
        return all(f"{prefix}{c}" in self._token_set for c in letters)


# ------------------------------------------------------------------------------------------- entry
def load_tokenizer(desc: dict[str, Any], files_dir: Path) -> CharTokenizer | ArpabetTokenizer | IpaTokenizer:
    """The runtime tokenizer a description asks for; TokenizerError if it cannot be replayed exactly."""
    schema = desc.get("schema")
    if schema != TOKENIZER_SCHEMA:
        raise TokenizerError(f"tokenizer schema {schema!r} is not {TOKENIZER_SCHEMA}")
    if not desc.get("runnable_without_nemo", False):
        why = "; ".join(desc.get("unsupported") or []) or "marked runnable_without_nemo: false"
        raise TokenizerError(f"tokenizer {desc.get('class')} ({desc.get('type')}) cannot run without NeMo: {why}")
    kind = desc.get("type")
    if kind == "chars":
        return CharTokenizer(desc)
    if kind == "arpabet":
        return ArpabetTokenizer(desc, Path(files_dir))
    if kind == "ipa":
        return IpaTokenizer(desc, Path(files_dir))
    raise TokenizerError(f"tokenizer type {kind!r} is not one of chars, arpabet, ipa")


def load_tokenizer_file(path: str | Path) -> CharTokenizer | ArpabetTokenizer | IpaTokenizer:
    """`load_tokenizer` for a tokenizer.json whose G2P files sit next to it."""
    path = Path(path)
    try:
        desc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"{path}: cannot read the tokenizer description ({exc})") from exc
    if not isinstance(desc, dict):
        raise TokenizerError(f"{path}: the tokenizer description is not a JSON object")
    return load_tokenizer(desc, path.parent)
