"""Test data for the tokenizer replay: CMUdict-derived dictionaries (from the pocketsphinx wheel) in the
formats NeMo's G2P loaders read, a heteronym list, and reproducible varied sentences. No NeMo here."""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from num2words import num2words

ARPABET_VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}
ARPA2IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ", "ER": "ɝ", "EY": "eɪ",
    "IH": "ɪ", "IY": "i", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ", "UW": "u", "B": "b", "CH": "tʃ", "D": "d",
    "DH": "ð", "F": "f", "G": "ɡ", "HH": "h", "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ",
    "P": "p", "R": "ɹ", "S": "s", "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z",
    "ZH": "ʒ",
}
HETERONYMS = ["read", "live", "lead", "wind", "record", "tear", "bass", "close", "wound", "object", "present",
              "minute", "desert", "content", "does", "row", "bow", "produce", "refuse", "project", "permit",
              "conduct", "subject", "use", "house", "polish", "dove", "separate", "estimate", "invalid"]


def pocketsphinx_cmudict() -> Path:
    import pocketsphinx

    return Path(pocketsphinx.__file__).parent / "model" / "en-us" / "cmudict-en-us.dict"


def read_pocketsphinx(path: Path) -> list[tuple[str, list[str]]]:
    """[(word with its '(2)' suffix, phones)] in file order; the wheel's format is 'word(2) PH PH' (one
    space, lowercase words, no stress digits)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            out.append((parts[0], parts[1:]))
    return out


def add_stress(phones: list[str]) -> list[str]:
    """Deterministic made-up lexical stress (1 on the first vowel, 2 on every third, else 0), so the
    stressed ARPABET/IPA token paths are exercised; the pronunciations are test data, not English."""
    out, k = [], 0
    for p in phones:
        if p in ARPABET_VOWELS:
            out.append(p + ("1" if k == 0 else "2" if k % 3 == 2 else "0"))
            k += 1
        else:
            out.append(p)
    return out


def to_ipa(phones: list[str]) -> str:
    out = []
    for p in phones:
        base, stress = (p[:-1], p[-1]) if p[-1].isdigit() else (p, "")
        sym = {"AH0": "ə", "ER0": "ɚ"}.get(p, ARPA2IPA[base])
        out.append({"1": "ˈ", "2": "ˌ"}.get(stress, "") + sym)
    return "".join(out)


def write_cmu_arpabet(entries: list[tuple[str, list[str]]], path: Path, *, stress: bool = True) -> Path:
    """NeMo EnglishG2p's format: 'WORD(2)  PH1 PH2' (uppercase word, TWO spaces), latin-1."""
    lines = [";;; CMUdict from the pocketsphinx wheel (BSD-2-Clause), converted for NeMo's EnglishG2p"]
    for word, phones in entries:
        lines.append(f"{word.upper()}  {' '.join(add_stress(phones) if stress else phones)}")
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path


