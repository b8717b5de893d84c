"""The bundle runtime's token ids equal NeMo's own tokenizer's (at FastPitch inference), sentence by
sentence, for ARPABET (EnglishPhonemesTokenizer + EnglishG2p) and IPA (IPATokenizer + IpaG2p), on raw
text and on text that went through the lane's normaliser first, plus option variants."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tokcheck_helpers import Dicts, Nemo, Setup, make_setup, written_sentence

from lane.nemo.tokenizer import nemo_encode
from lane.text.normalize import normalize
from lane.text.tokenizers import TokenizerError

pytestmark = pytest.mark.nemo

N_RAW = 3000
N_NORMALIZED = 1000
N_VARIANT = 600


def _ids_or_error(fn: Callable[[], list[int]], errors: tuple[type[BaseException], ...]) -> list[int] | str:
    try:
        return fn()
    except errors as exc:
        return f"error:{type(exc).__name__}"


def compare(setup: Setup, sentences: list[str]) -> tuple[int, list[str]]:
    """(mismatches, examples). NeMo's IndexError/AttributeError (all-space IPA text, IPA punct=False)
    must meet the replay's TokenizerError."""
    bad: list[str] = []
    for s in sentences:
        want = _ids_or_error(lambda s=s: nemo_encode(setup.nemo_tok, s), (IndexError, AttributeError))
        got = _ids_or_error(lambda s=s: setup.replay.encode(s), (TokenizerError,))
        if isinstance(want, str) and isinstance(got, str):
            continue
        if want != got:
            bad.append(f"{s!r}: nemo={want} replay={got}")
    return len(bad), bad[:5]


def handled(setup: Setup, sentences: list[str]) -> Counter[str]:
    return Counter(t.how for s in sentences for t in setup.replay.trace(s))


@pytest.fixture(scope="module")
def raw_sentences(dicts: Dicts) -> list[str]:
    return dicts.maker(seed=1).sentences(N_RAW)


@pytest.fixture(scope="module")
def written_sentences(dicts: Dicts) -> list[str]:
    maker = dicts.maker(seed=2)
    return [written_sentence(maker) for _ in range(N_NORMALIZED)]


@pytest.mark.parametrize("which", ["arpabet_main", "ipa_main"])
def test_replay_equals_nemo_on_varied_sentences(which: str, request: pytest.FixtureRequest,
                                                raw_sentences: list[str]) -> None:
    setup: Setup = request.getfixturevalue(which)
    n_bad, examples = compare(setup, raw_sentences)
    print(f"[exactness] {setup.name}: {len(raw_sentences)} sentences, {n_bad} mismatches")
    assert n_bad == 0, "\n".join(examples)
    # the sentences really exercise every G2P path
    how = handled(setup, raw_sentences)
    print(f"[exactness] {setup.name} word handling: {dict(how)}")
    needed = {"dictionary", "heteronym", "possessive", "plural", "oov", "hyphenated", "punctuation", "unchanged"}
    if setup.desc["g2p"]["ignore_ambiguous_words"]:
        needed.add("ambiguous")
    assert all(how[k] >= 5 for k in needed), how


@pytest.mark.parametrize("which", ["arpabet_main", "ipa_main"])
def test_replay_equals_nemo_after_the_lane_normaliser(which: str, request: pytest.FixtureRequest,
                                                      written_sentences: list[str]) -> None:
    """The lane's actual path: normalise (numbers, money, dates, abbreviations...), then tokenize."""
    setup: Setup = request.getfixturevalue(which)
    normalized = [normalize(s) for s in written_sentences]
    assert not any(c.isdigit() for s in normalized for c in s if c.isascii())
    n_bad, examples = compare(setup, normalized)
    print(f"[exactness] {setup.name} + normaliser: {len(normalized)} sentences, {n_bad} mismatches")
    assert n_bad == 0, "\n".join(examples)


def test_the_comparison_can_fail(arpabet_main: Setup, raw_sentences: list[str]) -> None:
    """A replay with one option flipped differs from NeMo, so zero mismatches above means something."""
    g2p = arpabet_main.replay.g2p
    g2p.ignore_ambiguous_words = not g2p.ignore_ambiguous_words
    try:
        n_bad, _ = compare(arpabet_main, raw_sentences[:300])
    finally:
        g2p.ignore_ambiguous_words = not g2p.ignore_ambiguous_words
    assert n_bad > 30


