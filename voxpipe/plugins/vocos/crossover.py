"""The FFT crossover that merges LuxTTS's two vocoder heads into one 48 kHz waveform."""

from __future__ import annotations

import torch

TRANSITION_BINS = 8


def crossover_mask(num_bins: int, cutoff_hz: float, sample_rate: int, transition_bins: int = TRANSITION_BINS,
                   device: torch.device | None = None) -> torch.Tensor:
    """Weight (num_bins,) of the HIGH band per rfft bin: 0 below the cutoff, 1 above, and a cubic
    fade 3s^2 - 2s^3 over `transition_bins` bins centred on bin int(cutoff / nyquist * num_bins)
    (LinaCodec's rule, float arithmetic in the same order so the integer bin is the same).
    """
    cutoff_bin = int((cutoff_hz / (sample_rate / 2)) * num_bins)
    half = transition_bins // 2
    start, end = max(0, cutoff_bin - half), min(num_bins, cutoff_bin + half)
    mask = torch.ones(num_bins, device=device)
    mask[:start] = 0
    if end > start:
        s = (torch.linspace(-1, 1, steps=end - start, device=device) + 1) / 2
        mask[start:end] = 3 * s.pow(2) - 2 * s.pow(3)
    return mask


def crossover_merge(high: torch.Tensor, low: torch.Tensor, cutoff_hz: float, sample_rate: int) -> torch.Tensor:
    """high, low (B, N) at `sample_rate` -> (B, N): spectrum of `low` below `cutoff_hz`, of `high`
    above, computed over the whole signal at once (one rfft of length N)."""
    merged = torch.fft.rfft(high)
    mask = crossover_mask(merged.shape[-1], cutoff_hz, sample_rate, device=high.device)
    merged.mul_(mask).add_(torch.fft.rfft(low).mul_(1.0 - mask))  # in place: long inputs make big spectra
    return torch.fft.irfft(merged, n=high.shape[-1])
