"""Text normalisation to the training tokenizer's vocabulary (NeMo EnglishCharsTokenizer).

The tokenizer accepts lowercase a-z, space, and ``' , . ! ? - : ; / " ( ) [ ] { }``. Everything else
is either mapped here (numbers spelled out, unicode punctuation folded, accents stripped, a few
symbols read out) or left in place, so `out_of_vocabulary(text)` names it and the clip is rejected
with ``text_out_of_vocabulary``. No nemo_text_processing: numbers are spelled out by this module.
"""

from __future__ import annotations

import re
import unicodedata

VOCAB = frozenset(" abcdefghijklmnopqrstuvwxyz'" + ',.!?-:;/"()[]{}')

_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u3000": " ", "\t": " ", "\n": " ", "\r": " ",
    "\u00bf": "", "\u00a1": "", "\u00b7": ".", "\u2022": ",", "_": " ", "|": ",", "~": " ",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "ae", "\u0153": "oe", "\u0152": "oe", "\u00f8": "o", "\u00d8": "o",
    "\u0142": "l", "\u0141": "l", "\u00f0": "d", "\u00d0": "d", "\u00fe": "th", "\u00de": "th",
}
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ",
            "$": " dollars ", "\u00a3": " pounds ", "\u20ac": " euros ", "\u00b0": " degrees "}

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = [(10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand")]
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
        "twelve": "twelfth"}


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English words (``1984`` -> ``one thousand nine hundred eighty-four``)."""
    if n < 0:
        return "minus " + number_to_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("-" + _ONES[n % 10] if n % 10 else "")
    if n < 1000:
        return _ONES[n // 100] + " hundred" + (" " + number_to_words(n % 100) if n % 100 else "")
    for value, name in _SCALES:
        if n >= value:
            head, rest = divmod(n, value)
            return number_to_words(head) + " " + name + (" " + number_to_words(rest) if rest else "")
    raise AssertionError("unreachable")


def _ordinal(n: int) -> str:
    words = number_to_words(n)
    last = re.split(r"([ -])", words)
    tail = last[-1]
    if tail in _ORD:
        tail = _ORD[tail]
    elif tail.endswith("y"):
        tail = tail[:-1] + "ieth"
    else:
        tail += "th"
    return "".join(last[:-1]) + tail


def _year(n: int) -> str:
    hi, lo = divmod(n, 100)
    if lo == 0:
        return number_to_words(hi) + " hundred"
    return number_to_words(hi) + " " + ("oh " + number_to_words(lo) if lo < 10 else number_to_words(lo))


def _digits(s: str) -> str:
    return " ".join(_ONES[int(c)] for c in s)


def _spell_number(m: re.Match[str]) -> str:
    raw = m.group(0)
    if m.group("ord"):
        return " " + _ordinal(int(m.group("int").replace(",", ""))) + " "
    intpart = m.group("int").replace(",", "")
    frac = m.group("frac")
    if len(intpart) > 15:
        return " " + _digits(intpart) + " "
    n = int(intpart)
    if frac is None and len(intpart) == 4 and 1100 <= n <= 1999 and "," not in raw:
        words = _year(n)
    elif len(intpart) > 1 and intpart.startswith("0"):
        words = _digits(intpart)
    else:
        words = number_to_words(n)
    if frac is not None:
        words += " point " + _digits(frac)
    return " " + words + " "


_NUMBER = re.compile(r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?:(?P<ord>st|nd|rd|th)\b)?")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:)\]}])")


def normalize_text(text: str) -> str:
    """Normalise `text` for the EnglishCharsTokenizer: lowercase, unicode punctuation folded, accents
    stripped, numbers and a few symbols spelled out, whitespace collapsed. Characters that cannot be
    mapped are kept, so `out_of_vocabulary()` can reject the clip instead of silently dropping words."""
    s = "".join(_FOLD.get(c, c) for c in text)
    for sym, words in _SYMBOLS.items():
        s = s.replace(sym, words)
    # currency written before the number: "$5" was turned into " dollars 5"; put the unit after it
    s = re.sub(r" (dollars|pounds|euros) (\d+(?:,\d{3})*(?:\.\d+)?)", r" \2 \1", s)
    s = _NUMBER.sub(_spell_number, s)
    # strip accents: NFKD then drop combining marks (é -> e); fold compatibility forms (ﬁ -> fi)
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))
    s = s.lower()
    s = _SPACES.sub(" ", s).strip()
    s = _SPACE_BEFORE_PUNCT.sub(r"\1", s)
    return s


def out_of_vocabulary(text: str) -> list[str]:
    """Characters of (normalised) `text` the tokenizer cannot represent, in order of appearance."""
    seen: list[str] = []
    for c in text:
        if c not in VOCAB and c not in seen:
            seen.append(c)
    return seen


def words(text: str) -> list[str]:
    """Lowercase word tokens (letters and apostrophes) for alignment and speaking-rate checks."""
    return re.findall(r"[a-z']+", normalize_text(text))