def _variants(nemo: Nemo, dicts: Dicts) -> dict[str, Callable[[], Any]]:
    E, Ipa = nemo.EnglishG2p, nemo.IpaG2p
    return {
        # no stresses (3-letter phonemes cut to 2), no letters (grapheme fallbacks dropped), first
        # pronunciation of ambiguous words, heteronyms as a list, blank token
        "arpabet_nostress_nochars": lambda: nemo.EnglishPhonemesTokenizer(
            E(phoneme_dict=dicts.small_arpabet, heteronyms=list(["read", "live", "wind"]),
              ignore_ambiguous_words=False),
            punct=True, stresses=False, chars=False, apostrophe=True, pad_with_space=False, add_blank_at=True),
        # no punctuation tokens, no apostrophe, silence token, blank swapped last, no heteronyms
        "arpabet_nopunct_blank_last": lambda: nemo.EnglishPhonemesTokenizer(
            E(phoneme_dict=dicts.small_arpabet), punct=False, stresses=True, chars=True, apostrophe=False,
            silence="<sil>", add_blank_at="last", pad_with_space=True),
        # custom punctuation list
        "arpabet_custom_punct": lambda: nemo.EnglishPhonemesTokenizer(
            E(phoneme_dict=dicts.small_arpabet, heteronyms=dicts.heteronyms),
            punct=True, non_default_punct_list=[",", ".", "?", "'", '"'], stresses=True, chars=True),
        # stress marks removed, grapheme prefix, ambiguous words as graphemes, blank last
        "ipa_nostress_prefix": lambda: nemo.IPATokenizer(
            Ipa(phoneme_dict=dicts.small_ipa, heteronyms=dicts.heteronyms, use_chars=True, use_stresses=False,
                grapheme_prefix="#", ignore_ambiguous_words=True),
            punct=True, apostrophe=True, pad_with_space=True, add_blank_at="last"),
        # mixed-case graphemes over a lowercase dictionary (upper-cased duplicates), no chars
        "ipa_mixed_case": lambda: nemo.IPATokenizer(
            Ipa(phoneme_dict=dicts.small_ipa_lower, heteronyms=dicts.heteronyms, grapheme_case="mixed",
                use_chars=False, ignore_ambiguous_words=False, phoneme_probability=None),
            punct=True, apostrophe=False, pad_with_space=False),
        # lowercase graphemes, silence token, no heteronyms
        "ipa_lower": lambda: nemo.IPATokenizer(
            Ipa(phoneme_dict=dicts.small_ipa_lower, grapheme_case="lower", use_chars=True),
            punct=True, apostrophe=True, silence="<sil>", pad_with_space=True),
        # no punctuation: NeMo raises AttributeError on a non-token symbol, the replay TokenizerError
        "ipa_nopunct": lambda: nemo.IPATokenizer(
            Ipa(phoneme_dict=dicts.small_ipa, use_chars=True), punct=False, apostrophe=True),
    }


VARIANTS = ["arpabet_nostress_nochars", "arpabet_nopunct_blank_last", "arpabet_custom_punct",
            "ipa_nostress_prefix", "ipa_mixed_case", "ipa_lower", "ipa_nopunct"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_replay_equals_nemo_for_option_variants(variant: str, nemo: Nemo, dicts: Dicts, tmp_path: Path) -> None:
    setup = make_setup(variant, _variants(nemo, dicts)[variant](), tmp_path)
    maker = dicts.maker(small=True, seed=100 + VARIANTS.index(variant))
    sentences = maker.sentences(N_VARIANT)
    if variant == "ipa_nopunct":  # most symbols error out there: keep half the sentences to letters
        sentences = [re.sub(r"[^A-Za-z' ]", "", s) if i % 2 else s for i, s in enumerate(sentences)]
    n_bad, examples = compare(setup, sentences)
    print(f"[exactness] {variant}: {len(sentences)} sentences, {n_bad} mismatches")
    assert n_bad == 0, "\n".join(examples)
