"""One English text normaliser for training data, validation and serving (no pynini, no NeMo).

`normalize(text)` turns written English into the words a voice should say, in the order below. Every
step is a fixed regular-expression rule, so the same text always gives the same words; the bundle
records `NORMALIZER_ID` (this module's rule version + the num2words version that spells the numbers).

1. Unicode: compatibility forms and accents are folded (NFKD, combining marks dropped: "café" ->
   "cafe", "ﬁ" -> "fi", "²" -> "2"), curly quotes become ' and ", dashes become "-", "…" becomes "...",
   a few letters without a decomposition are transliterated ("ß" -> "ss", "ø" -> "o", "þ" -> "th"),
   whitespace is collapsed and a space before closing punctuation (`, . ! ? ; : ) ] }`) is removed.
2. Abbreviations (case-insensitive, need their period): titles (Mr., Mrs., Ms., Dr., Prof., Rev.,
   Capt., Sgt., Lt., Col., Gov., Sen., Mt., Ft.) expand without a period; "St." is "Street" after a
   capitalised word or a number ("Elm St.", "5th St."), else "Saint" before a capitalised word
   ("St. John"), else "Street"; Jr., Sr., Ave., Blvd., Rd., Dept., Inc., Ltd., Co.,
   Corp., Bros., approx., etc. expand and keep a sentence period when the text ends there or the next
   word is capitalised; vs., e.g., i.e., a.k.a. expand; "No." before a number is "number".
3. Money: $, £ and € before or after an amount: "$5" -> "five dollars", "$1.50" -> "one dollar and
   fifty cents", "£0.99" -> "ninety-nine pence", "€2" -> "two euros", "$1.5 million" -> "one point
   five million dollars" (two decimals are cents or pence, other decimals are read as decimals).
4. Dates: "12/03/2024" (month/day/year, or day/month/year when the first number is over 12),
   "2024-03-12", "March 3, 2024", "3 March 2024", "March 2024": months by name, days as ordinals,
   years as years ("twenty twenty-four"). Month abbreviations (Jan., Sept., ...) only inside dates.
5. Times: "7:30" -> "seven thirty", "7:05" -> "seven oh five", "7:00" -> "seven o'clock",
   "7:30 pm" / "7 p.m." -> "seven thirty p m" / "seven p m".
6. Percentages ("12.5%" -> "twelve point five percent"), degrees ("20°C" -> "twenty degrees
   Celsius"), ranges between two plain numbers ("10-20" -> "ten to twenty"), negative numbers ("-3"
   at the start of a word -> "minus three"), decades ("1980s" -> "nineteen eighties").
7. Numbers: ordinals ("21st" -> "twenty-first"), decimals read digit by digit after "point"
   ("3.14" -> "three point one four"), thousands separators ("1,000,000" -> "one million"), years
   for plain four-digit numbers 1100-1999 ("1984" -> "nineteen eighty-four"; other four-digit numbers
   are cardinals: "2024" -> "two thousand twenty-four"), leading zeros and numbers over 15 digits read
   digit by digit ("007" -> "zero zero seven"). Only ASCII digits are numbers.
8. Remaining symbols: & + = @ # ° $ £ € % become "and", "plus", "equals", "at", "number", "degrees",
   "dollars", "pounds", "euros", "percent".
9. Lowercase (unless `lowercase=False`), whitespace tidied again; the rules are re-run until the text
   no longer changes (idempotence).

Number words are American and come from num2words with its British "and" and commas removed ("one
hundred fifteen", not "one hundred and fifteen"); compound numbers keep num2words' hyphen
("eighty-four"). Anything the rules do not cover is left in place (a character outside a tokenizer's
vocabulary can then be named by `lane.data.text.out_of_vocabulary` instead of being silently dropped).
The output is idempotent: `normalize(normalize(t)) == normalize(t)`.

Known limits (deliberate, documented rather than guessed): fractions ("1/2" -> "one/two"), phone
numbers and version strings are not special-cased; "Dr." is always "doctor" (never "drive");
two-digit years are not dates.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from importlib.metadata import version as _pkg_version

from num2words import num2words as _num2words

NORMALIZER_NAME = "lane.text.normalize"
NORMALIZER_VERSION = 1
NUM2WORDS_VERSION = _pkg_version("num2words")
NORMALIZER_ID = f"{NORMALIZER_NAME}/{NORMALIZER_VERSION} (num2words {NUM2WORDS_VERSION})"

__all__ = ["NORMALIZER_ID", "cardinal", "digits", "normalize", "normalizer_info", "ordinal", "year"]


def normalizer_info() -> dict[str, str | int]:
    """What the bundle and report record about the normaliser."""
    return {"id": NORMALIZER_ID, "name": NORMALIZER_NAME, "version": NORMALIZER_VERSION,
            "num2words": NUM2WORDS_VERSION, "language": "en-US"}


# ------------------------------------------------------------------------------------- number words
def _american(words: str) -> str:
    """num2words' British style -> American: no 'and' inside numbers, no commas."""
    return words.replace(",", "").replace(" and ", " ")


