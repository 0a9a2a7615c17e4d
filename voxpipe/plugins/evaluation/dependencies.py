"""Optional dependencies of the evaluation components: found without importing, named on error."""

from __future__ import annotations


import numpy as np

from voxpipe.core.audio import Audio
from voxpipe.core.errors import ConfigError
from voxpipe.eval import EXTRA_HINT
from voxpipe.core.dependencies import is_installed  # noqa: F401  (tests patch it here)


def require(component: str, *modules: str) -> None:
    """ConfigError naming the eval extra when one of `modules` is missing."""
    missing = [module for module in modules if not is_installed(module)]
    if missing:
        raise ConfigError(f"{component} needs {', '.join(repr(m) for m in missing)}: {EXTRA_HINT}")


def mono_16k(audio: Audio, source: str = "audio") -> np.ndarray:
    """Any-rate, mono or (C, N) audio -> (N,) float32 numpy at 16 kHz (soxr), clipped to [-1, 1].

    All three built-in instruments were trained on 16 kHz speech: content above 8 kHz is
    invisible to them. Raises AudioError for empty, non-finite or silent audio."""
    from voxpipe.audio.io import check_audio, resample, to_mono

    check_audio(audio, source=source, min_seconds=0.0)
    mono = resample(to_mono(audio), 16000, "soxr")
    return np.ascontiguousarray(np.clip(mono.samples.numpy(), -1.0, 1.0), dtype=np.float32)
