"""NeMo side -> bundle side: export_tokenizer writes a description and G2P files that load_tokenizer
replays with the same ids; what cannot be replayed is marked and refused; the replay still mirrors the
NeMo source it was written from."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from tokcheck_helpers import Dicts, Nemo, Setup

from lane.nemo.tokenizer import describe_tokenizer, export_tokenizer, exported_files, nemo_encode
from lane.text import g2p as replay_g2p
from lane.text.g2p import parse_g2p_dict, parse_heteronyms
from lane.text.normalize import NORMALIZER_ID, normalize
from lane.text.tokenizers import CharTokenizer, TokenizerError, load_tokenizer, load_tokenizer_file

pytestmark = pytest.mark.nemo


def test_char_tokenizer_round_trip(nemo: Nemo, dicts: Dicts, tmp_path: Path) -> None:
    """The lane's FastPitch tokenizer (configs/nemo/fastpitch.yaml) through export -> load gives NeMo's
    ids on raw and normalised sentences."""
    vocab = nemo.EnglishCharsTokenizer(punct=True, apostrophe=True, pad_with_space=True)
    desc = export_tokenizer(vocab, tmp_path)
    assert json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8")) == desc
    assert desc["type"] == "chars" and desc["runnable_without_nemo"] and exported_files(desc) == []
    assert desc["normalizer"] == NORMALIZER_ID
    tok = load_tokenizer(desc, tmp_path)
    assert isinstance(tok, CharTokenizer)
    sentences = dicts.maker(seed=5).sentences(500)
    sentences += [normalize(s) for s in sentences[:200]]
    for s in sentences:
        want = nemo_encode(vocab, s)
        assert tok.encode(s) == want, s


def test_char_tokenizer_with_identity_preprocessing_and_blank(nemo: Nemo, tmp_path: Path) -> None:
    vocab = nemo.EnglishCharsTokenizer(punct=False, apostrophe=False, add_blank_at="last",
                                       text_preprocessing_func=lambda x: x)
    desc = export_tokenizer(vocab, tmp_path)
    assert desc["preprocessing"] == "identity" and desc["runnable_without_nemo"]
    tok = load_tokenizer(desc, tmp_path)
    for s in ["Hello, World!", "it's a test", "UPPER lower", "  spaced  out  "]:
        assert tok.encode(s) == nemo_encode(vocab, s)


@pytest.mark.parametrize("which", ["arpabet_main", "ipa_main"])
def test_phoneme_export_files_and_description(which: str, request: pytest.FixtureRequest) -> None:
    setup: Setup = request.getfixturevalue(which)
    desc, out, g2p = setup.desc, setup.dir, setup.nemo_tok.g2p
    assert desc["runnable_without_nemo"] and "unsupported" not in desc
    assert desc == json.loads((out / "tokenizer.json").read_text(encoding="utf-8"))
    assert sorted(exported_files(desc)) == ["g2p_dict.txt", "heteronyms.txt"]
    for key in ("dictionary", "heteronyms"):
        spec = desc["g2p"][key]
        data = (out / spec["path"]).read_bytes()
        assert spec["sha256"] == hashlib.sha256(data).hexdigest() and spec["bytes"] == len(data)
    # the files hold exactly NeMo's in-memory dictionary and heteronym set
    assert parse_g2p_dict((out / "g2p_dict.txt").read_bytes()) == {k: list(v) for k, v in g2p.phoneme_dict.items()}
    assert parse_heteronyms((out / "heteronyms.txt").read_bytes()) == set(g2p.heteronyms)
    d = desc["g2p"]["dictionary"]
    assert d["entries"] == len(g2p.phoneme_dict) > 100_000
    assert d["pronunciations"] == sum(len(v) for v in g2p.phoneme_dict.values())
    assert desc["g2p"]["phoneme_probability"] == 1.0
    assert desc["g2p"]["phoneme_probability_training"] == g2p.phoneme_probability
    assert desc["normalizer"] == NORMALIZER_ID
    assert desc["tokens"] == list(setup.nemo_tok.tokens)
    # describe_tokenizer gives the same description without writing; export is deterministic
    assert describe_tokenizer(setup.nemo_tok) == desc
    again = load_tokenizer_file(out / "tokenizer.json")
    assert again.encode("The wind's record, re-read live!") == setup.replay.encode("The wind's record, re-read live!")
    said = setup.replay.describe()
    assert said["type"] == desc["type"] and said["dictionary"]["sha256"] == d["sha256"]
    assert said["normalizer"] == NORMALIZER_ID and "graphemes" in said["oov_policy"]


def test_provenance_is_recorded(nemo: Nemo, dicts: Dicts, tmp_path: Path) -> None:
    g2p = nemo.EnglishG2p(phoneme_dict=dicts.small_arpabet, heteronyms=dicts.heteronyms)
    vocab = nemo.EnglishPhonemesTokenizer(g2p, stresses=True, chars=True)
    prov = {"dictionary": {"source": "nemo:cmudict.txt", "licence": "BSD-2-Clause"},
            "heteronyms": {"source": "nemo:heteronyms.txt", "licence": "CC-BY-4.0"}}
    desc = export_tokenizer(vocab, tmp_path, provenance=prov)
    assert desc["g2p"]["dictionary"]["licence"] == "BSD-2-Clause"
    assert desc["g2p"]["heteronyms"]["source"] == "nemo:heteronyms.txt"
    assert load_tokenizer(desc, tmp_path).describe()["dictionary"]["licence"] == "BSD-2-Clause"


def _unsupported(nemo: Nemo, dicts: Dicts) -> dict[str, Any]:
    small = dicts.small_arpabet
    return {
        "apply_to_oov_word": lambda: nemo.EnglishPhonemesTokenizer(
            nemo.EnglishG2p(phoneme_dict=small, apply_to_oov_word=str.upper), chars=True),
        "custom_preprocessing": lambda: nemo.EnglishPhonemesTokenizer(
            nemo.EnglishG2p(phoneme_dict=small), text_preprocessing_func=str.lower),
        "custom_word_tokenizer": lambda: nemo.EnglishPhonemesTokenizer(
            nemo.EnglishG2p(phoneme_dict=small, word_tokenize_func=lambda t: [([w], False) for w in t.split()])),
        "ipa_other_locale": lambda: nemo.IPATokenizer(
            nemo.IpaG2p(phoneme_dict=dicts.small_ipa, locale="es-ES"), locale="es-ES"),
        "german_chars": lambda: __import__(
            "nemo.collections.common.tokenizers.text_to_speech.tts_tokenizers",
            fromlist=["GermanCharsTokenizer"]).GermanCharsTokenizer(),
    }


@pytest.mark.parametrize("case", ["apply_to_oov_word", "custom_preprocessing", "custom_word_tokenizer",
                                  "ipa_other_locale", "german_chars"])
def test_options_the_replay_cannot_guarantee_are_refused(case: str, nemo: Nemo, dicts: Dicts,
                                                         tmp_path: Path) -> None:
    vocab = _unsupported(nemo, dicts)[case]()
    desc = export_tokenizer(vocab, tmp_path)
    assert desc["runnable_without_nemo"] is False and desc.get("unsupported"), desc.get("unsupported")
    with pytest.raises(TokenizerError, match="cannot run without NeMo"):
        load_tokenizer(desc, tmp_path)


def test_replay_constants_are_nemos() -> None:
    """The regexes and tables the replay copies are still NeMo's (the exactness tests cover behaviour)."""
    from nemo.collections.common.tokenizers.text_to_speech import tokenizer_utils as tu
    from nemo.collections.tts.g2p.models.en_us_arpabet import EnglishG2p
    from nemo.collections.tts.g2p.models.i18n_ipa import IpaG2p

    assert replay_g2p.WORDS_RE_EN.pattern == tu._WORDS_RE_EN.pattern
    assert replay_g2p.IPA_CHAR_RE.pattern == IpaG2p.CHAR_REGEX.pattern
    assert replay_g2p.SYNOGLYPH2ASCII == tu.SYNOGLYPH2ASCII
    assert tuple(IpaG2p.STRESS_SYMBOLS) == replay_g2p.IPA_STRESS_SYMBOLS
    assert 're.search(r"[a-zA-ZÀ-ÿ\\d]", word)' in inspect.getsource(EnglishG2p.parse_one_word)
    assert replay_g2p.ARPABET_WORD_CHAR_RE.pattern == r"[a-zA-ZÀ-ÿ\d]"


