"""Output loudness rule shared by ZipVoice and LuxTTS."""

from __future__ import annotations

import torch


def match_prompt_loudness(
    wave: torch.Tensor,
    prompt_rms: float | torch.Tensor,
    target_rms: float,
    *,
    clamp: bool = True,
) -> torch.Tensor:
    """Vocoder output (B, N) or (N,) -> the loudness-matched waveform of the official pipelines.

    Both pipelines raise a quiet prompt (RMS below `target_rms`) to `target_rms` before encoding
    it, so the model speaks at `target_rms`; the output is then scaled back by
    `prompt_rms / target_rms`. A prompt at or above the target is left alone, and so is the
    output. `clamp` first clips the waveform to [-1, 1], as both pipelines do before scaling.

    `prompt_rms` is the RMS of the ORIGINAL prompt: a number, a 0-d tensor, or one value per
    batch item (shape (B,)).
    """
    if clamp:
        wave = wave.clamp(-1.0, 1.0)
    rms = torch.as_tensor(prompt_rms, dtype=wave.dtype, device=wave.device)
    if rms.dim() == 1 and wave.dim() == 2:
        rms = rms[:, None]  # one value per row
    gain = torch.where(rms < target_rms, rms / target_rms, torch.ones_like(rms))
    return wave * gain
