"""The `piper` family: Piper (VITS) voices in Piper's ONNX format, run by onnxruntime.

Each sequence the pipeline hands over holds one or more sentences framed ^ ... $ (the `piper`
tokenizer's ids); like Piper, every sentence is one model call, peak-normalized on its own, and
`sentence_silence` seconds of silence go between sentences. Speakers of multi-speaker voices
are chosen by name (`speaker_id_map`) or id. See docs/piper.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from pydantic import Field, field_validator

from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.piper.model import PiperModel
from voxpipe.plugins.piper.phonemes import PhonemeIdMapper
from voxpipe.plugins.piper.tokenizer import (
    DEFAULT_VOICE,
    VOICE_HELP,
    PiperTokenizer,
    load_voice,
    single_id_vocab,
)
from voxpipe.plugins.tokenizers.espeak_backends import BACKEND_HELP

MAX_SCALE = 10.0
MAX_SPEED = 4.0
MAX_SILENCE = 10.0
CHUNK_TOKENS = 400  # framed symbols (^ _ p _ ... $): about 200 phonemes
PEAK_FLOOR = 0.01  # Piper's C++ runtime: samples * 32767 / max(0.01, peak)
Speaker = str | int


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be finite")
    return value


class PiperSynthesizer(Synthesizer):
    """Piper VITS voices (`NAME.onnx` + `NAME.onnx.json`) through onnxruntime."""

    name: ClassVar[str] = "piper"
    description: ClassVar[str] = "Piper (VITS) voices in Piper's ONNX format, through onnxruntime"
    streams: ClassVar[bool] = True
    needs_tokenizer: ClassVar[bool] = False  # default_tokenizer(): the voice's own phonemes and ids

    class Params(BaseParams):
        voice: str = Field(DEFAULT_VOICE, description=VOICE_HELP)
        speaker: Speaker | None = Field(None, description="default speaker of a multi-speaker voice: name or id "
                                                           "(None: id 0, as Piper)")
        length_scale: float | None = Field(None, gt=0, le=MAX_SCALE,
                                           description="phoneme duration factor (> 1 slower); None: the voice's")
        noise_scale: float | None = Field(None, ge=0, le=MAX_SCALE, description="generator noise; None: the voice's")
        noise_w: float | None = Field(None, ge=0, le=MAX_SCALE, description="duration noise; None: the voice's")
        sentence_silence: float = Field(0.0, ge=0, le=MAX_SILENCE,
                                        description="seconds of silence between sentences (piper-tts default 0)")
        normalize_audio: bool = Field(True, description="scale each sentence to full peak, as Piper does")
        strict: bool = Field(False, description="raise instead of warning when a phoneme has no id in the voice")
        espeak_backend: Literal["auto", "piper", "espeakng"] = Field("auto", description=BACKEND_HELP)
        threads: int | None = Field(None, ge=1, le=256, description="onnxruntime intra-op threads (None: its default)")

        _finite = field_validator("length_scale", "noise_scale", "noise_w", "sentence_silence")(_finite)

    class Options(BaseOptions):
        speed: float | None = Field(None, gt=0, le=MAX_SPEED, description="speaking rate: length_scale / speed")
        length_scale: float | None = Field(None, gt=0, le=MAX_SCALE, description="phoneme duration factor (> 1 slower)")
        noise_scale: float | None = Field(None, ge=0, le=MAX_SCALE, description="generator noise")
        noise_w: float | None = Field(None, ge=0, le=MAX_SCALE, description="duration noise")
        speaker: Speaker | None = Field(None, description="speaker name (speaker_id_map) or id; wins over --voice")
        sentence_silence: float | None = Field(None, ge=0, le=MAX_SILENCE, description="seconds between sentences")

        _finite = field_validator("speed", "length_scale", "noise_scale", "noise_w", "sentence_silence")(_finite)

    def __init__(self, *, voice: str, speaker: Speaker | None, length_scale: float | None, noise_scale: float | None,
                 noise_w: float | None, sentence_silence: float, normalize_audio: bool, strict: bool,
                 espeak_backend: str, threads: int | None) -> None:
        self.voice_spec = voice
        self.files, self.config = load_voice(voice)
        self.sample_rate = self.config.sample_rate
        self.vocab = single_id_vocab(self.config)
        self.mapper = PhonemeIdMapper(self.config.phoneme_id_map, f"the phoneme_id_map of {self.files.config}", strict)
        self.length_scale = self.config.inference.length_scale if length_scale is None else length_scale
        self.noise_scale = self.config.inference.noise_scale if noise_scale is None else noise_scale
        self.noise_w = self.config.inference.noise_w if noise_w is None else noise_w
        self.sentence_silence = sentence_silence
        self.normalize_audio = normalize_audio
        self.strict = strict
        self.espeak_backend = espeak_backend
        self.default_speaker = self.speaker_id(speaker) if speaker is not None else 0
        self.model = PiperModel(self.files.model, self.config.num_speakers, self.sample_rate, threads)

    # ---- voices / speakers ---------------------------------------------------------------
    def voices(self) -> list[str]:
        """Speaker names of a multi-speaker voice, else the voice's own name."""
        return self.config.speaker_names() or [self.files.name]

    def _available(self) -> str:
        names = self.config.speaker_names()
        if names:
            return ", ".join(f"{name} ({self.config.speaker_id_map[name]})" for name in names)
        if self.config.num_speakers > 1:
            return f"ids 0..{self.config.num_speakers - 1}"
        return f"only {self.files.name} (a single-speaker voice)"

    def speaker_id(self, speaker: Speaker) -> int:
        """A speaker name or id (int or digit string) -> id; ConfigError naming the available ones."""
        if isinstance(speaker, str):
            if speaker in self.config.speaker_id_map:
                return self.config.speaker_id_map[speaker]
            if speaker == self.files.name and self.config.num_speakers == 1:
                return 0
            if not speaker.strip().isdigit():
                raise ConfigError(f"Piper voice {self.files.name} has no speaker {speaker!r}; "
                                  f"available: {self._available()}")
            speaker = int(speaker)
        if isinstance(speaker, bool) or not isinstance(speaker, int) or not 0 <= speaker < self.config.num_speakers:
            raise ConfigError(f"Piper voice {self.files.name} has no speaker id {speaker!r}; "
                              f"available: {self._available()}")
        return speaker

    def resolve_voice(self, voice: Voice | str | None) -> int:
        """The speaker id: None -> the configured default speaker; a name or id."""
        if voice is None:
            return self.default_speaker
        if isinstance(voice, Voice):
            raise ConfigError(f"synthesizer 'piper' does not use voice files (this one was made for {voice.family!r}); "
                              f"choose a speaker of {self.files.name}: {self._available()}, or another Piper "
                              "voice with `synthesizer.voice`")
        if isinstance(voice, (str, int)):
            return self.speaker_id(voice)
        raise ConfigError(f"a Piper speaker is a name or id, got {type(voice).__name__}")

    def voice_fingerprint(self) -> dict[str, Any]:
        return {"piper_voice": self.files.name}

    # ---- text ----------------------------------------------------------------------------
    def default_tokenizer(self) -> PiperTokenizer:
        return PiperTokenizer.create(voice=str(self.files.model), strict=self.strict,
                                     espeak_backend=self.espeak_backend)

    def chunk_budget(self, voice: Any, options: BaseOptions) -> int:
        # VITS has no length limit of its own (each sentence is one call anyway); chunks of a few
        # sentences (~10 s of speech) keep streaming latency low and memory modest
        return CHUNK_TOKENS

    # ---- generation ----------------------------------------------------------------------
    def scales(self, options: PiperSynthesizer.Options) -> tuple[float, float, float]:
        """(noise_scale, length_scale, noise_w) for a call: options over params over the voice's config."""
        length_scale = self.length_scale if options.length_scale is None else options.length_scale
        if options.speed is not None:
            length_scale = length_scale / options.speed
        noise_scale = self.noise_scale if options.noise_scale is None else options.noise_scale
        noise_w = self.noise_w if options.noise_w is None else options.noise_w
        return noise_scale, length_scale, noise_w

    def synthesize(self, token_ids: Sequence[Sequence[int]], voice: Any, options: BaseOptions,
                   seeds: Sequence[int], noise: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each sequence (one or more ^...$ sentences) -> (1, N) float32 at `sample_rate`."""
        options = self.options(options)
        if noise is not None:
            raise ConfigError("synthesizer 'piper' draws its noise from the seed; explicit noise is not supported")
        if len(seeds) != len(token_ids):
            raise ValueError(f"{len(token_ids)} sequences but {len(seeds)} seeds")
        speaker = self.speaker_id(options.speaker) if options.speaker is not None else self.resolve_voice(voice)
        noise_scale, length_scale, noise_w = self.scales(options)
        silence_seconds = self.sentence_silence if options.sentence_silence is None else options.sentence_silence
        silence = np.zeros(int(silence_seconds * self.sample_rate), dtype=np.float32)
        results = []
        for ids, seed in zip(token_ids, seeds):
            generator = torch.Generator().manual_seed(int(seed))
            pieces: list[np.ndarray] = []
            for sentence in self.mapper.split_sentences(list(ids)):
                audio = self.model.generate(sentence, noise_scale=noise_scale, length_scale=length_scale,
                                            noise_w=noise_w, speaker_id=speaker, generator=generator)
                if self.normalize_audio and audio.size:
                    audio = audio / max(PEAK_FLOOR, float(np.abs(audio).max()))
                if pieces and silence.size:
                    pieces.append(silence)
                pieces.append(np.clip(audio, -1.0, 1.0))
            samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
            results.append(torch.from_numpy(samples.astype(np.float32, copy=False)).unsqueeze(0))
        return results

    def describe(self) -> dict:
        return {**super().describe(), "voice": self.files.name, "voice_file": str(self.files.model),
                "speakers": self.config.num_speakers, "espeak_voice": self.config.espeak_voice}
