"""Band-limited windowed-sinc resampling between integer sample rates, in plain torch.

This is the resampler of torchaudio (`torchaudio.functional.resample`, `sinc_interp_hann`),
re-implemented so that voxpipe does not need torchaudio at run time. Two official pipelines we
reproduce depend on it: the LuxTTS vocoder turns its 24 kHz head into 48 kHz with it, and
ZipVoice resamples the prompt (e.g. 16 -> 24 kHz) with it. Any other filter (soxr, polyphase
Kaiser) changes the output by up to 1e-2, so parity needs this exact kernel.

How it works: both rates are divided by their gcd, giving `orig` input and `new` output samples
per period. Output sample j of a period is a dot product of the input around it with a Hann-windowed
sinc whose cut-off is `rolloff * min(orig, new) / 2` (in units of the reduced rates), truncated
to `lowpass_filter_width` zero crossings on each side. All `new` phases are one strided conv1d.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=16)
def _sinc_kernel(orig: int, new: int, lowpass_filter_width: int, rolloff: float) -> tuple[torch.Tensor, int]:
    """Kernel (new, 1, 2 * width + orig) in float64 and the padding `width`, for reduced rates."""
    base_freq = min(orig, new) * rolloff
    width = math.ceil(lowpass_filter_width * orig / base_freq)
    # Input sample offsets (in input periods) seen by output phase j, minus that phase's time.
    offsets = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    phase_times = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new
    t = ((phase_times + offsets) * base_freq).clamp(-lowpass_filter_width, lowpass_filter_width)
    window = torch.cos(t * math.pi / lowpass_filter_width / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / torch.where(t == 0, torch.ones_like(t), t))
    return sinc * window * (base_freq / orig), width


def resample_sinc(
    wave: torch.Tensor,
    orig_sr: int,
    new_sr: int,
    lowpass_filter_width: int = 6,
    rolloff: float = 0.99,
) -> torch.Tensor:
    """Resample `wave` (..., N) from `orig_sr` to `new_sr` Hz (positive integers).

    Returns (..., ceil(N * new_sr / orig_sr)) in the dtype and on the device of `wave`.
    `lowpass_filter_width` is the number of sinc zero crossings kept on each side (sharper filter
    for larger values); `rolloff` (< 1) places the cut-off below the lower Nyquist frequency to
    limit aliasing. The defaults are torchaudio's. Equal rates return `wave` unchanged.
    """
    if int(orig_sr) != orig_sr or int(new_sr) != new_sr or orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive integers, got {orig_sr} -> {new_sr}")
    if lowpass_filter_width <= 0:
        raise ValueError(f"lowpass_filter_width must be positive, got {lowpass_filter_width}")
    if not wave.is_floating_point():
        raise TypeError(f"resample_sinc expects a floating-point waveform, got {wave.dtype}")
    orig_sr, new_sr = int(orig_sr), int(new_sr)
    if orig_sr == new_sr:
        return wave
    gcd = math.gcd(orig_sr, new_sr)
    orig, new = orig_sr // gcd, new_sr // gcd
    kernel, width = _sinc_kernel(orig, new, int(lowpass_filter_width), float(rolloff))
    kernel = kernel.to(device=wave.device, dtype=wave.dtype)

    shape = wave.shape
    flat = wave.reshape(-1, 1, shape[-1])
    length = shape[-1]
    padded = F.pad(flat, (width, width + orig))
    # (M, new, periods) -> interleave the phases -> (M, new * periods)
    phases = F.conv1d(padded, kernel, stride=orig)
    out = phases.transpose(1, 2).reshape(flat.shape[0], -1)
    target_length = -(-new * length // orig)  # ceil without float rounding
    return out[:, :target_length].reshape(*shape[:-1], -1)
