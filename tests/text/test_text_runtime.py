"""The bundle-side tokenizers without NeMo: import purity, hand-written descriptions, the dictionary file
format, and every way a description is refused."""

from __future__ import annotations

import hashlib
import itertools
import json
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lane.text.g2p import G2pUnsupported, parse_g2p_dict, parse_heteronyms, write_g2p_dict, write_heteronyms
from lane.text.normalize import NORMALIZER_ID
from lane.text.tokenizers import (
    ArpabetTokenizer,
    CharTokenizer,
    IpaTokenizer,
    TokenizerError,
    load_tokenizer,
    load_tokenizer_file,
)

REPO = Path(__file__).resolve().parents[2]
PUNCT = [",", ".", "!", "?", "-", ":", ";", "/", '"', "(", ")", "[", "]", "{", "}"]
CONSONANTS = ["B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
              "TH", "V", "W", "Y", "Z", "ZH"]
VOWELS = ["AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"]


def test_runtime_imports_neither_torch_nor_nemo() -> None:
    code = ("import sys, lane.text, lane.text.g2p, lane.text.tokenizers, lane.text.normalize, lane.data.text\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'nemo', 'nemo_text_processing',"
            " 'pynini', 'transformers', 'nltk'))\n"
            "print(','.join(bad)); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, f"heavy modules imported: {res.stdout} {res.stderr[-2000:]}"


# ------------------------------------------------------------------------------------------- files
def _spec(path: Path, fmt: str, **extra: Any) -> dict[str, Any]:
    data = path.read_bytes()
    return {"path": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "format": fmt, **extra}


PHONEME_DICT = {
    "hello": [["HH", "AH0", "L", "OW1"]],
    "world": [["W", "ER1", "L", "D"]],
    "read": [["R", "EH1", "D"], ["R", "IY1", "D"]],
    "the": [["DH", "AH0"], ["DH", "IY0"]],
    "cat": [["K", "AE1", "T"]],
    "well": [["W", "EH1", "L"]],
    "known": [["N", "OW1", "N"]],
}


def arpabet_desc(tmp_path: Path, *, chars: bool = True, stresses: bool = True, ignore_ambiguous: bool = True,
                 pad_with_space: bool = True, heteronyms: list[str] | None = None) -> dict[str, Any]:
    """A description as lane.nemo.tokenizer.export_tokenizer writes it for EnglishPhonemesTokenizer."""
    (tmp_path / "g2p_dict.txt").write_bytes(write_g2p_dict(PHONEME_DICT))
    vowels = [f"{v}{s}" for v, s in itertools.product(VOWELS, (0, 1, 2))] if stresses else VOWELS
    tokens = [" ", *CONSONANTS, *vowels, *(string.ascii_lowercase if chars else ""), "'", *PUNCT, "<pad>", "<oov>"]
    het = None
    if heteronyms is not None:
        (tmp_path / "heteronyms.txt").write_bytes(write_heteronyms(heteronyms))
        het = _spec(tmp_path / "heteronyms.txt", "lane.lines/1", entries=len(heteronyms))
    return {
        "schema": "lane.tokenizer/1", "class": "EnglishPhonemesTokenizer", "type": "arpabet", "tokens": tokens,
        "pad_id": len(tokens) - 2, "oov_id": len(tokens) - 1, "blank_id": None, "space_id": 0, "punct": True,
        "punct_list": PUNCT, "stresses": stresses, "chars": chars, "pad_with_space": pad_with_space,
        "preprocessing": "english_text_preprocessing(lower=False)", "normalizer": NORMALIZER_ID,
        "g2p": {"class": "EnglishG2p", "word_tokenizer": "english_word_tokenize",
                "ignore_ambiguous_words": ignore_ambiguous, "apply_to_oov_word": None, "phoneme_probability": 1.0,
                "phoneme_probability_training": 0.5,
                "dictionary": _spec(tmp_path / "g2p_dict.txt", "lane.g2p_dict/1", entries=len(PHONEME_DICT)),
                "heteronyms": het},
        "runnable_without_nemo": True,
    }


def test_g2p_dict_format_round_trips_exactly() -> None:
    d = {"A": [["ˈ", "e", "ɪ"], ["ʌ"]], "B": [[]], "C": [], "x'y": [["K"]], "é": [["ɛ"]]}
    assert parse_g2p_dict(write_g2p_dict(d)) == d
    assert write_g2p_dict(d) == write_g2p_dict(dict(reversed(list(d.items()))))  # stable bytes
    assert parse_heteronyms(write_heteronyms(["read", "live", "read"])) == {"read", "live"}
    for bad in ({"a": [["x y"]]}, {"a": [[""]]}, {"a": [["x\t"]]}, {"a": ["xy"]}, {"a\tb": [["x"]]}):
        with pytest.raises(G2pUnsupported):
            write_g2p_dict(bad)


def test_arpabet_runtime_on_a_hand_written_description(tmp_path: Path) -> None:
    desc = arpabet_desc(tmp_path, heteronyms=["read"])
    tok = load_tokenizer(desc, tmp_path)
    assert isinstance(tok, ArpabetTokenizer)
    t = desc["tokens"]

    def ids(*symbols: str) -> list[int]:
        return [t.index(s) for s in symbols]

    assert tok.encode("Hello, world!") == ids(" ", "HH", "AH0", "L", "OW1", ",", " ", "W", "ER1", "L", "D", "!", " ")
    # heteronym -> graphemes; ambiguous "the" -> graphemes; plural of a dictionary word -> + Z
    assert tok.encode("read the cats") == ids(" ", "r", "e", "a", "d", " ", "t", "h", "e", " ", "K", "AE1", "T",
                                              "Z", " ")
    # possessive; hyphenated OOV re-parsed per part; digits are not tokens (dropped)
    assert tok.encode("cat's well-known 42") == ids(" ", "K", "AE1", "T", "Z", " ", "W", "EH1", "L", "-", "N",
                                                    "OW1", "N", " ")
    assert [w.how for w in tok.trace("read the cat's cats well-known zork")] == [
        "heteronym", "punctuation", "ambiguous", "punctuation", "possessive", "punctuation", "plural",
        "punctuation", "hyphenated", "punctuation", "oov"]
    d = tok.describe()
    assert d["type"] == "arpabet" and d["g2p"] == "EnglishG2p" and d["normalizer"] == NORMALIZER_ID
    assert d["dictionary"]["sha256"] == desc["g2p"]["dictionary"]["sha256"] and d["dictionary"]["entries"] == 7
    assert "spelled as graphemes" in d["oov_policy"]
    json.dumps(d)


def test_arpabet_without_letters_drops_oov_words_and_says_so(tmp_path: Path) -> None:
    tok = load_tokenizer(arpabet_desc(tmp_path, chars=False, stresses=False, pad_with_space=False), tmp_path)
    t = tok.tokens
    assert tok.encode("zork hello") == [t.index(s) for s in ("HH", "AH", "L", "OW")]
    assert "DROPPED" in tok.describe()["oov_policy"]


def test_ambiguous_words_take_the_first_pronunciation_when_not_ignored(tmp_path: Path) -> None:
    tok = load_tokenizer(arpabet_desc(tmp_path, ignore_ambiguous=False, pad_with_space=False), tmp_path)
    assert tok.encode("read") == [tok.tokens.index(s) for s in ("R", "EH1", "D")]
    assert "use the first" in tok.describe()["oov_policy"]


def test_char_runtime_follows_nemo_char_rules() -> None:
    """Without NeMo: lower-casing, accent stripping, synoglyphs, collapsed spaces, unknown characters
    dropped and the padding spaces (the rules of NeMo's BaseCharsTokenizer; test_text_export compares
    with NeMo itself)."""
    tokens = [" ", *string.ascii_lowercase, "'", *PUNCT, "<pad>", "<oov>"]
    desc = {"schema": "lane.tokenizer/1", "class": "EnglishCharsTokenizer", "type": "chars", "tokens": tokens,
            "pad_id": len(tokens) - 2, "oov_id": len(tokens) - 1, "blank_id": None, "space_id": 0, "punct": True,
            "punct_list": PUNCT, "pad_with_space": True, "preprocessing": "english_lower",
            "synoglyphs": {"\u2019": "'", "\u201d": '"', "\u201c": '"'}, "runnable_without_nemo": True}
    tok = load_tokenizer(desc, Path("."))
    assert isinstance(tok, CharTokenizer)

    def spell(ids: list[int]) -> str:
        return "".join(tokens[i] for i in ids)

    assert spell(tok.encode("Hello,  World!")) == " hello, world! "
    assert spell(tok.encode("it\u2019s \u201ccaf\u00e9\u201d 42")) == ' it\'s "cafe" '
    assert spell(tok.encode("a\tb")) == " ab "
    assert tok.encode("") == [0, 0]
    assert tok.describe()["type"] == "chars"


# ------------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("edit,message", [
    (lambda d: d.update(schema="other/1"), "schema"),
    (lambda d: d.update(runnable_without_nemo=False, unsupported=["custom G2P"]), "custom G2P"),
    (lambda d: d.update(type="phonemes"), "not one of"),
    (lambda d: d["g2p"].update(phoneme_probability=0.5), "phoneme_probability"),
    (lambda d: d["g2p"].update(phoneme_probability=0.999), "phoneme_probability"),
    (lambda d: d["g2p"].update(apply_to_oov_word="<function upper>"), "apply_to_oov_word"),
    (lambda d: d["g2p"].update(word_tokenizer="custom"), "word tokenizer"),
    (lambda d: d["g2p"].update({"class": "IpaG2p"}), "EnglishG2p"),
    (lambda d: d.update(preprocessing="custom"), "preprocessing"),
    (lambda d: d["g2p"]["dictionary"].update(sha256="0" * 64), "sha256"),
    (lambda d: d["g2p"]["dictionary"].update(path="../g2p_dict.txt"), "relative"),
    (lambda d: d["g2p"]["dictionary"].update(path="missing.txt"), "cannot read"),
    (lambda d: d["g2p"]["dictionary"].update(format="cmudict"), "lane.g2p_dict/1"),
])
def test_descriptions_the_runtime_cannot_replay_are_refused(tmp_path: Path, edit: Any, message: str) -> None:
    desc = arpabet_desc(tmp_path)
    edit(desc)
    with pytest.raises(TokenizerError, match=message):
        load_tokenizer(desc, tmp_path)


