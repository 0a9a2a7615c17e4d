"""Registered acoustic-model components: zipvoice, zipvoice-distill, zipvoice-dialog,
zipvoice-dialog-stereo."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from voxpipe.core.acoustic_model import AcousticModel, check_condition_inputs
from voxpipe.core.component import Params
from voxpipe.core.conditions import Conditions
from voxpipe.plugins.zipvoice.loading import load_model
from voxpipe.plugins.zipvoice.model import (
    ZipVoice,
    ZipVoiceDialog,
    ZipVoiceDialogStereo,
    ZipVoiceDistill,
)
from voxpipe.plugins.zipvoice.scaling import pack_weights
from voxpipe.plugins.zipvoice.zipformer import set_kernels

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# ZipVoice features are the Vocos log-mel (24 kHz, hop 256) times 0.1.
FEATURE_SCALE = 0.1
HOP_LENGTHS = {"vocos": 256}


class ZipVoiceParams(Params):
    weights: str
    """Model directory (model.pt / model.safetensors, model.json or config.json, tokens.txt)."""
    checkpoint: str | None = None
    """Checkpoint file name inside `weights` (default: model.safetensors, else model.pt)."""
    config: str | None = None
    """Config file name (default: model.json, else config.json)."""
    tokens: str | None = None
    """Vocabulary file name (default: tokens.txt)."""
    device: str = "cpu"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    kernels: Literal["reference", "fused"] = "reference"
    """reference: bit-identical to the official code (parity path); fused: same math with fewer
    memory passes and faster CPU kernels, rounding differs (~1e-6 relative, tests/test_precision.py)."""
    prepack_weights: bool = True
    """bfloat16 with fused kernels on the CPU: also keep the Linear weights in oneDNN's blocked
    layout, packed at load (`scaling.packed_weight`: the same function, bit-identical for one
    utterance; full-size decoder calls 4-6 % faster) for a second copy of those weights in memory
    (~250 MB for LuxTTS). false saves that memory. No effect on other dtypes, kernels or devices."""


class ZipVoiceAcousticModel(AcousticModel):
    """ZipVoice flow-matching acoustic model (k2-fsa/ZipVoice), zero-shot from a prompt."""

    name: ClassVar[str] = "zipvoice"
    description: ClassVar[str] = "ZipVoice flow-matching acoustic model (zero-shot, Vocos 24 kHz features)"
    Params: ClassVar[type[Params]] = ZipVoiceParams
    variant: ClassVar[str] = "zipvoice"
    network: ClassVar[type] = ZipVoice  # the torch module its checkpoints hold
    onnx_counterpart: ClassVar[str | None] = "zipvoice-onnx"  # `voxpipe export onnx` target

    def __init__(
        self,
        weights: str,
        checkpoint: str | None,
        config: str | None,
        tokens: str | None,
        device: str,
        dtype: str,
        kernels: str,
        prepack_weights: bool,
    ) -> None:
        loaded = load_model(
            weights, self.variant, checkpoint=checkpoint, config=config, tokens=tokens,
            device=device, dtype=DTYPES[dtype],
        )
        self.model = loaded.model
        set_kernels(self.model, kernels, prepack=prepack_weights)
        self.packed_weights = pack_weights(self.model)  # at load, not in the first call (latency)
        self.kernels = kernels
        self.files = loaded.files
        self.device = torch.device(device)
        self.dtype = DTYPES[dtype]
        self.vocab = loaded.vocab
        self.pad_id = self.model.pad_id
        self.feature_dim = self.model.feature_dim
        self.sample_rate = loaded.sample_rate
        self.hop_length = HOP_LENGTHS.get(loaded.feature_type, 256)
        self.feat_scale = FEATURE_SCALE
        self.num_channels = self.feature_dim // self.model.feat_dim

    def condition(
        self,
        prompt_tokens: list[list[int]],
        tokens: list[list[int]],
        prompt_features: torch.Tensor,
        prompt_features_lens: torch.Tensor,
        speed: float | torch.Tensor = 1.0,
    ) -> Conditions:
        """Text encoder over prompt+text, frame count by the prompt's frames-per-token ratio.

        prompt_features (B, Tp, F) already times feat_scale; prompt_features_lens (B,) int64.
        """
        check_condition_inputs(self, prompt_tokens, tokens, prompt_features, prompt_features_lens)
        lens = torch.as_tensor(prompt_features_lens, dtype=torch.int64, device=self.device)
        with torch.no_grad():
            _, features_lens, text_condition, padding_mask = self.model.text_condition(prompt_tokens, tokens, lens, speed)
            speech_condition = self.model.speech_condition(
                prompt_features.to(device=self.device, dtype=self.dtype), lens, padding_mask.shape[1]
            )
        return Conditions(
            text_condition=text_condition,
            speech_condition=speech_condition,
            padding_mask=padding_mask,
            features_lens=features_lens,
            prompt_features_lens=lens,
        )

    def velocity(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float,
        cond: Conditions,
        guidance_scale: torch.Tensor | float | None = None,
    ) -> torch.Tensor:
        """One decoder call at state x (B, T, F) and time t (0-dim or (B,)) -> (B, T, F)."""
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device)
        if guidance_scale is not None:
            guidance_scale = torch.as_tensor(guidance_scale, dtype=torch.float32, device=x.device)
        with torch.no_grad():
            v = self.model.forward_fm_decoder(
                t, x.to(self.dtype), cond.text_condition, cond.speech_condition, cond.padding_mask, guidance_scale
            )
        return v.to(x.dtype)

    @staticmethod
    def split_output(x1: torch.Tensor, cond: Conditions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Final sampler state (B, T, F) -> what ZipVoice's `sample()` returns:

        generated (B, max gen, F): frames [prompt_len, features_len) of each item, left-aligned,
        zero-padded; generated_lens (B,) int64; prompt_part (B, max prompt_len, F) zero-padded.
        """
        prompt_lens = cond.prompt_features_lens.to(x1.device)
        generated_lens = cond.features_lens.to(x1.device) - prompt_lens
        generated = x1.new_zeros(x1.shape[0], int(generated_lens.max()), x1.shape[2])
        prompt_part = x1.new_zeros(x1.shape[0], int(prompt_lens.max()), x1.shape[2])
        for i, (start, count) in enumerate(zip(prompt_lens.tolist(), generated_lens.tolist())):
            generated[i, :count] = x1[i, start : start + count]
            prompt_part[i, :start] = x1[i, :start]
        return generated, generated_lens, prompt_part

    def describe(self) -> dict:
        info = super().describe()
        info.update(variant=self.variant, num_channels=self.num_channels, feat_scale=self.feat_scale,
                    kernels=self.kernels, packed_weights=self.packed_weights)
        return info


