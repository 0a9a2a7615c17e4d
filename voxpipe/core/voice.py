"""`Voice`: a family-owned speaker payload, saved to a safetensors file that runs no code on load.

One file format for every family: named tensors plus JSON metadata naming the family that made
it, the fingerprint of the configuration it was made with (what must match to use it: feature
extractor, vocabulary, model, ...), and the sample rate. What the tensors mean is the family's
business (a flow-matching prompt's features and token ids, a style vector, cached key/values).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from voxpipe.core.errors import ConfigError, VoiceFileError

VOICE_FORMAT = "voxpipe.voice"
VOICE_FORMAT_VERSION = 2
LEGACY_FLOW_FAMILY = "flow-matching"  # version-1 files were all flow-matching prompts
MAX_METADATA_CHARS = 1 << 20


@dataclass
class Voice:
    """family: name of the synthesizer that made it. tensors: its payload. metadata: JSON values
    (transcript, how it was made, ...). fingerprint: the family's `voice_fingerprint()` when it
    was made. sample_rate: Hz of the family's audio (0 if not applicable)."""

    family: str
    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    sample_rate: int = 0

    def check_compatible(self, family: str, fingerprint: dict[str, Any], source: str = "voice") -> None:
        """ConfigError naming both sides when this voice was made for another family or config."""
        if self.family != family:
            raise ConfigError(f"{source} was made for synthesizer {self.family!r}; this pipeline's synthesizer is "
                              f"{family!r}. Make a voice with this pipeline (voxpipe voice create --config ...)")
        differing = {key: (self.fingerprint.get(key), value) for key, value in fingerprint.items()
                     if key in self.fingerprint and self.fingerprint[key] != value}
        if differing:
            parts = ", ".join(f"{key}: voice {made!r}, pipeline {now!r}" for key, (made, now) in sorted(differing.items()))
            raise ConfigError(f"{source} was made with another {family!r} configuration ({parts})")

    def save(self, path: str | Path) -> Path:
        """Write one `.voice` file (safetensors: tensors + JSON metadata; no pickle), atomically."""
        from safetensors.torch import save

        path = Path(path)
        header = {
            "format": VOICE_FORMAT,
            "version": str(VOICE_FORMAT_VERSION),
            "family": self.family,
            "sample_rate": str(int(self.sample_rate)),
            "fingerprint": json.dumps(self.fingerprint, sort_keys=True),
            "metadata": json.dumps(self.metadata, sort_keys=True),
        }
        tensors = {key: value.detach().contiguous().cpu() for key, value in self.tensors.items()}
        from voxpipe.core.files import write_bytes_atomically

        return write_bytes_atomically(path, save(tensors, metadata=header))

    @classmethod
    def load(cls, path: str | Path) -> "Voice":
        """Read a `.voice` file; a missing, corrupted, foreign or malformed file raises
        VoiceFileError naming the file and the field."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise VoiceFileError(f"voice file not found: {path}")
        try:
            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise VoiceFileError(f"{path} is not a readable voice file: {error}") from None
        if header.get("format") != VOICE_FORMAT:
            raise VoiceFileError(f"{path} is not a voxpipe voice file (metadata format={_short(header.get('format'))})")
        version = header.get("version")
        if version == "1":
            return _from_version_1(path, header, tensors)
        if version != str(VOICE_FORMAT_VERSION):
            raise VoiceFileError(f"{path} has voice format version {_short(version)}; this voxpipe reads "
                                 f"1 and {VOICE_FORMAT_VERSION}")
        family = header.get("family")
        if not isinstance(family, str) or not family:
            raise VoiceFileError(f"{path} names no family (metadata 'family')")
        metadata = _json_object(path, header, "metadata")
        fingerprint = _json_object(path, header, "fingerprint")
        try:
            sample_rate = int(header.get("sample_rate", "0"))
        except ValueError:
            raise VoiceFileError(f"{path}: sample_rate {_short(header.get('sample_rate'))} is not an integer") from None
        for name, tensor in tensors.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise VoiceFileError(f"{path}: tensor {name!r} has non-finite values")
        return cls(family, tensors, metadata, fingerprint, sample_rate)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_object(path: Path, header: dict[str, str], key: str) -> dict[str, Any]:
    text = header.get(key, "{}")
    if len(text) > MAX_METADATA_CHARS:
        raise VoiceFileError(f"{path}: metadata {key!r} is {len(text)} characters; at most {MAX_METADATA_CHARS}")
    try:
        value = json.loads(text)
    except ValueError as error:
        raise VoiceFileError(f"{path}: metadata {key!r} is not JSON: {error}") from None
    if not isinstance(value, dict):
        raise VoiceFileError(f"{path}: metadata {key!r} is a {type(value).__name__}; expected an object")
    return value


def _from_version_1(path: Path, header: dict[str, str], tensors: dict[str, torch.Tensor]) -> Voice:
    """Version 1 (flow-matching prompts only): transcript, prompt_rms and settings in the header."""
    try:
        settings = json.loads(header.get("settings", "{}"))
        prompt_rms = float(header["prompt_rms"])
    except (KeyError, ValueError) as error:
        raise VoiceFileError(f"{path} has unreadable metadata: {error}") from None
    if not isinstance(settings, dict) or not math.isfinite(prompt_rms):
        raise VoiceFileError(f"{path} has malformed metadata (settings {type(settings).__name__}, prompt_rms {prompt_rms})")
    metadata = {"transcript": header.get("transcript", ""), "prompt_rms": prompt_rms, "settings": settings}
    return Voice(LEGACY_FLOW_FAMILY, tensors, metadata, {}, int(settings.get("sample_rate") or 0))
