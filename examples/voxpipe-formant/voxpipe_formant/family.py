"""A formant synthesizer: each letter becomes 1/11 s of sound.

Vowels are a glottal pulse train at the voice's pitch shaped by the vowel's first three formants
(a sum of harmonics weighted by resonance curves); consonants are noise bursts from the call's
seed; spaces and punctuation are silence. Not natural speech: a small, real family that shows
every part of the family interface.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.synthesizer import Options, Synthesizer
from voxpipe.core.tokenizer import Tokenizer
from voxpipe.core.voice import Voice

LETTERS = " abcdefghijklmnopqrstuvwxyz.,!?"
FORMANTS_HZ = {  # (F1, F2, F3) of English vowels (Peterson & Barney averages)
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
    "o": (570, 840, 2410), "u": (300, 870, 2240), "y": (270, 2290, 3010),
}
VOICES_HZ = {"low": 110.0, "high": 220.0}


class LetterTokenizer(Tokenizer):
    """Letters, space and . , ! ? -> ids (case folded; anything else is reported)."""

    name = "formant-letters"
    description = "letters -> ids for the formant example family"

    class Params(Params):
        strict: bool = Field(False, description="unknown characters are an error (else dropped with a warning)")

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict
        self.vocab = {letter: index for index, letter in enumerate(LETTERS)}

    def tokenize(self, text: str) -> list[str]:
        return list(text.lower())

    def encode(self, text: str) -> list[int]:
        tokens = self.tokenize(text)
        unknown = sorted({t for t in tokens if t not in self.vocab})
        if unknown and self.strict:
            raise ConfigError(f"formant-letters cannot say {unknown}")
        if unknown:
            import warnings

            warnings.warn(f"formant-letters drops {unknown}", stacklevel=2)
        return [self.vocab[t] for t in tokens if t in self.vocab]


class FormantSynthesizer(Synthesizer):
    """Letters -> formant vowels and noise consonants at 16 kHz."""

    name = "formant"
    description = "example family: letters -> vowel formants and noise bursts (16 kHz)"
    needs_tokenizer = False

    class Params(Params):
        voice: str = Field("low", description=f"default voice: {', '.join(VOICES_HZ)}")
        sample_rate: int = Field(16000, ge=8000, le=48000, description="Hz of the output")
        seconds_per_letter: float = Field(0.09, gt=0, le=1, description="duration of one letter at speed 1")

    class Options(Options):
        speed: float | None = Field(None, ge=0.25, le=4, allow_inf_nan=False, description="> 1 is faster")

    def __init__(self, *, voice: str, sample_rate: int, seconds_per_letter: float) -> None:
        self.sample_rate = sample_rate
        self.seconds_per_letter = seconds_per_letter
        self.default_voice = self.resolve_voice(voice)
        self.vocab = LetterTokenizer.create().vocab

    def default_tokenizer(self):
        return LetterTokenizer.create()

    def voices(self) -> list[str]:
        return sorted(VOICES_HZ)

    def resolve_voice(self, voice):
        """A voice name, None (the default) or a voice file of this family (tensor "pitch_hz")."""
        if voice is None:
            return self.default_voice
        if isinstance(voice, Voice):
            self.check_voice(voice)
            return float(voice.tensors["pitch_hz"])
        if isinstance(voice, str) and voice in VOICES_HZ:
            return VOICES_HZ[voice]
        raise ConfigError(f"synthesizer 'formant' has the voices {', '.join(self.voices())}; got {voice!r}")

    def synthesize(self, token_ids, voice, options, seeds, noise=None) -> list[torch.Tensor]:
        speed = options.speed or 1.0
        length = int(self.sample_rate * self.seconds_per_letter / speed)
        waves = []
        for ids, seed in zip(token_ids, seeds):
            generator = torch.Generator().manual_seed(int(seed))
            pieces = [self._letter(LETTERS[i], voice, length, generator) for i in ids]
            waves.append(torch.cat(pieces).reshape(1, -1) if pieces else torch.zeros(1, 0))
        return waves

    def _letter(self, letter: str, pitch_hz: float, length: int, generator: torch.Generator) -> torch.Tensor:
        t = torch.arange(length, dtype=torch.float64) / self.sample_rate
        envelope = torch.sin(math.pi * torch.arange(length, dtype=torch.float64) / length)
        if letter in FORMANTS_HZ:
            wave = torch.zeros(length, dtype=torch.float64)
            for harmonic in range(1, int(4000 / pitch_hz)):
                frequency = harmonic * pitch_hz
                gain = sum(1.0 / (1.0 + ((frequency - f) / 80.0) ** 2) for f in FORMANTS_HZ[letter]) / harmonic**0.5
                wave += gain * torch.sin(2 * math.pi * frequency * t)
            wave = 0.3 * wave / wave.abs().max()
        elif letter.isalpha():
            wave = 0.1 * torch.randn(length, generator=generator, dtype=torch.float64)
        else:
            wave = torch.zeros(length, dtype=torch.float64)
        return (wave * envelope).to(torch.float32)
