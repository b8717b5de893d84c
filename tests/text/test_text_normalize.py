"""The lane's one English normaliser (lane.text.normalize): expected words for each rule, idempotence,
and that its output stays inside the character tokenizer's vocabulary."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from lane.data.text import VOCAB, normalize_text, out_of_vocabulary
from lane.text.normalize import NORMALIZER_ID, cardinal, normalize, normalizer_info, ordinal, year

CASES = [
    # cardinals, thousands separators, leading zeros, long digit strings
    ("I have 3 cats and 115 fish.", "i have three cats and one hundred fifteen fish."),
    ("90210 and 1,000,000", "ninety thousand two hundred ten and one million"),
    ("Call 007 now", "call zero zero seven now"),
    ("1234567890123456789", "one two three four five six seven eight nine zero one two three four five six seven "
                            "eight nine"),
    # negatives and decimals
    ("It was -3 outside, then -3.5.", "it was minus three outside, then minus three point five."),
    ("Pi is 3.14 and .5 is half", "pi is three point one four and point five is half"),
    # ordinals
    ("The 1st, 2nd, 3rd, 11th, 21st and 101st", "the first, second, third, eleventh, twenty-first and one hundred "
                                                "first"),
    ("a 2nd-hand book", "a second-hand book"),
    # years and decades
    ("In 1984, 1905 and 1900.", "in nineteen eighty-four, nineteen oh five and nineteen hundred."),
    ("In 2000 and 2024", "in two thousand and two thousand twenty-four"),
    ("The 1980s and the 2000s", "the nineteen eighties and the two thousands"),
    # money
    ("It costs $5.", "it costs five dollars."),
    ("$1 or $1.50 or $0.99", "one dollar or one dollar and fifty cents or ninety-nine cents"),
    ("£5.50 and £0.01", "five pounds and fifty pence and one penny"),
    ("€2,500 or 5€", "two thousand five hundred euros or five euros"),
    ("$1.5 million", "one point five million dollars"),
    ("$3.999", "three point nine nine nine dollars"),
    # percentages and degrees
    ("12.5% of 40%", "twelve point five percent of forty percent"),
    ("It is 20°C or 68 °F", "it is twenty degrees celsius or sixty-eight degrees fahrenheit"),
    # dates
    ("On 12/03/2024.", "on december third, twenty twenty-four."),
    ("On 25/12/2023", "on december twenty-fifth, twenty twenty-three"),
    ("2024-03-12", "march twelfth, twenty twenty-four"),
    ("March 3, 2024", "march third, twenty twenty-four"),
    ("on 3 March 2024", "on the third of march twenty twenty-four"),
    ("Sept. 21st", "september twenty-first"),
    ("In March 2024", "in march twenty twenty-four"),
    # times
    ("At 7:30 we ate", "at seven thirty we ate"),
    ("At 7:05 pm or 7:00", "at seven oh five p m or seven o'clock"),
    ("Meet at 7 p.m. Then go.", "meet at seven p m. then go."),
    ("at 10am", "at ten a m"),
    # ranges
    ("pages 10-20, not 3-4-5", "pages ten to twenty, not three-four-five"),
    # abbreviations
    ("Dr. Smith met Mr. and Mrs. Jones.", "doctor smith met mister and missus jones."),
    ("St. John lives on Elm St. Next door.", "saint john lives on elm street. next door."),
    ("Prof. X vs. Y, e.g. here, i.e. there", "professor x versus y, for example here, that is there"),
    ("apples, pears, etc. And more etc.", "apples, pears, et cetera. and more et cetera."),
    ("Acme Inc. makes tools", "acme incorporated makes tools"),
    ("No. 5 and no. 6", "number five and no. six"),
    # symbols and unicode folding
    ("Tom & Jerry + 2 = fun @ home #1", "tom and jerry plus two equals fun at home number one"),
    ("\u201cQuoted\u201d \u2014 it\u2019s caf\u00e9 na\u00efve\u2026", '"quoted" - it\'s cafe naive...'),
    ("Stra\u00dfe \u00d8resund \u00c6sir \ufb01ne x\u00b2", "strasse oresund aesir fine x two"),
    ("Tom  went\thome\n", "tom went home"),
]


@pytest.mark.parametrize("raw,expected", CASES)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert normalize(expected) == expected


def test_case_is_kept_on_request() -> None:
    assert normalize("Dr. Smith paid $5", lowercase=False) == "Doctor Smith paid five dollars"
    assert normalize("DR. SMITH", lowercase=False) == "DOCTOR SMITH"


def test_number_words_are_num2words_in_american_style() -> None:
    assert cardinal(1984) == "one thousand nine hundred eighty-four"
    assert cardinal(-3) == "minus three"
    assert ordinal(101) == "one hundred first"
    assert year(2024) == "twenty twenty-four" and year(1905) == "nineteen oh five"


def test_normalizer_id_names_num2words_version() -> None:
    info = normalizer_info()
    assert version("num2words") in NORMALIZER_ID and info["id"] == NORMALIZER_ID
    assert info["num2words"] == version("num2words")


def test_lane_data_delegates_to_the_normaliser() -> None:
    text = "In 1984 Zo\u00eb paid \u00a35.50 on 12/03/2024 at 7:30 with Dr. Who & co."
    assert normalize_text(text) == normalize(text)


_ALPHABET = ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()&%/$\u00a3\u20ac\u00b0#@+="
             "\u2019\u201c\u201d\u2014\u2013\u2026" + "".join(chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)))


@settings(max_examples=400, deadline=None)
@given(hs.text(alphabet=_ALPHABET, max_size=80))
def test_normalize_is_idempotent_and_in_the_char_vocabulary(text: str) -> None:
    norm = normalize(text)
    assert out_of_vocabulary(norm) == []
    assert norm == norm.strip() and "  " not in norm
    assert normalize(norm) == norm
    assert set(norm) <= VOCAB


@settings(max_examples=200, deadline=None)
@given(hs.lists(hs.sampled_from(["Dr.", "St.", "No.", "$", "\u00a3", "5", "12", "/", ":", "-", ".", ",", " ",
                                 "March", "3", "2024", "pm", "a.m.", "%", "\u00b0C", "etc.", "1,000", "e.g."]),
                max_size=20))
def test_normalize_is_idempotent_on_rule_fragments(parts: list[str]) -> None:
    text = "".join(parts)
    norm = normalize(text)
    assert normalize(norm) == norm
    assert out_of_vocabulary(norm) == []
