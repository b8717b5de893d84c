"""NeMo-free replay of NeMo 3.0's English G2P at inference: `EnglishG2p` (ARPABET) and `IpaG2p` (IPA,
locale en-US), from `nemo.collections.tts.g2p.models.en_us_arpabet` and `...i18n_ipa`.

Only the deterministic inference path is replayed: `phoneme_probability` must be None or >= 1.0 (what
`FastPitchModel.parse` sets with `vocab.set_phone_prob(1.0)`; `random() > p` is then never true) and
`apply_to_oov_word` must be None (an arbitrary Python callable cannot be described). Anything else is
refused when the description is loaded (`G2pUnsupported`), never silently approximated.

How NeMo turns text into symbols (replayed statement by statement; the tests compare token ids with
NeMo's own tokenizers on thousands of sentences):

- Word splitting (`english_word_tokenize`): the regex `_WORDS_RE_EN` cuts text into words (ASCII
  letters, with inner hyphens and apostrophes: "don't", "well-known", "rock'n'roll"), `|...|` spans
  kept unchanged (split on spaces), and everything else as one run ("punctuation", which includes
  spaces, digits and non-ASCII letters). Words are LOWERCASED here, for both G2Ps.
- EnglishG2p, per word: a run without a letter/digit (`[a-zA-ZÀ-ÿ\\d]`) is split into characters;
  a heteronym is returned as its graphemes; `X's` not in the dictionary but `X` is (and unambiguous
  when `ignore_ambiguous_words`) is X's first pronunciation + "Z"; same for `Xs`; a dictionary word
  (unambiguous, or any when `ignore_ambiguous_words=False`: then the FIRST pronunciation) is its
  pronunciation; otherwise the word is unhandled and returned as graphemes. An unhandled word with
  hyphens is re-parsed part by part, joined with "-" symbols.
- IpaG2p (en-US): the text is NFC-normalised; each word is first re-cased (`grapheme_case`, upper by
  default); the same rules, with IPA suffixes ("s" after a dictionary word ending in T, "ɪz" after S
  for `'s`, else "z"); graphemes get `grapheme_prefix`; with `grapheme_case="mixed"` a word missing
  from the dictionary is looked up upper-cased.

Surprises found while reading NeMo (all replayed as-is):

- Digits are not word characters for the word splitter: "I have 3 cats" puts " 3 " in a
  "punctuation" run. A run that holds a digit or a non-ASCII letter (" 3 ", "ø", "ß": letters without
  an NFD decomposition survive the accent stripping) is then NOT treated as punctuation: it goes through
  the word rules and comes out as graphemes, spaces included; digits are not tokens, so the number
  silently disappears from the token ids. Normalise first (lane.text.normalize).
- Heteronyms and ambiguous words (ignore_ambiguous_words=True, e.g. "a", "the" in pocketsphinx's
  CMUdict) become graphemes; with EnglishPhonemesTokenizer(chars=False) those letters are not tokens,
  so such words vanish from the token ids (NeMo only logs a warning).
- Suffix rules differ: EnglishG2p appends "Z" for any "'s" or "s" ("cat's", "cats" -> K AE T Z);
  IpaG2p appends "s" after a dictionary word ending in t/T, "ɪz" after s/S (only for "'s"), else "z".
  "cats'" (plural possessive) matches neither rule and is OOV. "X's" with an ambiguous X (when
  ignore_ambiguous_words) falls through to the plural rule, which looks up "X'", and ends up OOV.
- EnglishG2p compares heteronyms with the LOWERCASED word (an upper-case entry never matches) and reads
  the heteronym file as latin-1; IpaG2p re-cases its heteronyms and reads UTF-8.
- NeMo's CMUdict loader for EnglishG2p only keeps lines that start with A-Z or "'" and splits word
  from phonemes on TWO spaces: pocketsphinx's dictionary ("word PH PH", lowercase, one space) fails
  with an IndexError on its "'bout" line, and without the apostrophe lines it loads as an EMPTY
  dictionary without any error (every word then OOV). The export therefore writes NeMo's in-memory dictionary in
  lane's own format (lane.g2p_dict/1) instead of copying the .nemo's file.
- IpaG2p re-cases a word BEFORE its punctuation test, so str.upper() can change a run's length.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ArpabetG2p", "G2pUnsupported", "IpaG2p", "check_phoneme_probability", "english_word_tokenize", "parse_g2p_dict",
           "parse_heteronyms", "write_g2p_dict", "write_heteronyms"]

PhonemeDict = dict[str, list[list[str]]]
Handling = Literal["punctuation", "heteronym", "dictionary", "possessive", "plural", "ambiguous", "oov",
                   "unchanged", "hyphenated"]


class G2pUnsupported(ValueError):
    """The description asks for a G2P behaviour this replay cannot guarantee to reproduce."""


# ---------------------------------------------------------------------------------------- regexes
# Copied from nemo.collections.common.tokenizers.text_to_speech.tokenizer_utils (NeMo 3.0); a test
# asserts they are still byte-identical to NeMo's.
LATIN_ALPHABET_BASIC = "A-Za-z"
ACCENTED_CHARS = "À-ÖØ-öø-ÿ"
LATIN_CHARS_ALL = f"{LATIN_ALPHABET_BASIC}{ACCENTED_CHARS}"
DEVANAGARI_CHARS = r"\u0900-\u0963\u0966-\u097F"
BENGALI_CHARS = r"\u0980-\u09FF"
TAMIL_CHARS = r"\u0B80-\u0BFF"
TELUGU_CHARS = r"\u0C00-\u0C7F"
KANNADA_CHARS = r"\u0C80-\u0CFF"
GUJARATI_CHARS = r"\u0A80-\u0AFF"
INDIC_CHARS_ALL = f"{DEVANAGARI_CHARS}{BENGALI_CHARS}{TAMIL_CHARS}{TELUGU_CHARS}{KANNADA_CHARS}{GUJARATI_CHARS}"
KOREAN_CHARS = r"\uAC00-\uD7A3\u1100-\u11FF\u3130-\u318F"
WORD_CHARS_ALL = f"{LATIN_CHARS_ALL}{INDIC_CHARS_ALL}{KOREAN_CHARS}"

WORDS_RE_EN = re.compile(
    rf"([{LATIN_ALPHABET_BASIC}]+(?:[{LATIN_ALPHABET_BASIC}\-']*[{LATIN_ALPHABET_BASIC}]+)*)"
    rf"|(\|[^|]*\|)|([^{LATIN_ALPHABET_BASIC}|]+)"
)
# EnglishG2p.parse_one_word's "is there a letter or digit" test
ARPABET_WORD_CHAR_RE = re.compile(r"[a-zA-ZÀ-ÿ\d]")
# IpaG2p.CHAR_REGEX
IPA_CHAR_RE = re.compile(rf"[{WORD_CHARS_ALL}\d]")

SYNOGLYPH2ASCII = {"’": "'", "”": '"', "“": '"'}
IPA_STRESS_SYMBOLS = ("ˈ", "ˌ")


def english_word_tokenize(text: str) -> list[tuple[list[str], bool]]:
    """Replay of NeMo's english_word_tokenize: [(tokens, unchanged)], words lowercased."""
    result: list[tuple[list[str], bool]] = []
    for maybe_word, maybe_unchanged, maybe_punct in WORDS_RE_EN.findall(text):
        if maybe_word != "":
            result.append(([maybe_word.lower()], False))
        elif maybe_punct != "":
            result.append(([maybe_punct], False))
        elif maybe_unchanged != "":
            result.append((maybe_unchanged[1:-1].split(" "), True))
        else:  # pragma: no cover - the regex cannot produce this
            raise ValueError(f"empty match in {text!r}")
    return result


