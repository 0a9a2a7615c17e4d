"""The sigma-VAE acoustic tokenizer: 24 kHz audio <-> 7.5 Hz latents (3200 samples per frame).

Encoder: a causal stem conv, then per stage a stack of ConvNeXt-style blocks (norm -> depthwise
causal conv -> layer scale, residual; norm -> GELU FFN -> layer scale, residual) followed by a
strided causal conv (kernel 2r, stride r) that doubles the channels, and a head conv to `vae_dim`.
Decoder: the mirror image with causal transposed convs. Module names match the official state
dict (`encoder.downsample_layers.0.0.conv.conv.weight`, `decoder.stages.3.1.ffn.linear1.bias`, ...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.vibevoice.config import AcousticTokenizerConfig
from voxpipe.plugins.vibevoice.convolutions import (
    CausalConv1d,
    CausalConvTranspose1d,
    ConvStream,
)


class ChannelRMSNorm(nn.Module):
    """RMS norm over channels of (B, C, T), computed in float32."""

    def __init__(self, dim: int, eps: float, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.transpose(1, 2)
        normed = y.float()
        normed = (normed * torch.rsqrt(normed.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(y)
        if self.weight is not None:
            normed = normed * self.weight
        return normed.transpose(1, 2)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of (B, C, T), computed in float32."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.transpose(1, 2)
        y = F.layer_norm(y.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps).type_as(y)
        return y.transpose(1, 2)


def channel_norm(config: AcousticTokenizerConfig, dim: int, affine: bool = True) -> nn.Module:
    if config.layernorm == "LN":
        return ChannelLayerNorm(dim, eps=config.layernorm_eps)
    return ChannelRMSNorm(dim, config.layernorm_eps, affine)


class _Mixer(nn.Module):
    """Holds the block's causal conv under `.conv` (official `Convlayer`)."""

    def __init__(self, conv: CausalConv1d) -> None:
        super().__init__()
        self.conv = conv


class FeedForward(nn.Module):
    """Linear -> GELU (exact) -> Linear over the channel axis of (B, T, C)."""

    def __init__(self, dim: int, hidden: int, bias: bool) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden, bias=bias)
        self.linear2 = nn.Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(F.gelu(self.linear1(x)))


class ConvNeXtBlock(nn.Module):
    """(B, C, T) -> (B, C, T): causal depthwise-conv mixer and FFN, each residual with layer scale."""

    def __init__(self, config: AcousticTokenizerConfig, dim: int, kernel_size: int = 7) -> None:
        super().__init__()
        self.norm = channel_norm(config, dim)
        self.ffn_norm = channel_norm(config, dim)
        groups = dim if config.mixer_layer == "depthwise_conv" else 1
        self.mixer = _Mixer(CausalConv1d(dim, dim, kernel_size, groups=groups, bias=config.conv_bias))
        self.ffn = FeedForward(dim, 4 * dim, bias=config.conv_bias)
        if config.layer_scale_init_value > 0:
            self.gamma = nn.Parameter(torch.full((dim,), config.layer_scale_init_value))
            self.ffn_gamma = nn.Parameter(torch.full((dim,), config.layer_scale_init_value))
        else:
            self.gamma = self.ffn_gamma = None

    def forward(self, x: torch.Tensor, stream: ConvStream | None = None) -> torch.Tensor:
        mixed = self.mixer.conv(self.norm(x), stream)
        x = x + (mixed * self.gamma.unsqueeze(-1) if self.gamma is not None else mixed)
        fed = self.ffn(self.ffn_norm(x).transpose(1, 2)).transpose(1, 2)
        return x + (fed * self.ffn_gamma.unsqueeze(-1) if self.ffn_gamma is not None else fed)


def _stage(config: AcousticTokenizerConfig, dim: int, depth: int) -> nn.Sequential:
    return nn.Sequential(*[ConvNeXtBlock(config, dim) for _ in range(depth)])