def cardinal(n: int) -> str:
    """1984 -> 'one thousand nine hundred eighty-four'; -3 -> 'minus three'."""
    return _american(_num2words(n, lang="en"))


def ordinal(n: int) -> str:
    """21 -> 'twenty-first'; 101 -> 'one hundred first'."""
    return _american(_num2words(n, lang="en", to="ordinal"))


def year(n: int) -> str:
    """1984 -> 'nineteen eighty-four', 1905 -> 'nineteen oh five', 2024 -> 'twenty twenty-four'."""
    return _american(_num2words(n, lang="en", to="year")).replace("oh-", "oh ")


def digits(s: str) -> str:
    """'007' -> 'zero zero seven'."""
    return " ".join(cardinal(int(c)) for c in s)


def _decimal(intpart: str, frac: str | None) -> str:
    intpart = intpart.replace(",", "")
    if len(intpart) > 15 or (len(intpart) > 1 and intpart.startswith("0")):
        words = digits(intpart)
    else:
        words = cardinal(int(intpart))
    if frac:
        words += " point " + digits(frac)
    return words


def _plural(words: str) -> str:
    """'nineteen eighty' -> 'nineteen eighties' (for decades)."""
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


# ------------------------------------------------------------------------------------- unicode folds
_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u2026": "...", "\u00a0": " ", "\u2009": " ", "\u202f": " ", "\u3000": " ", "\t": " ", "\n": " ", "\r": " ",
    "\u00bf": "", "\u00a1": "", "\u00b7": ".", "\u2022": ",", "_": " ", "|": ",", "~": " ", "\u2044": "/",
    "\u00df": "ss", "\u00e6": "ae", "\u00c6": "ae", "\u0153": "oe", "\u0152": "oe", "\u00f8": "o", "\u00d8": "o",
    "\u0142": "l", "\u0141": "l", "\u00f0": "d", "\u00d0": "d", "\u00fe": "th", "\u00de": "th",
}


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.!?;:)\]}])(?![0-9])")


def _tidy(s: str) -> str:
    s = _SPACES.sub(" ", s).strip()
    return _SPACE_BEFORE_PUNCT.sub(r"\1", s)


# ------------------------------------------------------------------------------------- rule helpers
def _sub(rx: re.Pattern[str], fn: Callable[[re.Match[str]], str | None], s: str) -> str:
    """Replace matches of `rx` with fn(match) (None keeps the match), adding a space on a side where the
    replacement would otherwise touch a letter or digit ("a1b" -> "a one b")."""

    def repl(m: re.Match[str]) -> str:
        words = fn(m)
        if words is None:
            return m.group(0)
        i, j = m.start(), m.end()
        if i > 0 and s[i - 1].isalnum() and words[:1].isalnum():
            words = " " + words
        if j < len(s) and s[j].isalnum() and words[-1:].isalnum():
            words += " "
        return words

    return rx.sub(repl, s)


