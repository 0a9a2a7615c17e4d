"""The `auto` (by script) and `none` normalizers."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.text import TextNormalizer
from voxpipe.plugins.text.chinese import ChineseNormalizer
from voxpipe.plugins.text.english import EnglishNormalizer
from voxpipe.plugins.text.scripts import script_runs


class AutoParams(Params):
    fallback: Literal["english", "chinese"] = Field(
        "english", description="normalizer for text with no letters at all (e.g. '3.5')"
    )


class AutoNormalizer(TextNormalizer):
    """Chinese runs through `chinese`, other runs through `english`; digits and punctuation go
    with the run they follow."""

    name: ClassVar[str] = "auto"
    description: ClassVar[str] = "per script run: Chinese text -> chinese normalizer, other text -> english"
    Params: ClassVar[type[Params]] = AutoParams

    def __init__(self, fallback: str) -> None:
        self.fallback = fallback
        self._english = EnglishNormalizer()
        self._chinese = ChineseNormalizer()

    def normalize(self, text: str) -> str:
        pieces = []
        for run, script in script_runs(text):
            if script is None:
                script = "zh" if self.fallback == "chinese" else "latin"
            pieces.append((self._chinese if script == "zh" else self._english).normalize(run))
        return "".join(pieces)


class NoNormalizer(TextNormalizer):
    """Text passes unchanged (the tokenizer reads it as given)."""

    name: ClassVar[str] = "none"
    description: ClassVar[str] = "no normalization: text passes unchanged"
    Params: ClassVar[type[Params]] = Params

    def normalize(self, text: str) -> str:
        return text
