"""ZipVoice's `espeak` tokenizer: espeak-ng IPA of any espeak language, clause punctuation kept,
no normalization (espeak reads digits itself, in that language)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import TextError
from voxpipe.plugins.tokenizers.espeak_backends import (
    BACKEND_HELP,
    EspeakBackendName,
    make_voice_backend,
)
from voxpipe.plugins.tokenizers.vocabulary import (
    Dropped,
    Tokenization,
    VocabularyTokenizer,
)


class EspeakParams(Params):
    tokens: str = Field(description="the model's tokens.txt (path or hf:// location)")
    language: str = Field("en-us", description="espeak-ng voice, e.g. en-us, fr-fr, de, cmn (espeak-ng --voices)")
    strict: bool = Field(False, description="raise TextError instead of warning when symbols cannot be encoded")
    backend: EspeakBackendName = Field("auto", description=BACKEND_HELP)


class EspeakTokenizer(VocabularyTokenizer):
    """espeak-ng phonemes of one language, looked up in tokens.txt."""

    name: ClassVar[str] = "espeak"
    description: ClassVar[str] = "espeak-ng IPA phonemes of any espeak language (ZipVoice's espeak tokenizer)"
    Params: ClassVar[type[Params]] = EspeakParams

    def __init__(self, tokens: str, language: str, strict: bool, backend: str) -> None:
        super().__init__(tokens, strict)
        self.language = language
        self.backend = make_voice_backend(backend, language)

    def describe(self) -> dict:
        return {**super().describe(), "language": self.language, "espeak_backend": self.backend.name}

    def analyze(self, text: str) -> Tokenization:
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        result = Tokenization()
        span = (0, len(text))
        try:
            sentences = self.backend.phonemize(text, self.language)
        except TextError as error:  # officially logged and the text dropped; here reported
            result.skipped.append(Dropped(text, *span, str(error)))
            return result
        result.add([phoneme for sentence in sentences for phoneme in sentence], span)
        return result
