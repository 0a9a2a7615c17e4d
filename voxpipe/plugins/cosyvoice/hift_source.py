"""HiFT's excitation: the F0 predictor and the neural-source-filter (NSF) harmonic source.

`ConvRNNF0Predictor`: five weight-normalized 3-tap convolutions with ELU, a linear layer, |.|:
mel (B, 80, T) -> F0 (B, T) in Hz, one value per mel frame.

`HarmonicSource` (the official `SourceModuleHnNSF` with `SineGen2`, the 24 kHz variant, or
`SineGen`, the 22.05 kHz CosyVoice 1 variant): F0 upsampled to samples -> sines at F0 and its
harmonics with a random initial phase per harmonic, Gaussian noise (std `noise_std` where voiced,
`sine_amp / 3` where not), mixed by a linear layer and tanh -> (B, N, 1).

Randomness comes from a `torch.Generator` in exactly the official order of draws on the global
generator (so a generator seeded s equals the official code after `torch.manual_seed(s)`):
SineGen2: rand(B, H+1) initial phases, randn(B, N, H+1) noise, then randn(B, N, 1) (the source
module's noise output, unused by HiFT but drawn); SineGen: rand(B, H+1, 1) phases in [-pi, pi),
randn(B, H+1, N), randn(B, N, 1).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def _randn_like(tensor: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """torch.randn_like with a generator. Same strides as `tensor`: the CPU normal sampler fills
    non-contiguous tensors element by element and contiguous ones in vectorized blocks, which
    gives different numbers, so the official layout is kept."""
    return torch.empty_like(tensor).normal_(generator=generator)


class ConvRNNF0Predictor(nn.Module):
    """mel (B, C, T) -> F0 (B, T) >= 0 (Hz)."""

    def __init__(self, in_channels: int, cond_channels: int, num_class: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for index in range(5):
            layers += [nn.Conv1d(in_channels if index == 0 else cond_channels, cond_channels, 3, padding=1), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cond_channels, num_class)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        hidden = self.condnet(mel).transpose(1, 2)
        return torch.abs(self.classifier(hidden).squeeze(-1))


class HarmonicSourceBase(nn.Module):
    """The NSF source's hyper-parameters, its merge layer and the sine-and-noise arithmetic shared by
    the random source (`HarmonicSource`) and CosyVoice3's fixed-table one (hift_causal_source)."""

    def __init__(self, sampling_rate: int, upsample_scale: int, harmonics: int, sine_amp: float,
                 noise_std: float, voiced_threshold: float) -> None:
        super().__init__()
        self.sampling_rate = sampling_rate
        self.upsample_scale = upsample_scale
        self.harmonics = harmonics
        self.sine_amp = sine_amp
        self.noise_std = noise_std
        self.voiced_threshold = voiced_threshold
        self.l_linear = nn.Linear(harmonics + 1, 1)

    def frame_rate_phase(self, f0: torch.Tensor, initial: torch.Tensor, upsample_mode: str) -> torch.Tensor:
        """SineGen2's phase: f0 (B, N, 1) Hz, initial (B or 1, H+1) cycles added to the first
        sample -> phase (B, N, H+1) radians of the fundamental and its harmonics, integrated at
        frame rate (N / upsample_scale) and brought back to samples by `upsample_mode` ("linear":
        SineGen2, "nearest": its causal variant, which holds each frame's value)."""
        multiples = torch.arange(1, self.harmonics + 2, dtype=torch.float32, device=f0.device).view(1, 1, -1)
        rad = (f0 * multiples / self.sampling_rate) % 1
        rad[:, 0, :] = rad[:, 0, :] + initial
        rad = F.interpolate(rad.transpose(1, 2), scale_factor=1 / self.upsample_scale, mode="linear").transpose(1, 2)
        phase = torch.cumsum(rad, dim=1) * 2 * np.pi
        return F.interpolate(phase.transpose(1, 2) * self.upsample_scale, scale_factor=self.upsample_scale,
                             mode=upsample_mode).transpose(1, 2)

    def voiced_with_noise(self, waves: torch.Tensor, f0: torch.Tensor, unit_noise: torch.Tensor) -> torch.Tensor:
        """waves (amplitude sine_amp) kept where f0 > voiced_threshold, plus unit_noise scaled to
        noise_std where voiced and sine_amp / 3 where not; f0 broadcasts against waves (one value
        per sample, Hz), unit_noise has waves' shape."""
        voiced = (f0 > self.voiced_threshold).float()
        noise_amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
        return waves * voiced + noise_amp * unit_noise


class HarmonicSource(HarmonicSourceBase):
    """F0 per sample (B, N, 1) -> merged harmonic source (B, N, 1)."""

    @property
    def per_sample_phase(self) -> bool:
        """CosyVoice picks the sine generator by rate: the 22.05 kHz models use the per-sample one."""
        return self.sampling_rate == 22050

    def sines(self, f0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, N, 1) Hz -> (B, N, H+1) sines (amplitude sine_amp) plus noise."""
        if self.per_sample_phase:
            return self._sines_per_sample(f0, generator)
        initial = torch.rand(f0.shape[0], self.harmonics + 1, generator=generator, device=f0.device)
        initial[:, 0] = 0
        waves = torch.sin(self.frame_rate_phase(f0, initial, "linear")) * self.sine_amp
        return self.voiced_with_noise(waves, f0, _randn_like(waves, generator))

    def _sines_per_sample(self, f0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        f0 = f0.transpose(1, 2)  # (B, 1, N)
        multiples = torch.arange(1, self.harmonics + 2, dtype=torch.float32, device=f0.device).view(1, -1, 1)
        cycles = f0 * multiples / self.sampling_rate
        theta = 2 * np.pi * (torch.cumsum(cycles, dim=-1) % 1)
        low, high = torch.tensor(-math.pi), torch.tensor(math.pi)
        initial = low + torch.rand(f0.shape[0], self.harmonics + 1, 1, generator=generator, device=f0.device) * (high - low)
        initial[:, 0, :] = 0
        waves = self.sine_amp * torch.sin(theta + initial)
        return self.voiced_with_noise(waves, f0, _randn_like(waves, generator)).transpose(1, 2)

    def forward(self, f0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        waves = self.sines(f0, generator)
        merged = torch.tanh(self.l_linear(waves))
        # the official source module also draws its (unused) noise output: keep the RNG in step
        _randn_like((f0 > self.voiced_threshold).float(), generator)
        return merged