def write_cmu_ipa(entries: list[tuple[str, list[str]]], path: Path, *, upper: bool = True) -> Path:
    """NeMo IpaG2p's format (ipa_cmudict): 'WORD(2)  ˈɪpə', UTF-8, stress marks before the vowel."""
    lines = [";;; IPA derived from the pocketsphinx wheel's CMUdict (BSD-2-Clause) for NeMo's IpaG2p"]
    for word, phones in entries:
        lines.append(f"{word.upper() if upper else word}  {to_ipa(add_stress(phones))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_heteronyms(path: Path, words: list[str] = HETERONYMS) -> Path:
    path.write_text("\n".join(words) + "\n", encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------- sentences
_PUNCT = [",", ".", "!", "?", ";", ":", " -", " —", " –", "…", "...", "?!"]
_WRAP = [('"', '"'), ("“", "”"), ("(", ")"), ("[", "]"), ("{", "}"), ("'", "'"), ("‘", "’")]
_ODD = ["&", "%", "*", "+", "=", "@", "#", "_", "~", "/", "\\", "<", ">", "^", "$", "£", "€", "°", "|", "||",
        "| |", "\t", "  ", "\n", "¿", "¡", "«", "»", "•", "·"]
_ACCENTED = ["café", "naïve", "résumé", "Zoë", "Ångström", "façade", "jalapeño", "coöperate", "Øresund",
             "straße", "Æsir", "smørrebrød", "Dvořák", "Łódź", "ﬁnance"]
_FOREIGN = ["Привет", "你好", "नमस्ते", "안녕", "こんにちは", "😀", "Ελλάδα", "مرحبا", "ⅷ", "²", "½"]
_FIXED = ["don't", "can't", "won't", "'tis", "o'clock", "rock'n'roll", "ma'am", "y'all", "'em", "'cause",
          "well-known", "state-of-the-art", "mother-in-law", "e-mail", "x-ray", "re-read", "co-op", "T-shirt",
          "NVIDIA", "NeMo", "ONNX", "GPUs", "iPhone", "McDonald's", "O'Neill", "James's", "boss's", "cats'",
          "students'", "it's", "its", "they're", "I'm", "we'd", "you'll", "he'd've", "a--b", "-dash", "dash-",
          "'quoted'", "s", "'s", "a", "the", "A", "I", "ok", "U.S.A.", "e.g.", "Mr.", "p.m."]
_EDGE = ["", " ", "   ", ".", "...", "'", "-", "--", "|", "||", "| |", "|HH AH0 L OW1|", "a", "s", "'s",
         "?!", "\t\n", " a ", "42", " 42 ", "—", "read", "READ", "The", "|x| |y|", "a|b|c", "'''", "-'-",
         "  leading and trailing  ", "x y", "A-", "-A"]


class SentenceMaker:
    """Reproducible varied English-ish sentences over a given dictionary."""

    def __init__(self, dict_words: list[str], ambiguous: list[str], seed: int = 20261122) -> None:
        self.rng = random.Random(seed)
        self.words = [w for w in dict_words if re.fullmatch(r"[a-z]+", w)]
        self.apos_words = [w for w in dict_words if "'" in w and re.fullmatch(r"[a-z']+", w)]
        self.ambiguous = [w for w in ambiguous if re.fullmatch(r"[a-z]+", w)]
        self.dict_set = set(dict_words)

    def oov(self) -> str:
        r = self.rng
        while True:
            if r.random() < 0.5:
                w = "".join(r.choice("bcdfghjklmnprstvwz") + r.choice("aeiouy") for _ in range(r.randint(1, 4)))
                if r.random() < 0.3:
                    w += r.choice("ntkx")
            else:
                base = list(r.choice(self.words))
                i = r.randrange(len(base))
                base[i] = r.choice("qxzjkv")
                w = "".join(base)
            if w not in self.dict_set:
                return w

    def word(self) -> str:
        r = self.rng
        k = r.random()
        if k < 0.40:
            w = r.choice(self.words)
        elif k < 0.48:
            w = r.choice(HETERONYMS)
        elif k < 0.53:
            w = r.choice(self.ambiguous)
        elif k < 0.62:
            w = self.oov()
        elif k < 0.68:
            w = r.choice(self.words) + r.choice(["'s", "s", "'", "es", "s'", "'S"])
        elif k < 0.74:
            w = "-".join(r.choice([r.choice(self.words), self.oov(), r.choice(HETERONYMS)])
                         for _ in range(r.randint(2, 3)))
        elif k < 0.79:
            w = r.choice(_FIXED)
        elif k < 0.82 and self.apos_words:
            w = r.choice(self.apos_words)
        elif k < 0.87:
            n = r.choice([r.randint(0, 20), r.randint(21, 999), r.randint(1000, 10**7)])
            w = num2words(n, to=r.choice(["cardinal", "cardinal", "ordinal", "year"]))
        elif k < 0.91:
            w = r.choice([str(r.randint(0, 3000)), f"{r.randint(0, 99)}.{r.randint(0, 99)}", f"{r.randint(1, 31)}th",
                          f"{r.randint(1, 9)},{r.randint(100, 999)}", f"${r.randint(1, 99)}"])
        elif k < 0.94:
            w = r.choice(_ACCENTED)
        elif k < 0.96:
            w = r.choice(_FOREIGN)
        else:
            w = r.choice(_ODD)
        c = r.random()
        if c < 0.12:
            w = w.capitalize()
        elif c < 0.18:
            w = w.upper()
        elif c < 0.20:
            w = "".join(ch.upper() if r.random() < 0.5 else ch for ch in w)
        return w

    def sentence(self) -> str:
        r = self.rng
        if r.random() < 0.02:
            return r.choice(_EDGE)
        parts = []
        for i in range(r.randint(1, 14)):
            w = self.word()
            if i == 0 and r.random() < 0.7:
                w = w[:1].upper() + w[1:]
            if r.random() < 0.06:
                a, b = r.choice(_WRAP)
                w = a + w + b
            parts.append(w)
            if r.random() < 0.15:
                parts[-1] += r.choice(_PUNCT)
        sep = " " if r.random() < 0.9 else r.choice(["  ", " \t", "\u00a0", "", "-"])
        s = sep.join(parts)
        if r.random() < 0.8:
            s += r.choice([".", ".", "!", "?", "...", "…", "?!", ".\"", "”", ""])
        if r.random() < 0.05:
            s = r.choice([" ", "  ", "\t", "\n"]) + s + r.choice([" ", "", "\n"])
        if r.random() < 0.02:
            s = s + " |" + " ".join(r.choice(["HH", "AH0", "L", "OW1", "ˈa", "b"]) for _ in range(3)) + "|"
        return s

    def sentences(self, n: int) -> list[str]:
        return [self.sentence() for _ in range(n)]


_WRITTEN = ["$5", "$1.50", "£0.99", "€2,500", "$1.5 million", "12.5%", "-3", "10-20", "7:30", "7:05 pm",
            "7 p.m.", "12/03/2024", "2024-03-12", "March 3, 2024", "3 March", "1984", "2024", "1980s",
            "21st", "3rd", "1,000,000", "007", "3.14", "Dr.", "Mr.", "Mrs.", "St.", "etc.", "vs.", "e.g.",
            "No. 5", "&", "20°C", "#1", "a+b", "x=y", "me@home"]


def written_sentence(maker: SentenceMaker) -> str:
    """A sentence with written forms (numbers, money, dates, times, abbreviations) for the normaliser."""
    r = maker.rng
    parts = []
    for _ in range(r.randint(2, 12)):
        parts.append(r.choice(_WRITTEN) if r.random() < 0.35 else maker.word())
    return " ".join(parts) + r.choice([".", "!", "?", ""])


# ------------------------------------------------------------------------------------------- setups
@dataclass
class Dicts:
    entries: list[tuple[str, list[str]]]
    arpabet: Path          # NeMo EnglishG2p format, full CMUdict, made-up stresses
    ipa: Path              # NeMo IpaG2p format, full CMUdict in IPA, uppercase words
    small_entries: list[tuple[str, list[str]]]
    small_arpabet: Path    # ~15k words (+ heteronyms, ambiguous words) for the option variants
    small_ipa: Path
    small_ipa_lower: Path  # lowercase words, for grapheme_case="mixed"/"lower"
    heteronyms: Path

    def maker(self, small: bool = False, seed: int = 20261122) -> SentenceMaker:
        counts = Counter(w.split("(")[0] for w, _ in (self.small_entries if small else self.entries))
        return SentenceMaker(sorted(counts), sorted(w for w, c in counts.items() if c > 1), seed=seed)


@dataclass
class Nemo:
    EnglishPhonemesTokenizer: Any
    IPATokenizer: Any
    EnglishCharsTokenizer: Any
    EnglishG2p: Any
    IpaG2p: Any
    downloads: list[tuple[Any, ...]]


@dataclass
class Setup:
    name: str
    nemo_tok: Any
    replay: Any
    desc: dict[str, Any]
    dir: Path


def make_setup(name: str, nemo_tok: Any, out: Path) -> Setup:
    from lane.nemo.tokenizer import export_tokenizer
    from lane.text.tokenizers import load_tokenizer

    desc = export_tokenizer(nemo_tok, out)
    assert desc["runnable_without_nemo"], desc.get("unsupported")
    return Setup(name, nemo_tok, load_tokenizer(desc, out), desc, out)