# sha256 of the NeMo functions lane.text replays, as read for NeMo 3.0.0. A NeMo upgrade that changes
# one of them fails here: re-read the function, update lane/text/g2p.py or tokenizers.py, then the hash.
REPLAYED_SOURCES = (
    "tokenizer_utils.english_word_tokenize",
    "tokenizer_utils._word_tokenize",
    "tokenizer_utils.english_text_preprocessing",
    "tokenizer_utils.normalize_unicode_text",
    "EnglishG2p.parse_one_word",
    "EnglishG2p.__call__",
    "IpaG2p.parse_one_word",
    "IpaG2p.__call__",
    "BaseCharsTokenizer.encode",
    "EnglishPhonemesTokenizer.encode",
    "EnglishPhonemesTokenizer.encode_from_g2p",
    "IPATokenizer.encode",
    "IPATokenizer.encode_from_g2p",
    "FastPitchModel.parse",
)
PINNED = Path(__file__).with_name("nemo_replayed_sources.json")


def _replayed_sources() -> dict[str, str]:
    from nemo.collections.common.tokenizers.text_to_speech import tokenizer_utils, tts_tokenizers
    from nemo.collections.tts.g2p.models.en_us_arpabet import EnglishG2p
    from nemo.collections.tts.g2p.models.i18n_ipa import IpaG2p
    from nemo.collections.tts.models.fastpitch import FastPitchModel

    scope = {"tokenizer_utils": tokenizer_utils, "EnglishG2p": EnglishG2p, "IpaG2p": IpaG2p,
             "FastPitchModel": FastPitchModel, **{k: getattr(tts_tokenizers, k) for k in
                                                  ("BaseCharsTokenizer", "EnglishPhonemesTokenizer", "IPATokenizer")}}
    out = {}
    for name in REPLAYED_SOURCES:
        owner, attr = name.split(".")
        src = inspect.getsource(getattr(scope[owner], attr))
        out[name] = hashlib.sha256(src.encode("utf-8")).hexdigest()
    return out


