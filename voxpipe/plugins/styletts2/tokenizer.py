"""StyleTTS2's text front-end: espeak-ng IPA with stress and punctuation, split into words and
punctuation as the official inference does (`phonemize` -> nltk `word_tokenize` -> ' '.join),
then read character by character through the official symbol table (text_utils.TextCleaner).

Difference from the official: word_tokenize is approximated by spacing out the table's
punctuation marks (it also rewrites quotes as `` and '', whose characters are symbols
too); the phonemes come from voxpipe's espeak-ng backends (see espeak_backends.py) instead of
the `phonemizer` package.
"""

from __future__ import annotations

import re
import warnings
from typing import ClassVar

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import TextError
from voxpipe.core.tokenizer import Tokenizer
from voxpipe.plugins.styletts2.styletts2_config import styletts2_vocab
from voxpipe.plugins.tokenizers.espeak_backends import (
    BACKEND_HELP,
    EspeakBackendName,
    make_voice_backend,
)

_PUNCTUATION = re.compile(r'\s*([;:,.!?¡¿—…"«»“”])\s*')


def space_punctuation(ipa: str) -> str:
    """'ðɪs ɪz, ə tˈɛst.' -> 'ðɪs ɪz , ə tˈɛst .' (punctuation as words of its own)."""
    return re.sub(r"\s+", " ", _PUNCTUATION.sub(r" \1 ", ipa)).strip()


class StyleTTS2Tokenizer(Tokenizer):
    """espeak-ng IPA (stress marks, punctuation kept) -> StyleTTS2 symbol ids."""

    name: ClassVar[str] = "styletts2"
    description: ClassVar[str] = "espeak-ng IPA read through StyleTTS2's official symbol table"

    class Params(Params):
        language: str = Field("en-us", description="espeak-ng voice (the LibriTTS model was trained on en-us)")
        backend: EspeakBackendName = Field("auto", description=BACKEND_HELP)

    def __init__(self, language: str, backend: str) -> None:
        self.vocab = styletts2_vocab()
        self.pad_id = 0
        self.language = language
        self.backend = make_voice_backend(backend, language)

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        sentences = self.backend.phonemize(text, self.language)
        return list(space_punctuation(" ".join("".join(sentence) for sentence in sentences)))

    def encode(self, text: str) -> list[int]:
        tokens = self.tokenize(text)
        unknown = sorted({t for t in tokens if t not in self.vocab})
        if unknown:  # the official TextCleaner skips them too (printing the text)
            warnings.warn(f"symbols not in StyleTTS2's table dropped: {', '.join(map(repr, unknown))}", stacklevel=2)
        return [self.vocab[t] for t in tokens if t in self.vocab]

    def describe(self) -> dict:
        return {"vocab_size": len(self.vocab), "language": self.language, "espeak_backend": self.backend.name}