def _match_case(src: str, words: str) -> str:
    letters = [c for c in src if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return words.upper()
    if letters and letters[0].isupper():
        return words[:1].upper() + words[1:]
    return words


def _sentence_end_follows(s: str, j: int) -> bool:
    """True when the text ends at j or the next word is capitalised (a period there ends a sentence)."""
    rest = s[j:].lstrip()
    return not rest or rest[0].isupper()


# ------------------------------------------------------------------------------------- abbreviations
_TITLES = {"mr": "mister", "mrs": "missus", "ms": "miz", "dr": "doctor", "prof": "professor",
           "rev": "reverend", "capt": "captain", "sgt": "sergeant", "lt": "lieutenant", "col": "colonel",
           "gov": "governor", "sen": "senator", "mt": "mount", "ft": "fort"}
_ENDERS = {"jr": "junior", "sr": "senior", "ave": "avenue", "blvd": "boulevard", "rd": "road",
           "dept": "department", "inc": "incorporated", "ltd": "limited", "co": "company",
           "corp": "corporation", "bros": "brothers", "approx": "approximately", "etc": "et cetera"}
_INLINE = {"vs": "versus", "e.g": "for example", "i.e": "that is", "a.k.a": "also known as"}

_ABBR = re.compile(
    r"(?<![^\W\d_])(?<![.'])(?P<abbr>" + "|".join(sorted((re.escape(k) for k in (*_TITLES, *_ENDERS, *_INLINE, "st")),
                                            key=len, reverse=True)) + r")\.(?!\w)",
    re.IGNORECASE)
_NUMBER_ABBR = re.compile(r"(?<![^\W\d_])(?<![.'])No\.\s?(?=[0-9])")


def _abbreviations(s: str) -> str:
    def repl(m: re.Match[str]) -> str:
        src = m.group("abbr")
        key = src.lower()
        j = m.end()
        if key == "st":
            rest, before = s[j:], s[: m.start()].rstrip().split(" ")[-1]
            after_name = bool(before) and (before[0].isupper() or before[0].isdigit())
            saint = not after_name and rest[:1] == " " and rest[1:2].isupper()
            words = "saint" if saint else "street"
            period = not saint and _sentence_end_follows(s, j)
        elif key in _TITLES:
            words, period = _TITLES[key], False
        elif key in _ENDERS:
            words, period = _ENDERS[key], _sentence_end_follows(s, j)
        else:
            words, period = _INLINE[key], False
        return _match_case(src, words) + ("." if period else "")

    s = _ABBR.sub(repl, s)
    return _NUMBER_ABBR.sub("number ", s)


# ------------------------------------------------------------------------------------- money
_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "\u00a3": ("pound", "pounds", "penny", "pence"),
             "\u20ac": ("euro", "euros", "cent", "cents")}
_AMOUNT = r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]+))?(?![0-9])"
_SCALE = r"(?:\s?(?P<scale>thousand|million|billion|trillion)\b)?"
_MONEY_BEFORE = re.compile(r"(?P<cur>[$\u00a3\u20ac])\s?" + _AMOUNT + _SCALE)
_MONEY_AFTER = re.compile(r"(?<![\w.,])" + _AMOUNT + r"\s?(?P<cur>[$\u00a3\u20ac])")


def _money(m: re.Match[str]) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group("cur")]
    intpart, frac = m.group("int").replace(",", ""), m.group("frac")
    scale = m.groupdict().get("scale")
    if scale:
        return f"{_decimal(intpart, frac)} {scale} {many}"
    if frac is not None and len(frac) == 2:
        units, cents = int(intpart), int(frac)
        parts = []
        if units or not cents:
            parts.append(f"{_decimal(intpart, None)} {one if units == 1 else many}")
        if cents:
            parts.append(f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}")
        return " and ".join(parts)
    amount = _decimal(intpart, frac)
    return f"{amount} {one if intpart == '1' and not frac else many}"


# ------------------------------------------------------------------------------------- dates
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December"]
_MONTH_ABBR = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Sept": 9,
               "Oct": 10, "Nov": 11, "Dec": 12}