def test_replayed_nemo_sources_are_unchanged() -> None:
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    changed = {k: v for k, v in _replayed_sources().items() if pinned.get(k) != v}
    assert not changed, (f"NeMo functions replayed by lane.text changed: {sorted(changed)}; re-read them, "
                         f"update the replay and {PINNED.name}")


def test_nemo_loader_needs_the_converted_cmudict_format(nemo: Nemo, tmp_path: Path) -> None:
    """Why the fixtures convert pocketsphinx's CMUdict: NeMo's EnglishG2p loader keeps only lines that
    start with A-Z or an apostrophe and splits on two spaces, so the wheel's own format ("word PH PH")
    loads as an empty dictionary, silently."""
    raw = tmp_path / "pocketsphinx_style.dict"
    raw.write_text("hello HH AH L OW\nworld W ER L D\n", encoding="utf-8")
    assert nemo.EnglishG2p(phoneme_dict=raw).phoneme_dict == {}
    nemo_style = tmp_path / "nemo_style.dict"
    nemo_style.write_text("HELLO  HH AH0 L OW1\nWORLD  W ER1 L D\n", encoding="latin-1")
    assert nemo.EnglishG2p(phoneme_dict=nemo_style).phoneme_dict["hello"] == [["HH", "AH0", "L", "OW1"]]
