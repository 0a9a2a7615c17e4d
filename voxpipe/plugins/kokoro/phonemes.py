"""espeak-ng IPA -> the phoneme symbols Kokoro was trained on.

Kokoro-82M's English voices were trained on misaki's symbol set, in which a diphthong or
affricate is one symbol (A = eɪ, I = aɪ, O = oʊ, W = aʊ, Y = ɔɪ, Q = əʊ, ʤ, ʧ), the American
flap is T and r-coloured vowels are spelled out (ɚ -> əɹ, ɜː -> ɜɹ). misaki itself falls back to
espeak-ng for words missing from its lexicon and converts espeak's IPA with a fixed table; that
table (misaki/espeak.py, `EspeakFallback`) is what `to_misaki` applies, so the model sees the
symbols it knows. `to_espeak` is kokoro-onnx's lighter conversion (raw espeak IPA with a few
substitutions), kept for comparison: it is slightly less intelligible (docs/kokoro.md).

Difference from misaki: espeak here gives no tie marks, so a pair such as "tʃ" is taken as one
affricate wherever it appears, and a syllabic l ("ə^l" -> "ᵊl" in misaki) stays "əl".
"""

from __future__ import annotations

import re
import unicodedata

PHONEME_SETS = ("misaki", "espeak")
ESPEAK_VOICES = {"en-us": "en-us", "en-gb": "en"}
"""Language -> espeak-ng voice name (espeak-ng's British English voice file is "en")."""

# misaki's EspeakFallback table, with its tie marks dropped (longest match first).
_MISAKI_COMMON = sorted(
    {
        "ʔˌn\u0329": "tn", "ʔn\u0329": "tn", "ʔn": "tn", "ʔ": "t",
        "aɪ": "I", "aʊ": "W",
        "dʒ": "ʤ", "tʃ": "ʧ",
        "eɪ": "A", "e": "A",
        "ɔɪ": "Y",
        "ʲo": "jo", "ʲə": "jə", "ʲ": "",
        "ɚ": "əɹ",
        "r": "ɹ",
        "x": "k", "c\u0327": "k",  # ç, decomposed
        "ɐ": "ə",
        "ɬ": "l",
        "\u0303": "",  # nasalisation
    }.items(),
    key=lambda pair: -len(pair[0]),
)
_MISAKI_US = (("oʊ", "O"), ("ɜːɹ", "ɜɹ"), ("ɜː", "ɜɹ"), ("ɪə", "iə"), ("ː", ""))
_MISAKI_GB = (("eə", "ɛː"), ("iə", "ɪə"), ("əʊ", "Q"))
_SYLLABIC = re.compile("(\\S)\u0329")  # espeak's syllabic consonant n̩ -> misaki's ᵊn


def _replace_all(text: str, pairs) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def to_misaki(ipa: str, language: str = "en-us") -> str:
    """espeak-ng IPA (NFD) -> misaki symbols, as misaki's espeak fallback converts it."""
    text = unicodedata.normalize("NFD", ipa)
    if language == "en-gb":
        # misaki maps e -> A before it looks for British "eə"; do it first so "eə" can match.
        text = _replace_all(text, _MISAKI_GB)
    text = _replace_all(text, _MISAKI_COMMON)
    text = _SYLLABIC.sub("ᵊ\\1", text).replace("\u0329", "")
    if language == "en-us":
        text = _replace_all(text, _MISAKI_US)
    text = text.replace("o", "ɔ")  # espeak < 1.52 writes ɔ as o
    if language == "en-us":
        text = text.replace("ɾ", "T")  # the official pipeline's American flap
    return text


def to_espeak(ipa: str, language: str = "en-us") -> str:
    """espeak-ng IPA (NFD) with kokoro-onnx's substitutions (symbols the vocabulary lacks)."""
    text = unicodedata.normalize("NFD", ipa).replace("ʲ", "j").replace("r", "ɹ").replace("x", "k").replace("ɬ", "l")
    text = re.sub("(?<=[a-zɹː])(?=hˈʌndɹɪd)", " ", text)  # "onehundred" -> "one hundred"
    text = re.sub(' z(?=[;:,.!?¡¿—…"«»“” ]|$)', "z", text)  # a detached plural "z"
    if language == "en-us":
        text = re.sub("(?<=nˈaɪn)ti(?!ː)", "di", text)  # ninety
    return text


CONVERTERS = {"misaki": to_misaki, "espeak": to_espeak}


def join_sentences(sentences: list[list[str]]) -> str:
    """espeak backend output (code points per sentence, NFD) -> one string, sentences spaced."""
    return " ".join("".join(sentence).strip() for sentence in sentences if sentence).strip()


def vocabulary_symbols(phonemes: str, vocab: dict[str, int]) -> list[str]:
    """Phoneme string -> the symbols to look up: a character and the combining marks after it
    become one precomposed symbol where the vocabulary has that (ç), else stay separate (ẽ is
    e + U+0303, both in the vocabulary)."""
    symbols: list[str] = []
    for char in unicodedata.normalize("NFC", phonemes):
        if char in vocab:
            symbols.append(char)
        else:
            symbols.extend(unicodedata.normalize("NFD", char))
    return symbols
