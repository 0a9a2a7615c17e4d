"""`vocos-24k`: the Vocos mel vocoder (charactr/vocos-mel-24khz layout), ZipVoice's vocoder."""

from __future__ import annotations

import math
from typing import Any

import torch
from pydantic import Field

from voxpipe.plugins.vocos.base import CheckpointVocoder, CheckpointVocoderParams
from voxpipe.plugins.vocos.config import ModelConfigError
from voxpipe.plugins.vocos.modules import VocosModel



class Vocos24k(CheckpointVocoder):
    """Vocos: ConvNeXt backbone + ISTFT head, log-mel (100 bins) -> 24 kHz waveform."""

    name = "vocos-24k"
    description = "Vocos mel vocoder (ConvNeXt + ISTFT head), e.g. charactr/vocos-mel-24khz; ZipVoice's vocoder"

    class Params(CheckpointVocoderParams):
        weights: str = Field(
            "hf://charactr/vocos-mel-24khz",
            description="directory with config.yaml + pytorch_model.bin, a checkpoint file, or hf://org/repo",
        )

    SECTIONS = ("feature_extractor", "backbone", "head")
    CHECKPOINT_NAMES = ("pytorch_model.bin", "model.safetensors")

    def __init__(self, weights: str, device: str,
                 chunk_frames: int | None, kernels: str, dtype: str):
        self.chunk_frames = chunk_frames
        specs = self._load(weights, device, kernels, dtype)
        mel, backbone, head = specs["feature_extractor"], specs["backbone"], specs["head"]
        self.sample_rate = self.feature_sample_rate = mel.sample_rate
        self.hop_length = head.hop_length
        self.feature_dim = backbone.input_channels

    def _build(self, specs: dict[str, Any]) -> VocosModel:
        mel, backbone, head = specs["feature_extractor"], specs["backbone"], specs["head"]
        config = self.files.config
        if mel.n_mels != backbone.input_channels:
            raise ModelConfigError(
                f"{config}: feature_extractor.init_args.n_mels = {mel.n_mels} but backbone.init_args.input_channels "
                f"= {backbone.input_channels}"
            )
        if head.dim != backbone.dim:
            raise ModelConfigError(
                f"{config}: head.init_args.dim = {head.dim} but backbone.init_args.dim = {backbone.dim}"
            )
        if head.hop_length != mel.hop_length:
            raise ModelConfigError(
                f"{config}: head.init_args.hop_length = {head.hop_length} but feature_extractor.init_args.hop_length "
                f"= {mel.hop_length}"
            )
        return VocosModel(mel, backbone, head)

    # ---- stages (public for tests and inspection) ----------------------------------------------
    def backbone(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, F, T) -> backbone output (B, T, D), after the final LayerNorm."""
        with torch.no_grad():
            return self.model.backbone(self._check_features(features))

    def head(self, hidden: torch.Tensor) -> torch.Tensor:
        """backbone output (B, T, D) -> wave (B, num_samples(T))."""
        with torch.no_grad():
            return self.model.head(hidden.to(self.device, torch.float32))

    # ---- decoding ---------------------------------------------------------------------------------
    def num_samples(self, num_frames: int) -> int:
        return self.model.head.istft.num_samples(num_frames)

    @property
    def context_frames(self) -> int:
        """Backbone receptive field + the frames one ISTFT window spans: chunking is exact."""
        istft = self.model.head.istft
        return self.model.backbone.receptive_field + math.ceil(istft.n_fft / istft.hop_length) + 1

    def _decode_one_pass(self, features: torch.Tensor) -> torch.Tensor:
        return self.model.head(self.model.backbone(features))