def english_text_preprocessing(text: str, lower: bool = True) -> str:
    """Replay of NeMo's english_text_preprocessing: accents dropped (NFD, no Mn), curly quotes folded."""
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    text = "".join(SYNOGLYPH2ASCII.get(c, c) for c in text)
    return text.lower() if lower else text


def normalize_unicode_text(text: str) -> str:
    """Replay of NeMo's normalize_unicode_text (NFC)."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text


# ---------------------------------------------------------------------------------------- files
# lane.g2p_dict/1: UTF-8, one line per pronunciation, "word<TAB>symbol symbol ...", pronunciations of a
# word in NeMo's order (the first is the one used); a line without a TAB is a word with no
# pronunciation. Symbols never contain whitespace; words never contain TAB/CR/LF.
G2P_DICT_FORMAT = "lane.g2p_dict/1"
HETERONYMS_FORMAT = "lane.lines/1"
# whitespace other than the single spaces that separate symbols (no symbol may hold whitespace)
_BAD_SPACE = re.compile(r"[^\S ]|  |^ | $")


def _check_word(word: object) -> str:
    if not isinstance(word, str) or any(c in word for c in "\t\n\r"):
        raise G2pUnsupported(f"dictionary word {word!r} cannot be written (not a string, or holds TAB/CR/LF)")
    return word


def write_g2p_dict(phoneme_dict: Mapping[str, Sequence[Sequence[str]]]) -> bytes:
    """Serialise an in-memory NeMo phoneme dict (word -> list of pronunciations) exactly."""
    lines: list[str] = []
    for word in sorted(phoneme_dict):
        _check_word(word)
        prons = phoneme_dict[word]
        if not isinstance(prons, list | tuple):
            raise G2pUnsupported(f"pronunciations of {word!r} are a {type(prons).__name__}, not a list")
        if not prons:
            if word == "":
                raise G2pUnsupported("the empty word with no pronunciation cannot be written")
            lines.append(word)
        for pron in prons:
            joined = " ".join(pron) if isinstance(pron, list | tuple) and all(isinstance(p, str) for p in pron) else None
            if (joined is None or "" in pron or _BAD_SPACE.search(joined)
                    or (pron and joined.count(" ") != len(pron) - 1)):
                raise G2pUnsupported(f"pronunciation {pron!r} of {word!r} is not a list of whitespace-free symbols")
            lines.append(word + "\t" + joined)
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def parse_g2p_dict(data: bytes) -> PhonemeDict:
    text = data.decode("utf-8")
    out: PhonemeDict = {}
    if not text:
        return out
    if not text.endswith("\n"):
        raise G2pUnsupported("g2p dictionary file does not end with a newline (truncated?)")
    for line in text[:-1].split("\n"):
        word, tab, pron = line.partition("\t")
        entry = out.setdefault(word, [])
        if tab:
            entry.append(pron.split(" ") if pron else [])
    return out


def write_heteronyms(words: Iterable[str]) -> bytes:
    items = sorted(set(words))
    for w in items:
        if not isinstance(w, str) or "\n" in w:
            raise G2pUnsupported(f"heteronym {w!r} cannot be written")
    return ("\n".join(items) + "\n").encode("utf-8") if items else b""


def parse_heteronyms(data: bytes) -> set[str]:
    text = data.decode("utf-8")
    if not text:
        return set()
    if not text.endswith("\n"):
        raise G2pUnsupported("heteronym file does not end with a newline (truncated?)")
    return set(text[:-1].split("\n"))


# ---------------------------------------------------------------------------------------- G2Ps
@dataclass(frozen=True)
class WordTrace:
    """How one word-tokenizer item became symbols (for reports and debugging)."""

    text: str
    symbols: list[str]
    how: Handling


def check_phoneme_probability(p: Any) -> None:
    if p is None:
        return
    if isinstance(p, bool) or not isinstance(p, int | float) or p < 1.0:
        raise G2pUnsupported(
            f"phoneme_probability={p!r}: only None or >= 1.0 (FastPitch inference sets 1.0) is deterministic; "
            "a lower value mixes graphemes in at random")


class ArpabetG2p:
    """Replay of nemo.collections.tts.g2p.models.en_us_arpabet.EnglishG2p.__call__ (inference)."""

    def __init__(self, phoneme_dict: PhonemeDict, *, heteronyms: set[str] | None = None,
                 ignore_ambiguous_words: bool = True, phoneme_probability: float | None = None,
                 apply_to_oov_word: None = None) -> None:
        check_phoneme_probability(phoneme_probability)
        if apply_to_oov_word is not None:
            raise G2pUnsupported("apply_to_oov_word is a Python callable; only None (graphemes) is replayable")
        self.phoneme_dict = phoneme_dict
        self.heteronyms = heteronyms
        self.ignore_ambiguous_words = bool(ignore_ambiguous_words)

    def _unique(self, word: str) -> bool:
        return len(self.phoneme_dict[word]) == 1

    def parse_one_word(self, word: str) -> tuple[list[str] | str, bool, Handling]:
        d = self.phoneme_dict
        if ARPABET_WORD_CHAR_RE.search(word) is None:
            return list(word), True, "punctuation"
        if self.heteronyms is not None and word in self.heteronyms:
            return word, True, "heteronym"
        if (len(word) > 2 and word.endswith("'s") and word not in d and word[:-2] in d
                and (not self.ignore_ambiguous_words or self._unique(word[:-2]))):
            return [*d[word[:-2]][0], "Z"], True, "possessive"
        if (len(word) > 1 and word.endswith("s") and word not in d and word[:-1] in d
                and (not self.ignore_ambiguous_words or self._unique(word[:-1]))):
            return [*d[word[:-1]][0], "Z"], True, "plural"
        if word in d and (not self.ignore_ambiguous_words or self._unique(word)):
            return list(d[word][0]), True, "dictionary"
        return word, False, ("ambiguous" if word in d else "oov")

    def trace(self, text: str) -> list[WordTrace]:
        out: list[WordTrace] = []
        for word, unchanged in english_word_tokenize(text):
            if unchanged:
                out.append(WordTrace(" ".join(word), list(word), "unchanged"))
                continue
            word_str = word[0]
            by_hyphen = word_str.split("-")
            pron, handled, how = self.parse_one_word(word_str)
            if not handled and len(by_hyphen) > 1:
                parts: list[str] = []
                for sub in by_hyphen:
                    p, _, _ = self.parse_one_word(sub)
                    parts.extend(p)
                    parts.append("-")
                parts.pop()
                pron, how = parts, "hyphenated"
            out.append(WordTrace(word_str, list(pron), how))
        return out

    def __call__(self, text: str) -> list[str]:
        return [s for t in self.trace(text) for s in t.symbols]


class IpaG2p:
    """Replay of nemo.collections.tts.g2p.models.i18n_ipa.IpaG2p.__call__ for locale en-US (inference).

    `phoneme_dict` and `heteronyms` are the G2P's IN-MEMORY objects (already re-cased, stress marks
    already removed when use_stresses=False), which is what lane.nemo.tokenizer exports."""

    def __init__(self, phoneme_dict: PhonemeDict, *, heteronyms: set[str] | None = None,
                 ignore_ambiguous_words: bool = True, grapheme_case: str = "upper", grapheme_prefix: str = "",
                 locale: str = "en-US", phoneme_probability: float | None = None,
                 apply_to_oov_word: None = None) -> None:
        check_phoneme_probability(phoneme_probability)
        if apply_to_oov_word is not None:
            raise G2pUnsupported("apply_to_oov_word is a Python callable; only None (graphemes) is replayable")
        if locale != "en-US":
            raise G2pUnsupported(f"IpaG2p locale {locale!r}: only en-US is replayed")
        if grapheme_case not in ("upper", "lower", "mixed"):
            raise G2pUnsupported(f"grapheme_case {grapheme_case!r} is not one of upper, lower, mixed")
        self.phoneme_dict = phoneme_dict
        self.heteronyms = heteronyms
        self.ignore_ambiguous_words = bool(ignore_ambiguous_words)
        self.grapheme_case = grapheme_case
        self.grapheme_prefix = grapheme_prefix or ""

    def _case(self, text: str) -> str:
        if self.grapheme_case == "upper":
            return text.upper()
        if self.grapheme_case == "lower":
            return text.lower()
        return text

    def _graphemes(self, word: str) -> list[str]:
        return [f"{self.grapheme_prefix}{c}" for c in word]

    def _unique(self, word: str) -> bool:
        return len(self.phoneme_dict[word]) == 1

    def _suffix_base(self, word: str, n: int) -> str | None:
        d = self.phoneme_dict
        if word in d or word.upper() in d:
            return None
        if word[:-n] in d:
            return word[:-n]
        if word[:-n].upper() in d:
            return word[:-n].upper()
        return None

    def parse_one_word(self, word: str) -> tuple[list[str], bool, Handling]:
        d = self.phoneme_dict
        word = self._case(word)
        if IPA_CHAR_RE.search(word) is None:
            return list(word), True, "punctuation"
        if self.heteronyms and word in self.heteronyms:
            return self._graphemes(word), True, "heteronym"
        if len(word) > 2 and (word.endswith("'s") or word.endswith("'S")):
            found = self._suffix_base(word, 2)
            if found is not None and (not self.ignore_ambiguous_words or self._unique(found)):
                if found[-1] in ("T", "t"):
                    return [*d[found][0], "s"], True, "possessive"
                if found[-1] in ("S", "s"):
                    return [*d[found][0], "ɪ", "z"], True, "possessive"
                return [*d[found][0], "z"], True, "possessive"
        if len(word) > 1 and (word.endswith("s") or word.endswith("S")):
            found = self._suffix_base(word, 1)
            if found is not None and (not self.ignore_ambiguous_words or self._unique(found)):
                if found[-1] in ("T", "t"):
                    return [*d[found][0], "s"], True, "plural"
                return [*d[found][0], "z"], True, "plural"
        if word in d and (not self.ignore_ambiguous_words or self._unique(word)):
            return list(d[word][0]), True, "dictionary"
        if self.grapheme_case == "mixed" and word not in d and word.upper() in d:
            word = word.upper()
            if not self.ignore_ambiguous_words or self._unique(word):
                return list(d[word][0]), True, "dictionary"
        return self._graphemes(word), False, ("ambiguous" if word in d else "oov")

    def trace(self, text: str) -> list[WordTrace]:
        text = normalize_unicode_text(text)
        out: list[WordTrace] = []
        for words, unchanged in english_word_tokenize(text):
            if unchanged:
                out.append(WordTrace(" ".join(words), [f"{self.grapheme_prefix}{w}" for w in words], "unchanged"))
                continue
            word = words[0]
            pron, handled, how = self.parse_one_word(word)
            if not handled:
                subwords = word.split("-")
                if len(subwords) > 1:
                    pron = []
                    for sub in subwords:
                        p, _, _ = self.parse_one_word(sub)
                        pron.extend(p)
                        pron.append("-")
                    pron.pop()
                    how = "hyphenated"
            out.append(WordTrace(word, pron, how))
        return out

    def __call__(self, text: str) -> list[str]:
        return [s for t in self.trace(text) for s in t.symbols]
