"""`vibevoice-acoustic`: the sigma-VAE acoustic tokenizer as a registered `codec` component.

Loads a standalone tokenizer folder (`config.json` of model_type "vibevoice_acoustic_tokenizer",
keys `encoder.*` / `decoder.*`, or the encoder-only "vibevoice_semantic_tokenizer": its
`encode` gives the semantic features, and it cannot decode) or the tokenizer inside a VibeVoice model folder
(`acoustic_tokenizer_config` section, keys `model.acoustic_tokenizer.*`). Either half may be
absent from a checkpoint; a half that is present must be complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import Field

from voxpipe.core.component import Component, Params
from voxpipe.core.errors import ConfigError, WeightsError
from voxpipe.plugins.vibevoice.acoustic import AcousticTokenizer
from voxpipe.plugins.vibevoice.config import AcousticTokenizerConfig, read_json
from voxpipe.plugins.vibevoice.convolutions import ConvStream
from voxpipe.plugins.vibevoice.loading import (
    load_strict,
    model_folder,
    read_state_dict,
    take_prefix,
)

STANDALONE_TYPE = "vibevoice_acoustic_tokenizer"
SEMANTIC_TYPE = "vibevoice_semantic_tokenizer"  # encoder only (VibeVoice's semantic tokenizer)
MODEL_PREFIX = "model.acoustic_tokenizer."


class AcousticCodecParams(Params):
    model: str | None = Field(None, description="model folder (config.json + safetensors; local path or "
                                                "hf://org/repo[/path]); None inside a vibevoice synthesizer: "
                                                "the synthesizer's own model folder")
    sample_rate: int = Field(24000, gt=0, description="Hz of the audio (the official tokenizer is 24 kHz)")
    device: str = Field("cpu", description="torch device")


def read_tokenizer(folder: Path, state: dict[str, torch.Tensor] | None = None) -> AcousticTokenizer:
    """The tokenizer of a standalone or whole-model folder, strictly loaded.

    state: the folder's tensors when already read (the keys used are removed from it)."""
    config_path = folder / "config.json"
    data = read_json(config_path)
    if isinstance(data, dict) and "acoustic_tokenizer_config" in data:
        config = AcousticTokenizerConfig.from_dict(data["acoustic_tokenizer_config"],
                                                   f"{config_path}: acoustic_tokenizer_config")
        prefix = MODEL_PREFIX
    elif isinstance(data, dict) and data.get("model_type") in (STANDALONE_TYPE, SEMANTIC_TYPE):
        config = AcousticTokenizerConfig.from_dict(data, str(config_path), with_decoder=data["model_type"] == STANDALONE_TYPE)
        prefix = ""
    else:
        found = data.get("model_type") if isinstance(data, dict) else type(data).__name__
        raise WeightsError(f"{config_path}: model_type {found!r} is neither a VibeVoice tokenizer "
                           f"({STANDALONE_TYPE!r}, {SEMANTIC_TYPE!r}) nor a model with an 'acoustic_tokenizer_config' section")
    state = read_state_dict(folder) if state is None else state
    mine = take_prefix(state, prefix) if prefix else {k: state.pop(k) for k in list(state)
                                                     if k.startswith(("encoder.", "decoder."))}
    if prefix == "" and state:
        raise WeightsError(f"{folder}: unexpected keys in a standalone tokenizer: {', '.join(sorted(state)[:5])}")
    halves = {half: take_prefix(mine, f"{half}.") for half in ("encoder", "decoder")}
    if mine:
        raise WeightsError(f"{folder}: unexpected tokenizer keys: {', '.join(sorted(mine)[:5])}")
    if not halves["encoder"] and not halves["decoder"]:
        raise WeightsError(f"{folder}: no acoustic tokenizer weights (no keys under {prefix or ''}encoder./decoder.)")
    model = AcousticTokenizer(config, encoder=bool(halves["encoder"]), decoder=bool(halves["decoder"]))
    for half, tensors in halves.items():
        if tensors:
            load_strict(getattr(model, half), tensors, str(folder), f"{prefix}{half}.")
    return model.eval()


