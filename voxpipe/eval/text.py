"""Text side of intelligibility: Whisper's English normalizer and word/character edit counts.

WER = (substitutions + deletions + insertions) / reference words, after both texts went through
`whisper_normalizer`'s `EnglishTextNormalizer` (the normalizer OpenAI published with Whisper:
lower case, punctuation dropped, spelled numbers -> digits, "Mr." -> "mister", British ->
American spelling), so "Tickets cost $35" and "tickets cost thirty-five dollars" agree. CER is
the same on characters of the normalized texts (spaces count as characters). The alignment is
jiwer's (Levenshtein). A corpus-level rate is the sum of errors over the sum of reference
lengths, not the mean of per-item rates (long sentences weigh more, as in every ASR benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from voxpipe.core.errors import ConfigError
from voxpipe.eval import EXTRA_HINT


@dataclass(frozen=True)
class EditCounts:
    """Alignment of a hypothesis against a reference (words or characters)."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / reference length; can exceed 1 when the hypothesis has extra words."""
        return self.errors / self.reference_length


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(f"WER/CER need the package {package!r}: {EXTRA_HINT}") from None


@lru_cache(maxsize=1)
def _english_normalizer():
    english = _require("whisper_normalizer.english", "whisper-normalizer")
    return english.EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Whisper's English normalization, with runs of spaces collapsed."""
    return " ".join(_english_normalizer()(text).split())


def word_edits(reference: str, hypothesis: str) -> EditCounts:
    """Word-level edit counts of two already-normalized texts. An empty reference is an error
    (a rate over zero words means nothing); an empty hypothesis is all deletions."""
    words = reference.split()
    if not words:
        raise ValueError("the reference text is empty after normalization")
    if not hypothesis.split():
        return EditCounts(0, len(words), 0, len(words))
    jiwer = _require("jiwer", "jiwer")
    out = jiwer.process_words(reference, hypothesis)
    return EditCounts(out.substitutions, out.deletions, out.insertions, out.hits + out.substitutions + out.deletions)


def char_edits(reference: str, hypothesis: str) -> EditCounts:
    """Character-level edit counts of two already-normalized texts (spaces included)."""
    if not reference:
        raise ValueError("the reference text is empty after normalization")
    if not hypothesis:
        return EditCounts(0, len(reference), 0, len(reference))
    jiwer = _require("jiwer", "jiwer")
    out = jiwer.process_characters(reference, hypothesis)
    return EditCounts(out.substitutions, out.deletions, out.insertions, out.hits + out.substitutions + out.deletions)