_MONTH_RX = r"(?<![^\W\d_])(?P<month>" + "|".join(_MONTHS) + "|" + "|".join(
    sorted((re.escape(a) + r"\." for a in _MONTH_ABBR), key=len, reverse=True)) + r")(?![^\W\d_])"
_NUMERIC_DATE = re.compile(r"(?<![\w/.])([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?![\w/])")
_ISO_DATE = re.compile(r"(?<![\w\-.])([0-9]{4})-([0-9]{2})-([0-9]{2})(?![\w\-])")
_MONTH_DAY = re.compile(_MONTH_RX + r"\s+(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?(?![\w])"
                        r"(?:(?P<comma>,?)\s+(?P<year>[0-9]{4})(?![\w]))?")
_DAY_MONTH = re.compile(r"(?<![\w.,])(?P<day>[0-9]{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH_RX
                        + r"(?:,?\s+(?P<year>[0-9]{4})(?![\w]))?")
_MONTH_YEAR = re.compile(_MONTH_RX + r",?\s+(?P<year>[0-9]{4})(?![\w])")


def _month_name(token: str) -> str:
    token = token.rstrip(".")
    return _MONTHS[_MONTH_ABBR[token] - 1] if token in _MONTH_ABBR else token


def _date_words(month: int, day: int, yr: str | None, comma: str = ",") -> str:
    words = f"{_MONTHS[month - 1]} {ordinal(day)}"
    if yr is not None:
        words += f"{comma} {year(int(yr))}"
    return words


def _numeric_date(m: re.Match[str]) -> str | None:
    a, b, yr = int(m.group(1)), int(m.group(2)), m.group(3)
    if 1 <= a <= 12 and 1 <= b <= 31:
        return _date_words(a, b, yr)
    if 1 <= b <= 12 and 1 <= a <= 31:
        return _date_words(b, a, yr)
    return None


def _iso_date(m: re.Match[str]) -> str | None:
    yr, month, day = m.group(1), int(m.group(2)), int(m.group(3))
    return _date_words(month, day, yr) if 1 <= month <= 12 and 1 <= day <= 31 else None


def _date(m: re.Match[str], day_first: bool) -> str | None:
    """"May 5, 2020" -> "May fifth, twenty twenty"; "5 May 2020" -> "the fifth of May twenty twenty"."""
    day = int(m.group("day"))
    if not 1 <= day <= 31:
        return None
    month = _month_name(m.group("month"))
    words = f"the {ordinal(day)} of {month}" if day_first else f"{month} {ordinal(day)}"
    if m.group("year"):
        words += f"{'' if day_first else m.group('comma')} {year(int(m.group('year')))}"
    return words


def _month_year(m: re.Match[str]) -> str:
    return f"{_month_name(m.group('month'))} {year(int(m.group('year')))}"


# ------------------------------------------------------------------------------------- times
_AMPM = r"(?:\s?(?P<ampm>[AaPp])\.?[Mm](?P<dot>\.?)(?![\w]))"
_CLOCK = re.compile(r"(?<![\w:.])(?P<h>[01]?[0-9]|2[0-3]):(?P<m>[0-5][0-9])(?![\w:])" + _AMPM + "?")
_HOUR_AMPM = re.compile(r"(?<![\w:.,])(?P<h>1[0-2]|0?[1-9])" + _AMPM)


def _ampm_words(m: re.Match[str], s: str) -> str:
    if not m.group("ampm"):
        return ""
    words = " " + m.group("ampm").lower() + " m"
    if m.group("dot") and _sentence_end_follows(s, m.end()):
        words += "."
    return words


def _clock(s: str) -> str:
    def fn(m: re.Match[str]) -> str:
        h, mm = int(m.group("h")), int(m.group("m"))
        words = cardinal(h)
        if mm == 0:
            words += "" if m.group("ampm") else " o'clock"
        elif mm < 10:
            words += " oh " + cardinal(mm)
        else:
            words += " " + cardinal(mm)
        return words + _ampm_words(m, s)

    s = _sub(_CLOCK, fn, s)
    return _sub(_HOUR_AMPM, lambda m: cardinal(int(m.group("h"))) + _ampm_words(m, s), s)


