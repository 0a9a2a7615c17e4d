"""The `<voice>.onnx.json` beside every Piper voice, parsed into a typed model.

Keys read (as Piper reads them; others are kept out of the model and ignored):

- `audio.sample_rate` (Hz), `espeak.voice` (espeak-ng voice name), `phoneme_type`
  ("espeak" or "text"), `phoneme_id_map` (symbol -> [ids]), `phoneme_map` (symbol -> [symbols],
  applied before the id lookup), `num_symbols`, `num_speakers`, `speaker_id_map` (name -> id),
  `inference` (`noise_scale`, `length_scale`, `noise_w`: Piper's defaults 0.667, 1.0, 0.8).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from voxpipe.core.errors import ConfigError

BOS, PAD, EOS = "^", "_", "$"
"""Piper's sentence start, between-phoneme padding and sentence end symbols."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class AudioSection(_Section):
    sample_rate: int = Field(22050, gt=0, le=192000)


class EspeakSection(_Section):
    voice: str = "en-us"


class InferenceSection(_Section):
    noise_scale: float = Field(0.667, ge=0)
    length_scale: float = Field(1.0, gt=0)
    noise_w: float = Field(0.8, ge=0)

    @field_validator("noise_scale", "length_scale", "noise_w")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be finite")
        return value


class PiperVoiceConfig(_Section):
    """What voxpipe uses of a Piper voice's JSON config."""

    audio: AudioSection = AudioSection()
    espeak: EspeakSection = EspeakSection()
    inference: InferenceSection = InferenceSection()
    phoneme_type: Literal["espeak", "text"] = "espeak"
    phoneme_id_map: dict[str, list[int]]
    phoneme_map: dict[str, list[str]] = Field(default_factory=dict)
    num_symbols: int = Field(0, ge=0)
    num_speakers: int = Field(1, ge=1)
    speaker_id_map: dict[str, int] = Field(default_factory=dict)
    dataset: str | None = None

    @field_validator("phoneme_id_map")
    @classmethod
    def _ids_valid(cls, value: dict[str, list[int]]) -> dict[str, list[int]]:
        if not value:
            raise ValueError("is empty")
        for symbol, ids in value.items():
            if not ids or any(i < 0 for i in ids):
                raise ValueError(f"symbol {symbol!r} maps to {ids!r}; expected a non-empty list of ids >= 0")
        missing = [s for s in (BOS, PAD, EOS) if s not in value]
        if missing:
            raise ValueError(f"lacks Piper's special symbols {', '.join(repr(s) for s in missing)}")
        return value

    @model_validator(mode="after")
    def _speakers_valid(self) -> PiperVoiceConfig:
        bad = {name: sid for name, sid in self.speaker_id_map.items() if not 0 <= sid < self.num_speakers}
        if bad:
            raise ValueError(f"speaker_id_map has ids outside 0..{self.num_speakers - 1} (num_speakers): {bad}")
        if self.num_symbols:
            too_big = sorted({i for ids in self.phoneme_id_map.values() for i in ids if i >= self.num_symbols})
            if too_big:
                raise ValueError(f"phoneme_id_map uses ids {too_big[:5]} >= num_symbols {self.num_symbols}")
        return self

    @property
    def sample_rate(self) -> int:
        return self.audio.sample_rate

    @property
    def espeak_voice(self) -> str:
        return self.espeak.voice

    def speaker_names(self) -> list[str]:
        """Speaker names in id order (multi-speaker voices), else []."""
        return [name for name, _ in sorted(self.speaker_id_map.items(), key=lambda item: item[1])]


def read_voice_config(path: Path) -> PiperVoiceConfig:
    """Parse `path` (a `.onnx.json`); ConfigError naming the file and key otherwise."""
    if not path.is_file():
        raise ConfigError(f"Piper voice config not found: {path} (a Piper voice is `NAME.onnx` with `NAME.onnx.json` "
                          "beside it)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} is not a readable JSON file: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    try:
        return PiperVoiceConfig.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in item['loc']) or '(top)'}: {item['msg']}"
                             for item in error.errors())
        raise ConfigError(f"{path} is not a valid Piper voice config: {problems}") from None
