"""Prompt preparation as the official pipelines do it before feature extraction.

ZipVoice: silence removal (`voxpipe.dsp.silence.remove_prompt_silence`), then RMS
normalization. LuxTTS: the first `duration` seconds (cut when loading), then RMS normalization.
RMS normalization only ever raises a quiet prompt to the target; the ORIGINAL RMS is returned
because the output is later scaled by `original_rms / target` (voxpipe.dsp.loudness).
"""

from __future__ import annotations

from pathlib import Path

import torch

from voxpipe.dsp.silence import remove_prompt_silence
from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError, ConfigError


def rms(samples: torch.Tensor) -> torch.Tensor:
    """sqrt(mean(x^2)) over all samples (all channels), a float32 0-d tensor."""
    return torch.sqrt(torch.mean(torch.square(samples.to(torch.float32))))


def normalize_rms(audio: Audio, target_rms: float) -> tuple[Audio, float]:
    """Scale a prompt quieter than `target_rms` up to it; louder prompts are left alone.

    Returns (audio, original RMS). Computed in float32 in the official order (x * target / rms).
    """
    level = rms(audio.samples)
    if not float(level) > 0.0:
        raise AudioError("the prompt is silent (RMS 0): it cannot be normalized to a target loudness")
    samples = audio.samples
    if level < target_rms:
        samples = samples * target_rms / level
    return Audio(samples, audio.sample_rate), float(level)


def prepare_prompt(
    audio: Audio,
    *,
    target_rms: float = 0.1,
    max_seconds: float | None = None,
    remove_silence: bool = False,
) -> tuple[Audio, float]:
    """Prompt audio (at the model's rate) -> (audio ready for the feature extractor, original RMS).

    Steps, in order:
    1. `remove_silence`: ZipVoice's rule (silences >= 1 s below -50 dBFS cut to 1 s margins, edges
       shortened to 100 ms, 200 ms of zeros appended, 16-bit round trip).
    2. `max_seconds`: keep the first `int(max_seconds * sample_rate)` samples. For LuxTTS parity
       cut when loading instead (`load_audio(max_seconds=...)` cuts before resampling).
    3. RMS normalization to `target_rms` (only raises; the original RMS is returned).
    """
    if target_rms <= 0:
        raise AudioError(f"target_rms must be positive, got {target_rms}")
    if audio.num_samples == 0:
        raise AudioError("the prompt audio contains no samples")
    if remove_silence:
        trimmed = remove_prompt_silence(audio.samples, audio.sample_rate)
        audio = Audio(trimmed, audio.sample_rate)
        if not bool((audio.samples != 0).any()):
            raise AudioError("the prompt has no sound above -50 dBFS: nothing is left after silence removal")
    if max_seconds is not None:
        if max_seconds <= 0:
            raise AudioError(f"max_seconds must be positive, got {max_seconds}")
        audio = Audio(audio.samples[..., : int(max_seconds * audio.sample_rate)], audio.sample_rate)
    return normalize_rms(audio, target_rms)


def load_prompt_clip(
    source: Audio | str | Path,
    sample_rate: int,
    *,
    keep_channels: bool = False,
    max_seconds: float | None = None,
    resampler: str = "soxr",
) -> Audio:
    """One prompt clip at `sample_rate` Hz: a file (see `load_audio`) or an in-memory Audio, cut
    to `max_seconds` before resampling (as LuxTTS's librosa.load), mixed to mono unless
    `keep_channels` (stereo models)."""
    from voxpipe.audio.io import load_audio, resample

    if not isinstance(source, Audio):
        return load_audio(source, sample_rate, mono=not keep_channels, max_seconds=max_seconds, resampler=resampler)
    clip = source
    if max_seconds is not None:
        clip = Audio(clip.samples[..., : int(max_seconds * clip.sample_rate)], clip.sample_rate)
    if clip.samples.dim() == 2 and not keep_channels:
        clip = Audio(clip.samples.mean(dim=0), clip.sample_rate)
    return resample(clip, sample_rate, method=resampler) if clip.sample_rate != sample_rate else clip


def join_prompt_clips(clips: list[Audio], num_channels: int = 1) -> Audio:
    """One prompt from one or two clips (dialog: speaker 1 then speaker 2), as ZipVoice-Dialog
    lays them out: joined in time for mono features; for two-channel features a stereo
    recording is used as is, and two single-speaker clips go on one channel each, the other
    channel silent meanwhile (ZipVoice reads a recorded-silence file there; zeros here)."""
    rate = clips[0].sample_rate
    if num_channels == 1:
        return clips[0] if len(clips) == 1 else Audio(torch.cat([c.samples for c in clips]), rate)
    if len(clips) == 1:
        if clips[0].num_channels != num_channels:
            raise ConfigError(
                f"these features take {num_channels}-channel prompts: give a {num_channels}-channel "
                "recording of the dialogue, or two single-speaker prompts"
            )
        return clips[0]
    if all(c.num_channels == num_channels for c in clips):
        return Audio(torch.cat([c.samples for c in clips], dim=-1), rate)
    first, second = (c.samples.reshape(-1, c.num_samples).mean(dim=0) for c in clips)
    stereo = torch.zeros(2, first.numel() + second.numel())
    stereo[0, : first.numel()] = first
    stereo[1, first.numel():] = second
    return Audio(stereo, rate)
