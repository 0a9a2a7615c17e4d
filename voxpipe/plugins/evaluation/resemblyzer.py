"""Speaker encoder `resemblyzer`: the GE2E d-vector model bundled in the Resemblyzer wheel.

A 3-layer LSTM over 40-band mel frames of 16 kHz speech (Wan et al., "Generalized End-to-End
Loss for Speaker Verification", 2018), trained by Resemble AI; 256-dim embeddings, L2-normed and
non-negative (a ReLU precedes the norm), so cosines fall in [0, 1]: different speakers typically
score 0.5-0.8, the same speaker 0.8-0.95 (docs/eval.md).

Resemblyzer's own preprocessing is used: volume normalized to -30 dBFS and long silences cut
with WebRTC's voice-activity detector (`webrtcvad`, which imports `pkg_resources`: hence
`setuptools<81` in the eval extra). When the detector finds too little speech (noise-like
output), the untrimmed audio is embedded instead, so every clip gets an embedding.
"""

from __future__ import annotations

import warnings

import torch
from pydantic import Field

from voxpipe.core.audio import Audio
from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.eval import EXTRA_HINT
from voxpipe.eval.interfaces import SpeakerEncoder
from voxpipe.plugins.evaluation.dependencies import mono_16k, require

MIN_VOICED_SECONDS = 0.3
"""Below this much detected speech the untrimmed audio is embedded instead."""


def _import_resemblyzer():
    with warnings.catch_warnings():
        # webrtcvad's `import pkg_resources` and resemblyzer's scipy.ndimage.morphology import warn
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import resemblyzer
        except ModuleNotFoundError as error:
            hint = " (webrtcvad needs setuptools<81 for pkg_resources)" if error.name == "pkg_resources" else ""
            raise ConfigError(f"the 'resemblyzer' speaker encoder cannot import {error.name!r}{hint}: "
                              f"{EXTRA_HINT}") from None
    return resemblyzer


class ResemblyzerParams(Params):
    device: str = Field("cpu", description="torch device of the encoder")
    rate: float = Field(1.3, gt=0, description="partial 1.6 s windows per second (Resemblyzer's default)")


class ResemblyzerEncoder(SpeakerEncoder):
    """GE2E speaker embeddings (Resemblyzer's bundled model); loaded on first use."""

    name = "resemblyzer"
    description = "GE2E d-vectors from Resemblyzer's bundled weights (256-dim, cosine in [0, 1])"
    Params = ResemblyzerParams

    def __init__(self, device: str, rate: float) -> None:
        require("the 'resemblyzer' speaker encoder", "resemblyzer", "webrtcvad")
        self.device = device
        self.rate = rate
        self._encoder = None

    @property
    def encoder(self):
        if self._encoder is None:
            resemblyzer = _import_resemblyzer()
            self._encoder = resemblyzer.VoiceEncoder(device=self.device, verbose=False)
        return self._encoder

    def embed(self, audio: Audio) -> torch.Tensor:
        """Audio (any rate) -> (256,) float32 embedding, unit length."""
        samples = mono_16k(audio, "audio to embed")
        encoder = self.encoder
        resemblyzer = _import_resemblyzer()
        trimmed = resemblyzer.preprocess_wav(samples)
        if trimmed.size < MIN_VOICED_SECONDS * 16000:
            trimmed = resemblyzer.normalize_volume(samples, -30, increase_only=True)
        embedding = encoder.embed_utterance(trimmed, rate=self.rate)
        return torch.from_numpy(embedding).to(torch.float32)

    def describe(self) -> dict:
        return {"model": "resemblyzer GE2E", "device": self.device}
