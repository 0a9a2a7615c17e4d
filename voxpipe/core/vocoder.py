"""Vocoder interface: features -> waveform."""

from __future__ import annotations

import torch

from voxpipe.core.component import Component


class Vocoder(Component):
    """Attributes:

    sample_rate:          Hz of the waveform it emits.
    feature_sample_rate:  Hz of the frame grid it expects (the feature extractor's rate).
    hop_length:           samples per input frame at `feature_sample_rate`.
    feature_dim:          input channels (mel bins).
    """

    kind = "vocoder"
    sample_rate: int
    feature_sample_rate: int
    hop_length: int
    feature_dim: int

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, F, T) (unscaled extractor output, channel-major) -> waveform (B, N)."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "feature_sample_rate": self.feature_sample_rate,
            "hop_length": self.hop_length,
            "feature_dim": self.feature_dim,
        }