class DecodeStream:
    """Latents -> audio frame by frame: `decode(latents (B, T, D)) -> (B, C, T * hop)`; the
    concatenation of the pieces equals one whole-sequence decode."""

    def __init__(self, codec: AcousticCodec) -> None:
        self.codec = codec
        self.state = ConvStream()

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.codec.model.decode(self.codec.check_latents(latents), self.state)


class AcousticCodec(Component):
    """Audio <-> latents. Attributes: sample_rate (Hz), hop_length (samples per latent frame),
    latent_dim, has_encoder, has_decoder."""

    kind: ClassVar[str] = "codec"
    name: ClassVar[str] = "vibevoice-acoustic"
    description: ClassVar[str] = "VibeVoice sigma-VAE acoustic tokenizer (24 kHz <-> 7.5 Hz latents, streamed decode)"
    Params: ClassVar[type[Params]] = AcousticCodecParams

    def __init__(self, *, model: str | None, sample_rate: int, device: str) -> None:
        self.sample_rate = sample_rate
        self.device = torch.device(device)
        self.model: AcousticTokenizer | None = None
        if model is not None:
            from voxpipe.core.weights import resolve_path

            self.attach(read_tokenizer(model_folder(resolve_path(model, what="VibeVoice acoustic tokenizer"))))

    def attach(self, model: AcousticTokenizer) -> None:
        """Use an already built tokenizer (e.g. the one inside a VibeVoice model)."""
        self.model = model.to(self.device).eval()

    def _loaded(self) -> AcousticTokenizer:
        if self.model is None:
            raise ConfigError("codec 'vibevoice-acoustic' has no weights: set its 'model' to a tokenizer folder")
        return self.model

    @property
    def hop_length(self) -> int:
        return self._loaded().config.hop_length

    @property
    def latent_dim(self) -> int:
        return self._loaded().config.vae_dim

    @property
    def has_encoder(self) -> bool:
        return self._loaded().encoder is not None

    @property
    def has_decoder(self) -> bool:
        return self._loaded().decoder is not None

    def check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        model = self._loaded()
        if model.decoder is None:
            raise WeightsError("this VibeVoice acoustic tokenizer checkpoint has no decoder weights")
        if latents.dim() != 3 or latents.shape[-1] != model.config.vae_dim or latents.shape[1] < 1:
            raise ConfigError(f"latents must be (batch, frames >= 1, {model.config.vae_dim}); got {tuple(latents.shape)}")
        if not bool(torch.isfinite(latents).all()):
            raise ConfigError("latents contain non-finite values")
        return latents.to(self.device, next(model.parameters()).dtype)

    @torch.inference_mode()
    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (N,), (C, N) or (B, C, N) at `sample_rate` -> latent means (B, ceil(N / hop), D)."""
        model = self._loaded()
        if model.encoder is None:
            raise WeightsError("this VibeVoice acoustic tokenizer checkpoint has no encoder weights")
        while audio.dim() < 3:
            audio = audio.unsqueeze(0)
        if audio.shape[1] != model.config.channels or audio.shape[-1] < 1:
            raise ConfigError(f"audio must be (batch, {model.config.channels}, samples >= 1); got {tuple(audio.shape)}")
        if not bool(torch.isfinite(audio).all()):
            raise ConfigError("audio contains non-finite values")
        return model.encode(audio.to(self.device, next(model.parameters()).dtype))

    @torch.inference_mode()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, T, D) -> audio (B, C, T * hop) at `sample_rate`."""
        return self._loaded().decode(self.check_latents(latents))

    def stream(self) -> DecodeStream:
        """A frame-by-frame decoder keeping the causal convolutions' state."""
        self._loaded()
        return DecodeStream(self)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"sample_rate": self.sample_rate}
        if self.model is not None:
            info.update(hop_length=self.hop_length, latent_dim=self.latent_dim,
                        encoder=self.has_encoder, decoder=self.has_decoder)
        return info
