"""ZipVoice's `simple` tokenizer: every character is a token, no normalization."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import TextError
from voxpipe.plugins.tokenizers.vocabulary import Tokenization, VocabularyTokenizer


class SimpleParams(Params):
    tokens: str = Field(description="the model's tokens.txt (path or hf:// location)")
    strict: bool = Field(False, description="raise TextError instead of warning when characters cannot be encoded")


class SimpleTokenizer(VocabularyTokenizer):
    """One token per character; the vocabulary comes from tokens.txt."""

    name: ClassVar[str] = "simple"
    description: ClassVar[str] = "one token per character, vocabulary from tokens.txt (ZipVoice's simple tokenizer)"
    Params: ClassVar[type[Params]] = SimpleParams

    def analyze(self, text: str) -> Tokenization:
        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        result = Tokenization()
        for index, char in enumerate(text):
            result.add([char], (index, index + 1))
        return result