class AcousticEncoder(nn.Module):
    """audio (B, channels, N) -> latent means (B, vae_dim, ceil(N / hop_length))."""

    def __init__(self, config: AcousticTokenizerConfig) -> None:
        super().__init__()
        ratios = list(reversed(config.encoder_ratios))  # the smallest stride acts first
        width = config.encoder_n_filters
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(CausalConv1d(config.channels, width, 7, bias=config.conv_bias))]
            + [nn.Sequential(CausalConv1d(width * 2**i, width * 2 ** (i + 1), 2 * r, stride=r, bias=config.conv_bias))
               for i, r in enumerate(ratios)])
        self.stages = nn.ModuleList([_stage(config, width * 2**i, depth)
                                     for i, depth in enumerate(config.encoder_depths)])
        last = width * 2 ** (len(config.encoder_depths) - 1)
        self.norm = nn.Identity() if config.disable_last_norm else channel_norm(
            config, last, config.layernorm_elementwise_affine)
        self.head = CausalConv1d(last, config.vae_dim, 7, bias=config.conv_bias)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = audio
        for down, stage in zip(self.downsample_layers, self.stages):
            x = down[0](x)
            for block in stage:
                x = block(x)
        return self.head(self.norm(x))


class AcousticDecoder(nn.Module):
    """latents (B, vae_dim, T) -> audio (B, channels, T * hop_length); streamable with a ConvStream."""

    def __init__(self, config: AcousticTokenizerConfig) -> None:
        super().__init__()
        width = config.decoder_n_filters
        top = len(config.decoder_depths) - 1
        self.upsample_layers = nn.ModuleList(
            [nn.Sequential(CausalConv1d(config.vae_dim, width * 2**top, 7, bias=config.conv_bias))]
            + [nn.Sequential(CausalConvTranspose1d(width * 2 ** (top - i), width * 2 ** (top - i - 1), 2 * r, r,
                                                   bias=config.conv_bias))
               for i, r in enumerate(config.decoder_ratios)])
        self.stages = nn.ModuleList([_stage(config, width * 2 ** (top - i), depth)
                                     for i, depth in enumerate(config.decoder_depths)])
        last = width * 2 ** (top - len(config.decoder_depths) + 1)
        self.norm = nn.Identity() if config.disable_last_norm else channel_norm(
            config, last, config.layernorm_elementwise_affine)
        self.head = CausalConv1d(last, config.channels, 7, bias=config.conv_bias)

    def forward(self, latents: torch.Tensor, stream: ConvStream | None = None) -> torch.Tensor:
        x = latents
        for up, stage in zip(self.upsample_layers, self.stages):
            x = up[0](x, stream)
            for block in stage:
                x = block(x, stream)
        return self.head(self.norm(x), stream)


class AcousticTokenizer(nn.Module):
    """Encoder and/or decoder of the sigma-VAE (either may be absent: a checkpoint may hold one)."""

    def __init__(self, config: AcousticTokenizerConfig, encoder: bool = True, decoder: bool = True) -> None:
        super().__init__()
        self.config = config
        self.encoder = AcousticEncoder(config) if encoder else None
        self.decoder = AcousticDecoder(config) if decoder else None

    def encode(self, audio: torch.Tensor) -> torch.Tensor:
        """audio (B, channels, N) -> latent means (B, T, vae_dim), T = ceil(N / hop_length)."""
        if self.encoder is None:
            raise RuntimeError("this acoustic tokenizer has no encoder weights")
        return self.encoder(audio).transpose(1, 2)

    def decode(self, latents: torch.Tensor, stream: ConvStream | None = None) -> torch.Tensor:
        """latents (B, T, vae_dim) -> audio (B, channels, T * hop_length). With `stream`, the frames
        continue the ones decoded before with the same stream."""
        if self.decoder is None:
            raise RuntimeError("this acoustic tokenizer has no decoder weights")
        return self.decoder(latents.transpose(1, 2), stream)
