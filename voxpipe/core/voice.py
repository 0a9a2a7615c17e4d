"""`Voice`: an encoded speaker prompt, saved to a safetensors file that runs no code on load."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voxpipe.core.errors import VoiceFileError

VOICE_FORMAT = "voxpipe.voice"
VOICE_FORMAT_VERSION = 1


@dataclass
class Voice:
    """A prompt encoded once and reused for any number of syntheses.

    prompt_features:  (T, F) float32 prompt features as the acoustic model consumes them
                      (already multiplied by the feature scale), time-major.
    prompt_token_ids: ids of the transcript in the tokenizer's vocabulary.
    transcript:       the prompt's text.
    prompt_rms:       RMS of the prompt waveform before loudness normalization (for volume
                      matching of the output).
    settings:         how it was made (feature extractor, sample rate, hop, feature scale,
                      target RMS, tokenizer, source file, ...); JSON-serialisable values only.
    """

    prompt_features: torch.Tensor
    prompt_token_ids: list[int]
    transcript: str
    prompt_rms: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.prompt_features.shape[0])

    def save(self, path: str | Path) -> Path:
        """Write one `.voice` file (safetensors: tensors + JSON metadata; no pickle)."""
        from safetensors.torch import save_file

        path = Path(path)
        metadata = {
            "format": VOICE_FORMAT,
            "version": str(VOICE_FORMAT_VERSION),
            "transcript": self.transcript,
            "prompt_rms": repr(float(self.prompt_rms)),
            "settings": json.dumps(self.settings, sort_keys=True),
        }
        tensors = {
            "prompt_features": self.prompt_features.detach().to(torch.float32).contiguous().cpu(),
            "prompt_token_ids": torch.tensor(self.prompt_token_ids, dtype=torch.int64),
        }
        save_file(tensors, str(path), metadata=metadata)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Voice":
        """Read a `.voice` file; a missing, corrupted or foreign file raises VoiceFileError."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise VoiceFileError(f"voice file not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise VoiceFileError(f"{path} is not a readable voice file: {error}") from None
        if metadata.get("format") != VOICE_FORMAT:
            raise VoiceFileError(f"{path} is not a voxpipe voice file (metadata format={metadata.get('format')!r})")
        if metadata.get("version") != str(VOICE_FORMAT_VERSION):
            raise VoiceFileError(
                f"{path} has voice format version {metadata.get('version')!r}; this voxpipe reads {VOICE_FORMAT_VERSION}"
            )
        missing = {"prompt_features", "prompt_token_ids"} - tensors.keys()
        if missing:
            raise VoiceFileError(f"{path} lacks tensors {sorted(missing)}")
        features, ids = tensors["prompt_features"], tensors["prompt_token_ids"]
        if features.dim() != 2 or features.dtype != torch.float32 or ids.dim() != 1 or ids.dtype != torch.int64:
            raise VoiceFileError(
                f"{path} has prompt_features {tuple(features.shape)} {features.dtype} and prompt_token_ids "
                f"{tuple(ids.shape)} {ids.dtype}; expected (T, F) float32 and (N,) int64"
            )
        try:
            settings = json.loads(metadata.get("settings", "{}"))
            prompt_rms = float(metadata["prompt_rms"])
        except (KeyError, ValueError) as error:
            raise VoiceFileError(f"{path} has unreadable metadata: {error}") from None
        if not isinstance(settings, dict):
            raise VoiceFileError(f"{path} has settings of type {type(settings).__name__}; expected an object")
        return cls(
            prompt_features=features,
            prompt_token_ids=ids.tolist(),
            transcript=metadata.get("transcript", ""),
            prompt_rms=prompt_rms,
            settings=settings,
        )
