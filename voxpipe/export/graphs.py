"""Export-friendly forward wrappers: fixed tensor-only signatures for ONNX graphs.

Nothing here re-implements the models; each wrapper calls the torch modules the parity tests
cover and only moves the Python-side bookkeeping (list padding, per-batch reshaping, guidance
mixing) into tensor operations a tracer can record.

Graph signatures (B batch, S tokens, T frames, F feature channels, D text-condition width):

text encoder   tokens (B, S) int64, tokens_lens (B,) int64 -> text_embed (B, S, D)
fm decoder     t () float32, x (B, T, F), text_condition (B, T, D), speech_condition (B, T, F),
               guidance_scale () float32, padding_mask (B, T) bool -> v (B, T, F)
vocos network  features (B, n_mels, T) -> spectrum (B, n_fft + 2, T) [, spectrum_48k (B, n_fft' + 2, T')]

The decoder inputs are those of the official `fm_decoder.onnx` (same names, same order) plus a
trailing `padding_mask`, which batches of unequal lengths need.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from voxpipe.plugins.zipvoice.model import ZipVoice, ZipVoiceDialog

TEXT_ENCODER_INPUTS = ("tokens", "tokens_lens")
TEXT_ENCODER_OUTPUTS = ("text_embed",)
DECODER_INPUTS = ("t", "x", "text_condition", "speech_condition", "guidance_scale", "padding_mask")
DECODER_OUTPUTS = ("v",)


def is_distilled(model: ZipVoice) -> bool:
    """True when the decoder embeds the guidance scale (ZipVoice-Distill, LuxTTS)."""
    return getattr(model.fm_decoder, "guidance_scale_embed", None) is not None


def check_exportable(model: ZipVoice) -> None:
    if isinstance(model, ZipVoiceDialog):
        raise ValueError(
            f"{type(model).__name__}: ONNX export covers zipvoice and zipvoice-distill; the dialog "
            "variants add speaker-turn embeddings and a stereo decoder that these graphs do not carry"
        )


class TextEncoderGraph(nn.Module):
    """Token embedding + text encoder. tokens are prompt+target ids with one pad appended and
    right-padded with pad_id (see `pad_token_lists`); positions >= tokens_lens are masked keys."""

    def __init__(self, model: ZipVoice) -> None:
        super().__init__()
        check_exportable(model)
        self.embed = model.embed
        self.text_encoder = model.text_encoder

    def forward(self, tokens: Tensor, tokens_lens: Tensor) -> Tensor:
        positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        padding_mask = positions >= tokens_lens.unsqueeze(1)
        return self.text_encoder(self.embed(tokens), t=None, padding_mask=padding_mask)


class DistilledDecoderGraph(nn.Module):
    """One decoder call with the guidance scale as a model input."""

    def __init__(self, model: ZipVoice) -> None:
        super().__init__()
        check_exportable(model)
        if not is_distilled(model):
            raise ValueError("DistilledDecoderGraph needs a decoder with a guidance-scale embedding")
        self.model = model

    def forward(self, t: Tensor, x: Tensor, text_condition: Tensor, speech_condition: Tensor,
                guidance_scale: Tensor, padding_mask: Tensor) -> Tensor:
        return self.model.forward_fm_decoder(t, x, text_condition, speech_condition, padding_mask, guidance_scale)


class GuidedDecoderGraph(nn.Module):
    """ZipVoice's classifier-free guidance in one graph call (the rule of
    `voxpipe.plugins.flow.guidance.ClassifierFreeGuidance`): the decoder runs on the doubled batch
    [unconditional; conditional]; the unconditional half has no text, and no prompt for t > 0.5;
    v = (1 + g) v_c - g v_u with g = scale for t > 0.5, 2 * scale otherwise."""

    def __init__(self, model: ZipVoice) -> None:
        super().__init__()
        check_exportable(model)
        self.model = model

    def forward(self, t: Tensor, x: Tensor, text_condition: Tensor, speech_condition: Tensor,
                guidance_scale: Tensor, padding_mask: Tensor) -> Tensor:
        late = t > 0.5
        uncond_speech = torch.where(late, torch.zeros_like(speech_condition), speech_condition)
        doubled = self.model.forward_fm_decoder(
            t,
            torch.cat([x, x], dim=0),
            torch.cat([torch.zeros_like(text_condition), text_condition], dim=0),
            torch.cat([uncond_speech, speech_condition], dim=0),
            torch.cat([padding_mask, padding_mask], dim=0),
        )
        v_uncond, v_cond = doubled.chunk(2, dim=0)
        g = torch.where(late, guidance_scale, guidance_scale * 2.0)
        return (1 + g) * v_cond - g * v_uncond


def decoder_graph(model: ZipVoice) -> nn.Module:
    """The decoder graph this model needs: distilled (scale as input) or classifier-free guided."""
    return DistilledDecoderGraph(model) if is_distilled(model) else GuidedDecoderGraph(model)


class VocosNetworkGraph(nn.Module):
    """Vocos backbone + the head's linear layer: features (B, n_mels, T) -> (log-magnitude | phase)
    (B, n_fft + 2, T). The inverse STFT stays outside the graph (ONNX has no ISTFT operator)."""

    def __init__(self, vocos_model: nn.Module) -> None:
        super().__init__()
        self.backbone = vocos_model.backbone
        self.head_out = vocos_model.head.out

    def forward(self, features: Tensor) -> Tensor:
        return self.head_out(self.backbone(features)).transpose(1, 2)


class DualHeadVocosNetworkGraph(VocosNetworkGraph):
    """LuxTTS's dual-head vocoder network: also the upsampler + 48 kHz head's linear layer ->
    spectrum_48k (B, n_fft_48k + 2, T * upsampling factor). Resampling and the crossover stay outside."""

    def __init__(self, vocos_model: nn.Module) -> None:
        super().__init__(vocos_model)
        self.upsampler = vocos_model.upsampler
        self.head_48k_out = vocos_model.head_48k.out

    def forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        hidden = self.backbone(features)
        upsampled = self.upsampler(hidden.transpose(1, 2)).transpose(1, 2)
        return self.head_out(hidden).transpose(1, 2), self.head_48k_out(upsampled).transpose(1, 2)