# ------------------------------------------------------------------------------------- other numbers
_PERCENT = re.compile(r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]+))?\s?%")
_DEGREES = re.compile(r"\s?\u00b0\s?(?P<unit>[CF])(?![\w])")
_RANGE = re.compile(r"(?<![\w.,\-])(?P<a>[0-9]+)\s?-\s?(?P<b>[0-9]+)(?![\w\-]|[.,][0-9])")
_NEGATIVE = re.compile(r"(?<![\w.,\-])-(?=[0-9])")
_DECADE = re.compile(r"(?<![\w.,])(?P<n>[0-9]{2,3}0)s(?![\w])")
_LEADING_POINT = re.compile(r"(?<![\w.])\.(?P<frac>[0-9]+)")
_NUMBER = re.compile(r"(?P<int>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.(?P<frac>[0-9]+))?"
                     r"(?:(?P<ord>st|nd|rd|th)\b)?")
_SYMBOLS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ", "@": " at ", "#": " number ",
            "$": " dollars ", "\u00a3": " pounds ", "\u20ac": " euros ", "\u00b0": " degrees "}


def _number(m: re.Match[str]) -> str:
    raw, intpart, frac = m.group(0), m.group("int"), m.group("frac")
    plain = intpart.replace(",", "")
    if m.group("ord") and len(plain) <= 15:
        return ordinal(int(plain))
    if m.group("ord"):
        return digits(plain) + " " + m.group("ord")
    n = int(plain)
    if frac is None and len(plain) == 4 and 1100 <= n <= 1999 and "," not in raw:
        return year(n)
    return _decimal(intpart, frac)


def _decade(m: re.Match[str]) -> str:
    n = int(m.group("n"))
    return _plural(year(n) if 1100 <= n <= 1999 else cardinal(n))


def _range(m: re.Match[str]) -> str:
    return f"{_decimal(m.group('a'), None)} to {_decimal(m.group('b'), None)}"


# ------------------------------------------------------------------------------------- entry point
def normalize(text: str, *, lowercase: bool = True) -> str:
    """Written English -> spoken words (see the module docstring for every rule, in order).

    The rules run again on their own output until nothing changes (at most 3 rounds; in practice a
    second round only changes text where an expansion freed an abbreviation, e.g. "12 Sept.Dr."), so
    the result is a fixed point: normalize(normalize(t)) == normalize(t)."""
    s = _normalize_once(text, lowercase)
    for _ in range(2):
        again = _normalize_once(s, lowercase)
        if again == s:
            break
        s = again
    return s


def _normalize_once(text: str, lowercase: bool) -> str:
    s = _strip_accents(text)
    s = "".join(_FOLD.get(c, c) for c in s)
    s = _tidy(s)
    s = _abbreviations(s)
    s = _sub(_MONEY_BEFORE, _money, s)
    s = _sub(_MONEY_AFTER, _money, s)
    s = _sub(_NUMERIC_DATE, _numeric_date, s)
    s = _sub(_ISO_DATE, _iso_date, s)
    s = _sub(_MONTH_DAY, lambda m: _date(m, day_first=False), s)
    s = _sub(_DAY_MONTH, lambda m: _date(m, day_first=True), s)
    s = _sub(_MONTH_YEAR, _month_year, s)
    s = _clock(s)
    s = _sub(_PERCENT, lambda m: _decimal(m.group("int"), m.group("frac")) + " percent", s)
    s = _DEGREES.sub(lambda m: " degrees " + ("Celsius" if m.group("unit") == "C" else "Fahrenheit"), s)
    s = _sub(_RANGE, _range, s)
    s = _NEGATIVE.sub("minus ", s)
    s = _sub(_DECADE, _decade, s)
    s = _sub(_LEADING_POINT, lambda m: "point " + digits(m.group("frac")), s)
    s = _sub(_NUMBER, _number, s)
    for sym, words in _SYMBOLS.items():
        s = s.replace(sym, words)
    if lowercase:
        s = _strip_accents(s.lower())
    return _tidy(s)
