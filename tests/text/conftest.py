"""Fixtures for the text tests: CMUdict-derived dictionaries from the pocketsphinx wheel, NeMo's own
tokenizers built on them (never downloading anything), and their exported lane replays."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tokcheck_helpers import (
    HETERONYMS,
    Dicts,
    Nemo,
    Setup,
    make_setup,
    pocketsphinx_cmudict,
    read_pocketsphinx,
    write_cmu_arpabet,
    write_cmu_ipa,
    write_heteronyms,
)


@pytest.fixture(scope="session")
def dicts(tmp_path_factory: pytest.TempPathFactory) -> Dicts:
    src = pocketsphinx_cmudict()
    if not src.exists():
        pytest.skip("pocketsphinx wheel without its CMUdict")
    d = tmp_path_factory.mktemp("g2pdicts")
    entries = read_pocketsphinx(src)
    base = Counter(w.split("(")[0] for w, _ in entries)
    rng = random.Random(7)
    keep = set(rng.sample(sorted(base), 15000)) | set(HETERONYMS)
    keep |= {w for w, c in base.items() if c > 1 and rng.random() < 0.3}
    small = [(w, p) for w, p in entries if w.split("(")[0] in keep]
    return Dicts(
        entries=entries,
        arpabet=write_cmu_arpabet(entries, d / "cmudict_arpabet.txt"),
        ipa=write_cmu_ipa(entries, d / "ipa_cmudict.txt"),
        small_entries=small,
        small_arpabet=write_cmu_arpabet(small, d / "small_arpabet.txt"),
        small_ipa=write_cmu_ipa(small, d / "small_ipa.txt"),
        small_ipa_lower=write_cmu_ipa(small, d / "small_ipa_lower.txt", upper=False),
        heteronyms=write_heteronyms(d / "heteronyms.txt"),
    )


@pytest.fixture(scope="session")
def nemo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nemo]:
    """NeMo's TTS tokenizers and G2Ps, with NLTK pointed at an empty folder and nltk.download made to
    fail, so a G2P that tried to fetch CMUdict would break the test instead of reaching the network."""
    pytest.importorskip("nemo.collections.tts")
    nltk = pytest.importorskip("nltk")
    empty = tmp_path_factory.mktemp("nltk_empty")
    downloads: list[tuple[Any, ...]] = []

    def no_download(*args: Any, **kwargs: Any) -> None:
        downloads.append(args)
        raise RuntimeError("a test tried to download NLTK data")

    mp = pytest.MonkeyPatch()
    mp.setenv("NLTK_DATA", str(empty))
    mp.setattr(nltk, "download", no_download)
    mp.setattr(nltk.data, "path", [str(empty)])
    from nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers import (
        EnglishCharsTokenizer,
        EnglishPhonemesTokenizer,
        IPATokenizer,
    )
    from nemo.collections.tts.g2p.models.en_us_arpabet import EnglishG2p
    from nemo.collections.tts.g2p.models.i18n_ipa import IpaG2p
    from nemo.utils import logging as nemo_logging

    level = nemo_logging.getEffectiveLevel()
    nemo_logging.setLevel(nemo_logging.ERROR)  # unknown-symbol warnings, one per dropped symbol
    try:
        yield Nemo(EnglishPhonemesTokenizer, IPATokenizer, EnglishCharsTokenizer, EnglishG2p, IpaG2p, downloads)
    finally:
        nemo_logging.setLevel(level)
        mp.undo()
    assert downloads == [], f"NeMo tried to download: {downloads}"


@pytest.fixture(scope="session")
def arpabet_main(nemo: Nemo, dicts: Dicts, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """NGC FastPitch (ARPABET) style: EnglishG2p(cmudict, heteronyms, phoneme_probability=0.5) +
    EnglishPhonemesTokenizer(punct, stresses, chars, apostrophe, pad_with_space)."""
    g2p = nemo.EnglishG2p(phoneme_dict=dicts.arpabet, heteronyms=dicts.heteronyms, phoneme_probability=0.5)
    tok = nemo.EnglishPhonemesTokenizer(g2p, punct=True, stresses=True, chars=True, apostrophe=True,
                                        pad_with_space=True)
    return make_setup("arpabet", tok, tmp_path_factory.mktemp("tok_arpabet"))


@pytest.fixture(scope="session")
def ipa_main(nemo: Nemo, dicts: Dicts, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """NGC FastPitch (IPA) style: IpaG2p(ipa_cmudict, heteronyms, phoneme_probability=0.8,
    ignore_ambiguous_words=False, use_chars, use_stresses) + IPATokenizer(en-US, punct, apostrophe,
    pad_with_space)."""
    g2p = nemo.IpaG2p(phoneme_dict=dicts.ipa, locale="en-US", heteronyms=dicts.heteronyms, phoneme_probability=0.8,
                      ignore_ambiguous_words=False, use_chars=True, use_stresses=True)
    tok = nemo.IPATokenizer(g2p, locale="en-US", punct=True, apostrophe=True, pad_with_space=True)
    return make_setup("ipa", tok, tmp_path_factory.mktemp("tok_ipa"))