def test_ipa_locale_and_case_are_checked(tmp_path: Path) -> None:
    (tmp_path / "g2p_dict.txt").write_bytes(write_g2p_dict({"CAT": [["ˈ", "k", "æ", "t"]]}))
    tokens = [*sorted({"ˈ", "k", "æ", "t", "s", "C", "A", "T", "'", *PUNCT}), " ", "<pad>", "<oov>"]
    desc: dict[str, Any] = {
        "schema": "lane.tokenizer/1", "class": "IPATokenizer", "type": "ipa", "locale": "en-US", "tokens": tokens,
        "pad_id": len(tokens) - 2, "oov_id": len(tokens) - 1, "space_id": tokens.index(" "), "punct": True,
        "punct_list": sorted(PUNCT), "pad_with_space": False, "preprocessing": "english_text_preprocessing(lower=False)",
        "g2p": {"class": "IpaG2p", "locale": "en-US", "word_tokenizer": "english_word_tokenize",
                "ignore_ambiguous_words": False, "apply_to_oov_word": None, "grapheme_case": "upper",
                "grapheme_prefix": "", "phoneme_probability": None,
                "dictionary": _spec(tmp_path / "g2p_dict.txt", "lane.g2p_dict/1"), "heteronyms": None},
        "runnable_without_nemo": True,
    }
    tok = load_tokenizer(desc, tmp_path)
    assert isinstance(tok, IpaTokenizer)
    # IPA keeps a leading space (NeMo's IPATokenizer does), cats -> plural after T is "s"
    assert tok.encode(" cats, act") == [tokens.index(s) for s in
                                        (" ", "ˈ", "k", "æ", "t", "s", ",", " ", "A", "C", "T")]
    with pytest.raises(TokenizerError, match="nothing but spaces"):
        tok.encode("   ")
    for edit in (lambda d: d.update(locale="de-DE"), lambda d: d["g2p"].update(locale="fr-FR"),
                 lambda d: d["g2p"].update(grapheme_case="title")):
        bad = json.loads(json.dumps(desc))
        edit(bad)
        with pytest.raises(TokenizerError):
            load_tokenizer(bad, tmp_path)


def test_load_tokenizer_file_reads_the_files_next_to_it(tmp_path: Path) -> None:
    desc = arpabet_desc(tmp_path)
    (tmp_path / "tokenizer.json").write_text(json.dumps(desc), encoding="utf-8")
    assert load_tokenizer_file(tmp_path / "tokenizer.json").encode("hello") == load_tokenizer(desc, tmp_path).encode("hello")
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match="cannot read"):
        load_tokenizer_file(tmp_path / "broken.json")
