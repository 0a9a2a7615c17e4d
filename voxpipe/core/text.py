"""Text-side interfaces: normalization (numbers, dates, ...) and chunking of long text."""

from __future__ import annotations

from dataclasses import dataclass

from voxpipe.core.component import Component


class TextNormalizer(Component):
    kind = "normalizer"

    def normalize(self, text: str) -> str:
        """Spell out what a tokenizer cannot read (numbers, currency, dates, abbreviations)."""
        raise NotImplementedError


@dataclass(frozen=True)
class TextSpan:
    """A chunk of text and where it stands in the input: text == source[start:end] (stripped)."""

    text: str
    start: int
    end: int


class TextChunker(Component):
    kind = "chunker"

    def split(self, text: str, budget: int, measure=len) -> list[TextSpan]:
        """Split into chunks whose `measure(chunk)` stays under `budget` where possible, at
        sentence then clause punctuation, never inside a word. Deterministic."""
        raise NotImplementedError
