"""The three component kinds `voxpipe eval` measures speech with.

Each is an ordinary registered component (a `Component` with `kind`, `name` and a pydantic
`Params`), so a third-party plugin adds, e.g., a UTMOS `QualityPredictor` or a WavLM
`SpeakerEncoder` through the same `register_components(register)` hook the built-ins use
(`voxpipe/plugins/evaluation/`). Implementations load their models lazily (on the first call,
not in `__init__`) and resample the input themselves: callers hand over `Audio` at any rate.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from voxpipe.core.audio import Audio
from voxpipe.core.component import Component


class SpeechRecognizer(Component):
    """Speech -> text, for intelligibility (WER/CER against the text that was synthesized)."""

    kind = "recognizer"

    def recognize(self, audio: Audio) -> str:
        """Audio (any rate, mono or (C, N)) -> the words heard, unnormalized."""
        raise NotImplementedError


class SpeakerEncoder(Component):
    """Speech -> speaker embedding, for speaker similarity (cosine of two embeddings)."""

    kind = "speaker_encoder"

    def embed(self, audio: Audio) -> torch.Tensor:
        """Audio (any rate) -> (D,) float32 embedding; similarity is the cosine of two of them."""
        raise NotImplementedError


class QualityPredictor(Component):
    """Speech -> predicted quality scores (a MOS-like number per named dimension)."""

    kind = "quality"
    metrics: ClassVar[tuple[str, ...]] = ()
    """The keys `score` returns, always the same ones (they become JSON keys and table columns)."""

    def score(self, audio: Audio) -> dict[str, float]:
        """Audio (any rate) -> {metric: value} with exactly the keys of `metrics`."""
        raise NotImplementedError


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine of two (D,) embeddings, in [-1, 1]."""
    a, b = a.flatten().to(torch.float64), b.flatten().to(torch.float64)
    if a.shape != b.shape:
        raise ValueError(f"embeddings differ in size: {tuple(a.shape)} vs {tuple(b.shape)}")
    return float(torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12))