class ZipVoiceDistillAcousticModel(ZipVoiceAcousticModel):
    """ZipVoice-Distill: guidance scale is a model input (one decoder call per step)."""

    name: ClassVar[str] = "zipvoice-distill"
    description: ClassVar[str] = "ZipVoice-Distill (guidance scale as input, few steps); also the LuxTTS model"
    variant: ClassVar[str] = "zipvoice-distill"
    network: ClassVar[type] = ZipVoiceDistill
    onnx_counterpart: ClassVar[str | None] = "zipvoice-distill-onnx"
    uses_guidance_scale_input = True


class ZipVoiceDialogAcousticModel(ZipVoiceAcousticModel):
    """ZipVoice-Dialog: two-speaker dialogue from [S1]/[S2]-tagged text, mono output."""

    name: ClassVar[str] = "zipvoice-dialog"
    description: ClassVar[str] = "ZipVoice-Dialog: two-speaker dialogue ([S1]/[S2] turns), mono"
    variant: ClassVar[str] = "zipvoice-dialog"
    network: ClassVar[type] = ZipVoiceDialog
    onnx_counterpart: ClassVar[str | None] = None  # dialog models have no ONNX export yet


class ZipVoiceDialogStereoAcousticModel(ZipVoiceAcousticModel):
    """ZipVoice-Dialog stereo: one speaker per channel; features are 2 x mel bins, channel 0 first."""

    name: ClassVar[str] = "zipvoice-dialog-stereo"
    description: ClassVar[str] = "ZipVoice-Dialog stereo: two-speaker dialogue, one speaker per channel"
    variant: ClassVar[str] = "zipvoice-dialog-stereo"
    network: ClassVar[type] = ZipVoiceDialogStereo


COMPONENTS = (
    ZipVoiceAcousticModel,
    ZipVoiceDistillAcousticModel,
    ZipVoiceDialogAcousticModel,
    ZipVoiceDialogStereoAcousticModel,
)
