"""The official VibeVoice `config.json` sections, read into plain dataclasses with clear errors.

Three sections matter (names and defaults as in microsoft/VibeVoice's configuration classes):

- `acoustic_tokenizer_config`: the sigma-VAE (a standalone tokenizer's `config.json` is this
  section alone),
- `diffusion_head_config`: the adaLN diffusion head and its training noise schedule,
- `decoder_config`: the Qwen2 LM (`tts_backbone_num_hidden_layers` of its layers form the TTS LM).

Fields that fix tensor shapes and that the published configs spell out are required; the
others take the official defaults (VibeVoice-Realtime-0.5B's config.json omits e.g. the
tokenizer's decoder_* and conv_norm fields).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from voxpipe.core.errors import WeightsError


class _Section:
    """Reads one JSON object, naming the file and key path in every error."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise WeightsError(f"{where}: expected a JSON object, got {type(data).__name__}")
        self.data = data
        self.where = where

    def required(self, key: str, kind: type | tuple[type, ...]) -> Any:
        if key not in self.data:
            raise WeightsError(f"{self.where}: missing field {key!r}")
        return self._checked(key, self.data[key], kind)

    def optional(self, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self.data.get(key, default)
        return default if value is None and default is None else self._checked(key, value, kind)

    def _checked(self, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise WeightsError(f"{self.where}: field {key!r} is {value!r}; expected {names}")
        if isinstance(value, float) and not math.isfinite(value):
            raise WeightsError(f"{self.where}: field {key!r} is {value!r}; expected a finite number")
        return value

    def positive(self, key: str, value: int) -> int:
        if value < 1:
            raise WeightsError(f"{self.where}: field {key!r} is {value}; expected >= 1")
        return value

    def section(self, key: str) -> _Section:
        return _Section(self.required(key, dict), f"{self.where}.{key}")


def _depths(section: _Section, key: str, value: Any) -> list[int]:
    """'3-3-8' or [3, 3, 8] -> [3, 3, 8]."""
    try:
        depths = [int(part) for part in value.split("-")] if isinstance(value, str) else [int(d) for d in value]
    except (TypeError, ValueError):
        raise WeightsError(f"{section.where}: field {key!r} is {value!r}; expected '3-3-8' or a list of ints") from None
    if not depths or min(depths) < 0:
        raise WeightsError(f"{section.where}: field {key!r} is {value!r}; expected non-negative depths")
    return depths


def _ratios(section: _Section, key: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not value or not all(isinstance(r, int) and r >= 1 for r in value):
        raise WeightsError(f"{section.where}: field {key!r} is {value!r}; expected a list of ints >= 1")
    return list(value)


@dataclass(frozen=True)
class AcousticTokenizerConfig:
    """The sigma-VAE: audio (B, channels, N) <-> latents (B, T, vae_dim), N = T * hop_length."""

    vae_dim: int
    encoder_n_filters: int
    encoder_ratios: list[int]
    encoder_depths: list[int]
    decoder_n_filters: int
    decoder_ratios: list[int]
    decoder_depths: list[int]
    channels: int = 1
    causal: bool = True
    fix_std: float = 0.5
    mixer_layer: str = "depthwise_conv"
    conv_norm: str = "none"
    pad_mode: str = "constant"
    disable_last_norm: bool = True
    layernorm: str = "RMSNorm"
    layernorm_eps: float = 1e-5
    layernorm_elementwise_affine: bool = True
    conv_bias: bool = True
    layer_scale_init_value: float = 1e-6

    @property
    def hop_length(self) -> int:
        """Audio samples per latent frame (3200 for the official 24 kHz model: 7.5 Hz)."""
        return math.prod(self.encoder_ratios)

    @property
    def decoder_hop_length(self) -> int:
        return math.prod(self.decoder_ratios)

    @classmethod
    def from_dict(cls, data: Any, where: str, with_decoder: bool = True) -> AcousticTokenizerConfig:
        """with_decoder False: an encoder-only (semantic) tokenizer config; the decoder fields,
        absent there, mirror the encoder's."""
        s = _Section(data, where)
        encoder_ratios = _ratios(s, "encoder_ratios", s.required("encoder_ratios", list))
        encoder_depths = _depths(s, "encoder_depths", s.required("encoder_depths", (str, list)))
        decoder_ratios_raw = s.optional("decoder_ratios", list, None)
        decoder_ratios = encoder_ratios if decoder_ratios_raw is None else _ratios(s, "decoder_ratios", decoder_ratios_raw)
        decoder_depths_raw = s.optional("decoder_depths", (str, list), None)
        decoder_depths = (list(reversed(encoder_depths)) if decoder_depths_raw is None
                          else _depths(s, "decoder_depths", decoder_depths_raw))
        for name, ratios, depths in (("encoder", encoder_ratios, encoder_depths), ("decoder", decoder_ratios, decoder_depths)):
            if len(depths) != len(ratios) + 1:
                raise WeightsError(f"{where}: {name} has {len(ratios)} ratios and {len(depths)} stage depths; "
                                   f"expected one more depth than ratios (a stem stage plus one per ratio)")
        config = cls(
            vae_dim=s.positive("vae_dim", s.required("vae_dim", int)),
            encoder_n_filters=s.positive("encoder_n_filters", s.required("encoder_n_filters", int)),
            encoder_ratios=encoder_ratios, encoder_depths=encoder_depths,
            # the official default (32) when absent, as in VibeVoice-Realtime-0.5B's config.json
            decoder_n_filters=s.positive("decoder_n_filters", s.optional(
                "decoder_n_filters", int, 32 if with_decoder else data["encoder_n_filters"])),
            decoder_ratios=decoder_ratios, decoder_depths=decoder_depths,
            channels=s.positive("channels", s.optional("channels", int, 1)),
            causal=s.optional("causal", bool, True),
            fix_std=s.optional("fix_std", float, 0.5),
            mixer_layer=s.optional("mixer_layer", str, "depthwise_conv"),
            conv_norm=s.optional("conv_norm", str, "none"),
            pad_mode=s.optional("pad_mode", str, "constant"),
            disable_last_norm=s.optional("disable_last_norm", bool, True),
            layernorm=s.optional("layernorm", str, "RMSNorm"),
            layernorm_eps=s.optional("layernorm_eps", float, 1e-5),
            layernorm_elementwise_affine=s.optional("layernorm_elementwise_affine", bool, True),
            conv_bias=s.optional("conv_bias", bool, True),
            layer_scale_init_value=s.optional("layer_scale_init_value", float, 1e-6),
        )
        supported = {"mixer_layer": ("depthwise_conv", "conv"), "conv_norm": ("none",), "pad_mode": ("constant",),
                     "layernorm": ("RMSNorm", "LN")}
        for key, allowed in supported.items():
            if getattr(config, key) not in allowed:
                raise WeightsError(f"{where}: field {key!r} is {getattr(config, key)!r}; this implementation "
                                   f"supports {', '.join(map(repr, allowed))}")
        if not config.causal:
            raise WeightsError(f"{where}: field 'causal' is false; only the causal (streaming) tokenizer is supported")
        return config


@dataclass(frozen=True)
class DiffusionHeadConfig:
    """The head predicting one latent (latent_size) from an LM hidden state (hidden_size)."""

    hidden_size: int
    head_layers: int
    latent_size: int
    head_ffn_ratio: float = 3.0
    rms_norm_eps: float = 1e-5
    prediction_type: str = "v_prediction"
    ddpm_num_steps: int = 1000
    ddpm_num_inference_steps: int = 20
    ddpm_beta_schedule: str = "cosine"

    @classmethod
    def from_dict(cls, data: Any, where: str) -> DiffusionHeadConfig:
        s = _Section(data, where)
        config = cls(
            hidden_size=s.positive("hidden_size", s.required("hidden_size", int)),
            head_layers=s.required("head_layers", int),
            latent_size=s.positive("latent_size", s.required("latent_size", int)),
            head_ffn_ratio=s.optional("head_ffn_ratio", float, 3.0),
            rms_norm_eps=s.optional("rms_norm_eps", float, 1e-5),
            prediction_type=s.optional("prediction_type", str, "v_prediction"),
            ddpm_num_steps=s.positive("ddpm_num_steps", s.optional("ddpm_num_steps", int, 1000)),
            ddpm_num_inference_steps=s.optional("ddpm_num_inference_steps", int, 20),
            ddpm_beta_schedule=s.optional("ddpm_beta_schedule", str, "cosine"),
        )
        if config.prediction_type not in ("v_prediction", "epsilon"):
            raise WeightsError(f"{where}: field 'prediction_type' is {config.prediction_type!r}; expected "
                               f"'v_prediction' or 'epsilon'")
        return config


QWEN2_REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size")


@dataclass(frozen=True)
class StreamingModelConfig:
    """VibeVoice-Realtime (`model_type` "vibevoice_streaming"): the whole `config.json`."""

    acoustic: AcousticTokenizerConfig
    head: DiffusionHeadConfig
    decoder: dict[str, Any]
    tts_backbone_num_hidden_layers: int
    path: str

    @property
    def hidden_size(self) -> int:
        return int(self.decoder["hidden_size"])

    @property
    def lm_num_hidden_layers(self) -> int:
        return int(self.decoder["num_hidden_layers"]) - self.tts_backbone_num_hidden_layers

    def fingerprint(self) -> dict[str, Any]:
        """The facts a cached voice prompt depends on (layer counts and attention shapes)."""
        d = self.decoder
        return {"hidden_size": self.hidden_size, "lm_layers": self.lm_num_hidden_layers,
                "tts_lm_layers": self.tts_backbone_num_hidden_layers,
                "num_key_value_heads": int(d.get("num_key_value_heads") or d["num_attention_heads"]),
                "head_dim": int(d.get("head_dim") or d["hidden_size"] // d["num_attention_heads"]),
                "vae_dim": self.acoustic.vae_dim}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> StreamingModelConfig:
        s = _Section(data, where)
        model_type = s.optional("model_type", str, "vibevoice_streaming")
        if model_type != "vibevoice_streaming":
            raise WeightsError(f"{where}: model_type is {model_type!r}; expected 'vibevoice_streaming' "
                               f"(VibeVoice-Realtime)")
        decoder = s.section("decoder_config")
        if decoder.optional("model_type", str, "qwen2") != "qwen2":
            raise WeightsError(f"{decoder.where}: model_type is {decoder.data.get('model_type')!r}; expected 'qwen2'")
        for key in QWEN2_REQUIRED:
            decoder.positive(key, decoder.required(key, int))
        tts_layers = s.positive("tts_backbone_num_hidden_layers", s.optional("tts_backbone_num_hidden_layers", int, 20))
        if tts_layers >= decoder.data["num_hidden_layers"]:
            raise WeightsError(f"{where}: tts_backbone_num_hidden_layers {tts_layers} must be below "
                               f"decoder_config.num_hidden_layers {decoder.data['num_hidden_layers']}")
        acoustic = AcousticTokenizerConfig.from_dict(s.required("acoustic_tokenizer_config", dict),
                                                     f"{where}.acoustic_tokenizer_config")
        head = DiffusionHeadConfig.from_dict(s.required("diffusion_head_config", dict), f"{where}.diffusion_head_config")
        if head.latent_size != acoustic.vae_dim:
            raise WeightsError(f"{where}: diffusion_head_config.latent_size {head.latent_size} differs from "
                               f"acoustic_tokenizer_config.vae_dim {acoustic.vae_dim}")
        if head.hidden_size != decoder.data["hidden_size"]:
            raise WeightsError(f"{where}: diffusion_head_config.hidden_size {head.hidden_size} differs from "
                               f"decoder_config.hidden_size {decoder.data['hidden_size']}")
        return cls(acoustic, head, dict(decoder.data), tts_layers, where)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise WeightsError(f"config not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise WeightsError(f"{path} is not readable JSON: {error}") from None


def config_fields(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]
