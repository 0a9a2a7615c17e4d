"""The flow-matching family's voice: an encoded speaker prompt (features + transcript ids).

Stored in the common voice file (`voxpipe.core.voice.Voice`): tensors `prompt_features` (T, F)
float32 (already multiplied by the model's feature scale, time-major) and `prompt_token_ids`
(N,) int64; metadata `transcript`, `prompt_rms` (RMS of the prompt before loudness
normalization, to match the output's volume) and `settings` (how it was made).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from voxpipe.core.errors import VoiceFileError
from voxpipe.core.voice import Voice


class PromptVoice(Voice):
    """A `Voice` whose payload is a flow-matching prompt (see the module docstring)."""

    @property
    def prompt_features(self) -> torch.Tensor:
        return self.tensors["prompt_features"]

    @property
    def prompt_token_ids(self) -> list[int]:
        return self.tensors["prompt_token_ids"].tolist()

    @property
    def transcript(self) -> str:
        return str(self.metadata.get("transcript", ""))

    @property
    def prompt_rms(self) -> float:
        return float(self.metadata["prompt_rms"])

    @property
    def settings(self) -> dict[str, Any]:
        return self.metadata.get("settings", {})

    @property
    def num_frames(self) -> int:
        return int(self.prompt_features.shape[0])

    @classmethod
    def from_voice(cls, voice: Voice, *, feature_dim: int, vocab_size: int | None, source: str = "voice") -> "PromptVoice":
        """Check a loaded voice's payload field by field (VoiceFileError naming the field)."""
        if isinstance(voice, cls):
            payload = voice
        else:
            payload = cls(voice.family, voice.tensors, voice.metadata, voice.fingerprint, voice.sample_rate)
        missing = {"prompt_features", "prompt_token_ids"} - payload.tensors.keys()
        if missing:
            raise VoiceFileError(f"{source} lacks tensors {sorted(missing)}")
        features, ids = payload.tensors["prompt_features"], payload.tensors["prompt_token_ids"]
        if features.dim() != 2 or features.dtype != torch.float32:
            raise VoiceFileError(f"{source}: prompt_features is {tuple(features.shape)} {features.dtype}; expected (T, F) float32")
        if features.shape[0] == 0:
            raise VoiceFileError(f"{source}: prompt_features has 0 frames")
        if features.shape[1] != feature_dim:
            raise VoiceFileError(f"{source}: prompt_features has {features.shape[1]}-dim frames; this pipeline's "
                                 f"acoustic model takes {feature_dim}")
        if not bool(torch.isfinite(features).all()):
            raise VoiceFileError(f"{source}: prompt_features has non-finite values")
        if ids.dim() != 1 or ids.dtype != torch.int64 or ids.numel() == 0:
            raise VoiceFileError(f"{source}: prompt_token_ids is {tuple(ids.shape)} {ids.dtype}; expected a non-empty (N,) int64")
        if vocab_size is not None and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
            raise VoiceFileError(f"{source}: prompt_token_ids has ids in [{int(ids.min())}, {int(ids.max())}]; "
                                 f"the model's vocabulary has ids 0..{vocab_size - 1}")
        rms = payload.metadata.get("prompt_rms")
        if not isinstance(rms, (int, float)) or isinstance(rms, bool) or not math.isfinite(rms) or rms <= 0:
            raise VoiceFileError(f"{source}: prompt_rms is {rms!r}; expected a finite number > 0")
        if not isinstance(payload.metadata.get("settings", {}), dict):
            raise VoiceFileError(f"{source}: settings is not an object")
        return payload
