"""What both Whisper transcribers share: the 16 kHz mono input and the missing-dependency error."""

from __future__ import annotations


import numpy as np

from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError, ConfigError
from voxpipe.core.dependencies import is_installed  # noqa: F401  (tests patch it here)

WHISPER_SAMPLE_RATE = 16000
"""Whisper models take 16 kHz mono audio."""

PROMPT_TEXT_HINT = "or pass the prompt's transcript instead (--prompt-text, or encode_prompt(audio, text=...))"


def require(module: str, component: str, extra: str) -> None:
    """ConfigError naming the pip extra when an optional dependency is missing."""
    if not is_installed(module):
        raise ConfigError(
            f"the {component!r} transcriber needs the optional dependency {module!r}: "
            f"pip install 'voxpipe[{extra}]' — {PROMPT_TEXT_HINT}"
        )


def whisper_input(audio: Audio) -> np.ndarray:
    """Audio at any rate, mono or (C, N) -> (N,) float32 numpy at 16 kHz (soxr, as librosa.load)."""
    from voxpipe.audio.io import resample, to_mono

    if audio.num_samples == 0:
        raise AudioError("cannot transcribe audio without samples")
    mono = resample(to_mono(audio), WHISPER_SAMPLE_RATE, "soxr")
    return np.ascontiguousarray(mono.samples.numpy(), dtype=np.float32)
