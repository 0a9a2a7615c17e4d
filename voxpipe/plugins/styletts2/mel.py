"""StyleTTS2's reference-audio front-end: waveform -> normalized log-mel, as the official
inference's `preprocess` computes it, plus the silence trim of its `compute_style`.

Official: `torchaudio.transforms.MelSpectrogram(n_mels=80, n_fft=2048, win_length=1200,
hop_length=300)` on 24 kHz audio, then `(log(1e-5 + mel) - mean) / std` with mean -4, std 4.
The transform is built without `sample_rate`, so its mel filters are laid out for torchaudio's
default 16 kHz although the audio is 24 kHz: `filterbank_sample_rate` keeps that (the models
were trained on it). Filters: HTK mel scale, no area normalization, 0 Hz to
filterbank_sample_rate / 2; power spectrogram of a centred (reflect-padded) STFT with a periodic
Hann window of `win_length` samples zero-padded to `n_fft`. Written with torch.stft here so no
torchaudio is needed; tests compare it to torchaudio/librosa when those are installed.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn


def htk_mel_filters(n_freqs: int, n_mels: int, sample_rate: float, f_min: float = 0.0,
                    f_max: float | None = None) -> torch.Tensor:
    """(n_freqs, n_mels) triangular HTK-mel filters over the bins of a one-sided spectrum of a
    signal at `sample_rate` (torchaudio's `melscale_fbanks(..., norm=None, mel_scale="htk")`)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)

    def to_mel(hz: float) -> float:
        return 2595.0 * math.log10(1.0 + hz / 700.0)

    mels = torch.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2, dtype=torch.float64)
    points = 700.0 * (10 ** (mels / 2595.0) - 1.0)  # filter corners in Hz
    widths = points[1:] - points[:-1]
    slopes = points.unsqueeze(0) - freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    down = -slopes[:, :-2] / widths[:-1]
    up = slopes[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(down, up), min=0).to(torch.float32)


class LogMel(nn.Module):
    """(B, N) or (N,) waveform at 24 kHz -> (B, n_mels, 1 + N // hop) normalized log-mel."""

    def __init__(self, n_fft: int, win_length: int, hop_length: int, n_mels: int, filterbank_sample_rate: int,
                 log_mean: float, log_std: float) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.log_mean, self.log_std = log_mean, log_std
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)
        self.register_buffer("filters", htk_mel_filters(n_fft // 2 + 1, n_mels, filterbank_sample_rate),
                             persistent=False)

    def frames(self, num_samples: int) -> int:
        """Mel frames of a clip of `num_samples` (centred STFT)."""
        return 1 + num_samples // self.hop_length

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = wave.reshape(-1, wave.shape[-1]).to(torch.float32)
        spectrum = torch.stft(wave, self.n_fft, self.hop_length, self.win_length, window=self.window,
                              center=True, pad_mode="reflect", return_complex=True)
        power = spectrum.abs().pow(2)  # (B, n_fft // 2 + 1, frames)
        mel = torch.einsum("bft,fm->bmt", power, self.filters)
        return (torch.log(1e-5 + mel) - self.log_mean) / self.log_std


def trim_silence(samples: np.ndarray, top_db: float = 30.0, frame_length: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Cut leading and trailing audio quieter than `top_db` below the loudest frame (the official
    `librosa.effects.trim(wave, top_db=30)`: frame RMS of a zero-padded centred framing,
    whole hops kept around the loud part)."""
    samples = np.asarray(samples, dtype=np.float32)
    padded = np.pad(samples, frame_length // 2)
    count = 1 + (len(padded) - frame_length) // hop_length
    if count < 1 or not np.any(samples):
        return samples
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length][:count]
    power = np.mean(frames.astype(np.float64) ** 2, axis=-1)
    db = 10 * np.log10(np.maximum(power, 1e-10)) - 10 * np.log10(max(power.max(), 1e-10))
    loud = np.flatnonzero(db > -top_db)
    start, end = int(loud[0]) * hop_length, min(len(samples), (int(loud[-1]) + 1) * hop_length)
    return samples[start:end]
