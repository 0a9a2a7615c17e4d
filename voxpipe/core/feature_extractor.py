"""Feature extractor interface: waveform -> acoustic features (e.g. log-mel)."""

from __future__ import annotations

import torch

from voxpipe.core.component import Component


class FeatureExtractor(Component):
    """Computes frame-level features from a waveform.

    Attributes: `sample_rate` (Hz, of the input waveform), `hop_length` (samples per frame),
    `feature_dim` (F, all channels), `num_channels` (audio channels; multi-channel features are
    the channels' features side by side, channel 0 first).
    """

    kind = "features"
    sample_rate: int
    hop_length: int
    feature_dim: int
    num_channels: int = 1

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        """wave (N,) or (B, N) float at `sample_rate` -> features (T, F) or (B, T, F), time-major."""
        raise NotImplementedError

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of `num_samples` samples."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"sample_rate": self.sample_rate, "hop_length": self.hop_length, "feature_dim": self.feature_dim}
