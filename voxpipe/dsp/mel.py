"""Log-mel spectrograms in plain torch, numerically equal to torchaudio's `MelSpectrogram` as
Vocos and ZipVoice/LuxTTS use it (so torchaudio is not needed at run time).

The recipe (Vocos `MelSpectrogramFeatures`, ZipVoice `VocosFbank`):
  periodic Hann window of n_fft, STFT (reflect padding, onesided, not normalized), magnitude
  (power 1), HTK-scale triangular mel filterbank without area normalization, natural log of
  max(mel, 1e-7).

Shapes: waveforms are (..., N) samples; spectrograms are channel-major (..., bins, frames).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

Padding = Literal["center", "same"]


def hann_window(length: int, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
    """(length,) periodic Hann window (the STFT convention, as torch.hann_window's default)."""
    return torch.hann_window(length, periodic=True, dtype=dtype, device=device)


def hz_to_mel(hz: float) -> float:
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def mel_to_hz(mels: torch.Tensor) -> torch.Tensor:
    """Inverse of `hz_to_mel`, elementwise."""
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, sample_rate: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """(n_freqs, n_mels) float32 triangular HTK mel filters, peak 1, no area normalization.

    n_freqs is n_fft // 2 + 1. Computed in float32 in the same order of operations as
    torchaudio's `melscale_fbanks(norm=None, mel_scale="htk")`, so it matches the filterbank
    stored in Vocos checkpoints to float32 rounding.
    """
    f_max = float(sample_rate // 2) if f_max is None else float(f_max)
    if not 0.0 <= f_min < f_max:
        raise ValueError(f"mel filterbank needs 0 <= f_min < f_max, got f_min={f_min}, f_max={f_max}")
    # torchaudio spaces the FFT bins over [0, sample_rate // 2] (integer division) in float32
    bin_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    mel_points = torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    corner_freqs = mel_to_hz(mel_points)  # (n_mels + 2,) left edge, centre, right edge of each filter
    widths = corner_freqs[1:] - corner_freqs[:-1]  # (n_mels + 1,)
    offsets = corner_freqs.unsqueeze(0) - bin_freqs.unsqueeze(1)  # (n_freqs, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]
    falling = offsets[:, 2:] / widths[1:]
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def stft_num_frames(num_samples: int, n_fft: int, hop_length: int, padding: Padding = "center") -> int:
    """Frames of `stft_magnitude` for a waveform of `num_samples` samples."""
    if padding == "center":
        return 1 + num_samples // hop_length
    return 1 + (num_samples + (n_fft - hop_length) // 2 * 2 - n_fft) // hop_length


def min_num_samples(n_fft: int, hop_length: int, padding: Padding = "center") -> int:
    """Shortest waveform the reflect padding accepts (it must be longer than the pad)."""
    pad = n_fft // 2 if padding == "center" else (n_fft - hop_length) // 2
    return pad + 1


def stft_magnitude(
    wave: torch.Tensor, n_fft: int, hop_length: int, window: torch.Tensor, padding: Padding = "center"
) -> torch.Tensor:
    """|STFT| of wave (..., N) -> (..., n_fft // 2 + 1, frames), float32.

    padding "center": n_fft // 2 reflect padding each side (torch.stft center=True), 1 + N // hop
    frames. "same": (n_fft - hop) // 2 reflect padding each side, no centring (Vocos "same").
    """
    lead_shape = wave.shape[:-1]
    flat = wave.reshape(-1, wave.shape[-1]).to(torch.float32)
    if padding == "same":
        pad = (n_fft - hop_length) // 2
        flat = F.pad(flat.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    elif padding != "center":
        raise ValueError(f"padding must be 'center' or 'same', got {padding!r}")
    spec = torch.stft(
        flat,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=window.shape[0],
        window=window.to(device=flat.device, dtype=torch.float32),
        center=padding == "center",
        pad_mode="reflect",
        normalized=False,
        onesided=True,
        return_complex=True,
    )
    magnitude = spec.abs()
    return magnitude.reshape(*lead_shape, *magnitude.shape[-2:])


def log_mel_spectrogram(
    wave: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    filterbank: torch.Tensor,
    padding: Padding = "center",
    clamp_min: float = 1e-7,
) -> torch.Tensor:
    """wave (..., N) -> natural-log magnitude mel (..., n_mels, frames), channel-major.

    filterbank: (n_fft // 2 + 1, n_mels) as returned by `mel_filterbank`.
    """
    magnitude = stft_magnitude(wave, n_fft, hop_length, window, padding)
    fb = filterbank.to(device=magnitude.device, dtype=magnitude.dtype)
    mel = torch.matmul(magnitude.transpose(-1, -2), fb).transpose(-1, -2)
    return mel.clamp(min=clamp_min).log()


def zipvoice_num_frames(num_samples: int, hop_length: int) -> int:
    """Frames ZipVoice/LuxTTS keep (lhotse `compute_num_frames`): (N + hop // 2) // hop.

    Never more than the 1 + N // hop STFT frames, so the extra last frame (if any) is dropped.
    """
    return (num_samples + hop_length // 2) // hop_length
