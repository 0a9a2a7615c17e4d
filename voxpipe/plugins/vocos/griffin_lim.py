"""`griffin-lim`: a weight-free vocoder for tests and demos (log-mel -> waveform).

Mel magnitudes are mapped back to linear-frequency magnitudes with the pseudo-inverse of the same
HTK filterbank the features use (negative values clipped to 0), then a phase is found with the
fast Griffin-Lim iteration (Perraudin et al. 2013: plain Griffin-Lim plus momentum). The initial
phase comes from a private generator seeded with `seed`, so the output is deterministic and no
global random state is touched. Quality is far below a neural vocoder; use it where weights are
not available.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.vocoder import Vocoder
from voxpipe.dsp.mel import hann_window, mel_filterbank

PHASE_EPS = 1e-16
# Log-mel of audio within [-1, 1] stays below ~9.2 (|STFT| <= n_fft / 2, summed by one filter); larger
# inputs (an untrained acoustic model) are clipped so exp() cannot overflow, as Vocos clips magnitudes.
MAX_LOG_MEL = 12.0


class GriffinLim(Vocoder):
    """Pseudo-inverse mel filterbank + fast Griffin-Lim phase reconstruction."""

    name = "griffin-lim"
    description = "weight-free Griffin-Lim vocoder (mel pseudo-inverse + phase iterations), for tests and demos"

    class Params(Params):
        sample_rate: int = Field(24000, gt=0, description="Hz of the features and of the output")
        n_fft: int = Field(1024, gt=0)
        hop_length: int = Field(256, gt=0)
        n_mels: int = Field(100, gt=0)
        f_min: float = Field(0.0, ge=0, description="Hz, lowest mel filter edge")
        f_max: float | None = Field(None, gt=0, description="Hz, highest mel filter edge; None = sample_rate / 2")
        n_iter: int = Field(32, ge=0, description="Griffin-Lim iterations")
        momentum: float = Field(0.99, ge=0, lt=1, description="fast Griffin-Lim momentum (0 = classic)")
        seed: int = Field(0, description="seed of the initial random phase")

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int,
                 f_min: float, f_max: float | None, n_iter: int, momentum: float,
                 seed: int):
        self.sample_rate = self.feature_sample_rate = sample_rate
        self.hop_length, self.n_fft, self.feature_dim = hop_length, n_fft, n_mels
        self.n_iter, self.momentum, self.seed = n_iter, momentum, seed
        if hop_length > n_fft:
            raise ConfigError(f"griffin-lim: hop_length {hop_length} must not exceed n_fft {n_fft}")
        self.window = hann_window(n_fft)
        try:
            self.filterbank = mel_filterbank(
                n_freqs=n_fft // 2 + 1, sample_rate=sample_rate, n_mels=n_mels, f_min=f_min, f_max=f_max
            )
        except ValueError as error:
            raise ConfigError(f"griffin-lim: {error}") from None
        # (n_freqs, n_mels): least-squares inverse of mel = filterbank^T @ linear
        self.inverse_filterbank = torch.linalg.pinv(self.filterbank.T.double()).float()

    def num_samples(self, num_frames: int) -> int:
        """Output length: (T - 1) * hop, the centred-STFT convention of Vocos."""
        return max(num_frames - 1, 0) * self.hop_length

    def linear_magnitude(self, features: torch.Tensor) -> torch.Tensor:
        """log-mel (B, n_mels, T) -> linear magnitude (B, n_fft / 2 + 1, T), >= 0."""
        magnitude = features.clamp(max=MAX_LOG_MEL).exp()
        return torch.matmul(self.inverse_filterbank.to(features.device), magnitude).clamp(min=0)

    def _stft(self, wave: torch.Tensor) -> torch.Tensor:
        # Zero padding (not reflect): works for waveforms shorter than n_fft / 2, i.e. a few frames.
        return torch.stft(wave, self.n_fft, self.hop_length, window=self.window.to(wave.device), center=True,
                          pad_mode="constant", return_complex=True)

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        return torch.istft(spec, self.n_fft, self.hop_length, window=self.window.to(spec.device), center=True,
                           length=length)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, n_mels, T) natural-log mel -> wave (B, (T - 1) * hop) at `sample_rate`."""
        if not isinstance(features, torch.Tensor) or features.dim() != 3 or features.shape[1] != self.feature_dim:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"{self.name}.decode expects features (B, {self.feature_dim}, T), got {shape}")
        features = features.to(torch.float32)
        length = self.num_samples(features.shape[-1])
        if length == 0:
            return features.new_zeros(features.shape[0], 0)
        with torch.no_grad():
            magnitude = self.linear_magnitude(features)
            generator = torch.Generator().manual_seed(self.seed)
            phase = torch.rand(magnitude.shape, generator=generator, dtype=torch.float32).to(features.device)
            angles = torch.polar(torch.ones_like(magnitude), 2 * math.pi * phase)
            previous = torch.zeros_like(angles)
            for _ in range(self.n_iter):
                rebuilt = self._stft(self._istft(magnitude * angles, length))
                angles = rebuilt - previous * (self.momentum / (1 + self.momentum))
                angles = angles / (angles.abs() + PHASE_EPS)
                previous = rebuilt
            return self._istft(magnitude * angles, length)
