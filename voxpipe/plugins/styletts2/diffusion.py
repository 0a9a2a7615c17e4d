"""StyleTTS2's style diffusion denoiser: the official `StyleTransformer1d` inside Karras et al.'s
(EDM) preconditioning (the official `KDiffusion.denoise_fn`), with classifier-free
`embedding_scale` guidance.

Shapes: x (B, 1, C) noisy style (C = 2 * style_dim, [acoustic | prosodic]); sigma (B,) noise
levels; embedding (B, T, E) PL-BERT hidden states of the text; features (B, C) the reference
style. The transformer sees [x repeated over T | embedding] (B, T, C + E), adds a mapping of
(noise level, reference style) to every step before each block, runs style-conditioned
self-attention blocks (AdaLayerNorm on the reference style), averages over T and projects
back to C. Guidance: out_uncond + (out - out_uncond) * scale, where the unconditional pass
replaces the text by a learned per-position `fixed_embedding` (scale 1 = one pass).

Single-speaker models (official `multispeaker: false`, e.g. LJSpeech) use the official
`Transformer1d` instead (`TextStyleDenoiser`, name `transformer`): the same layout without a
reference style: plain LayerNorms in the attention, no `to_features`, the mapping from the
noise level alone; `features` is None.
Module names follow the official checkpoints (`blocks.N.attention...`, `to_out.1`, ...).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError, TextError
from voxpipe.plugins.styletts2.layers import AdaLayerNorm


class StyleAttention(nn.Module):
    """Self-attention with layer norms on queries (`norm`) and keys/values (`norm_context`):
    style-conditioned (AdaLayerNorm) with a style_dim, plain LayerNorms without one.
    (B, T, D), (B, S) or None -> (B, T, D)."""

    def __init__(self, features: int, style_dim: int | None, num_heads: int, head_features: int) -> None:
        super().__init__()
        mid = num_heads * head_features
        self.num_heads, self.scale = num_heads, head_features ** -0.5
        self.conditioned = style_dim is not None
        self.norm = AdaLayerNorm(style_dim, features) if self.conditioned else nn.LayerNorm(features)
        self.norm_context = AdaLayerNorm(style_dim, features) if self.conditioned else nn.LayerNorm(features)
        self.to_q = nn.Linear(features, mid, bias=False)
        self.to_kv = nn.Linear(features, 2 * mid, bias=False)
        self.attention = nn.Module()
        self.attention.to_out = nn.Linear(mid, features)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.num_heads, -1).transpose(1, 2)  # (B, H, T, d)

    def _normed(self, norm: nn.Module, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        return norm(x, style) if self.conditioned else norm(x)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        q = self._heads(self.to_q(self._normed(self.norm, x, style)))
        k, v = (self._heads(t) for t in self.to_kv(self._normed(self.norm_context, x, style)).chunk(2, dim=-1))
        weights = (q @ k.transpose(-1, -2) * self.scale).softmax(dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.attention.to_out(out)


class StyleTransformerBlock(nn.Module):
    def __init__(self, features: int, style_dim: int | None, num_heads: int, head_features: int,
                 multiplier: int) -> None:
        super().__init__()
        self.attention = StyleAttention(features, style_dim, num_heads, head_features)
        self.feed_forward = nn.Sequential(nn.Linear(features, features * multiplier), nn.GELU(),
                                          nn.Linear(features * multiplier, features))

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attention(x, style)
        return x + self.feed_forward(x)


class LearnedFourierTime(nn.Module):
    """(B,) noise-level input -> (B, 1 + 2 * half): [t, sin(2 pi t w), cos(2 pi t w)], learned w."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(dim // 2))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.reshape(-1, 1)
        angles = t * self.weights.reshape(1, -1) * 2 * math.pi
        return torch.cat([t, angles.sin(), angles.cos()], dim=-1)


class _ChannelsFirst(nn.Module):
    """(B, T, C) -> (B, C, T); holds the official `to_out.0` slot (an einops Rearrange)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)


class StyleTransformer(nn.Module):
    """The official StyleTTS2 `StyleTransformer1d` (multi-speaker, no relative positions), or
    with `reference_conditioned=False` its `Transformer1d` (single-speaker: no reference style)."""

    def __init__(self, channels: int, embedding_features: int, num_layers: int, num_heads: int, head_features: int,
                 multiplier: int, embedding_max_length: int, reference_conditioned: bool = True) -> None:
        super().__init__()
        width = channels + embedding_features
        self.reference_conditioned = reference_conditioned
        style_dim = channels if reference_conditioned else None
        self.blocks = nn.ModuleList(StyleTransformerBlock(width, style_dim, num_heads, head_features, multiplier)
                                    for _ in range(num_layers))
        self.to_out = nn.Sequential(_ChannelsFirst(), nn.Conv1d(width, channels, 1))
        self.to_mapping = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width), nn.GELU())
        self.to_time = nn.Sequential(nn.Sequential(LearnedFourierTime(channels), nn.Linear(channels + 1, width)),
                                     nn.GELU())
        if reference_conditioned:
            self.to_features = nn.Sequential(nn.Linear(channels, width), nn.GELU())
        self.fixed_embedding = nn.Module()
        self.fixed_embedding.embedding = nn.Embedding(embedding_max_length, embedding_features)

    def unconditional_embedding(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, T, E) -> the learned text-free embedding of the same shape."""
        positions = torch.arange(embedding.shape[1], device=embedding.device)
        return self.fixed_embedding.embedding(positions).unsqueeze(0).expand(embedding.shape[0], -1, -1)

    def run(self, x: torch.Tensor, time: torch.Tensor, embedding: torch.Tensor,
            features: torch.Tensor | None) -> torch.Tensor:
        mapped = self.to_time(time)
        if self.reference_conditioned:
            mapped = mapped + self.to_features(features)
        mapping = self.to_mapping(mapped).unsqueeze(1)
        h = torch.cat([x.expand(-1, embedding.shape[1], -1), embedding], dim=-1)
        for block in self.blocks:
            h = block(h + mapping, features)
        return self.to_out(h.mean(dim=1, keepdim=True)).transpose(1, 2)  # (B, 1, C)

    def forward(self, x: torch.Tensor, time: torch.Tensor, embedding: torch.Tensor, features: torch.Tensor | None,
                embedding_scale: float = 1.0) -> torch.Tensor:
        out = self.run(x, time, embedding, features)
        if embedding_scale == 1.0:
            return out
        unconditional = self.run(x, time, self.unconditional_embedding(embedding), features)
        return unconditional + (out - unconditional) * embedding_scale


class StyleDenoiser(Component, nn.Module):
    """x_noisy (B, 1, C) at noise level sigma -> denoised style (B, 1, C), EDM-preconditioned:
    c_skip x + c_out net(c_in x, log(sigma) / 4), with sigma_data from the training config."""

    kind = "style_denoiser"
    name = "style_transformer"
    description = "StyleTTS2 style diffusion denoiser: StyleTransformer1d with EDM preconditioning"
    reference_conditioned = True
    """Whether the denoiser reads a reference style (`features`); False: single-speaker."""

    class Params(BaseParams):
        channels: int = Field(256, ge=2, description="style size, 2 x config style_dim")
        embedding_features: int = Field(768, ge=1, description="PL-BERT hidden size (plbert hidden_size)")
        num_layers: int = Field(3, ge=1, description="diffusion.transformer.num_layers")
        num_heads: int = Field(8, ge=1, description="diffusion.transformer.num_heads")
        head_features: int = Field(64, ge=1, description="diffusion.transformer.head_features")
        multiplier: int = Field(2, ge=1, description="diffusion.transformer.multiplier (feed-forward width factor)")
        embedding_max_length: int = Field(512, ge=1, description="positions of the learned text-free embedding "
                                          "(official: StyleTransformer1d's default 512, whatever PL-BERT's length)")
        sigma_data: float | None = Field(None, gt=0, description="diffusion.dist.sigma_data of the trained model "
                                         "(estimated during training); null: read from the synthesizer's config_path")

    def __init__(self, *, channels, embedding_features, num_layers, num_heads, head_features, multiplier,
                 embedding_max_length, sigma_data) -> None:
        nn.Module.__init__(self)
        if channels % 2:
            raise ConfigError(f"style_denoiser: channels must be even ([acoustic | prosodic]), got {channels}")
        self.channels, self.sigma_data, self.max_length = channels, sigma_data, embedding_max_length
        self._sizes = {"channels": channels, "embedding_features": embedding_features, "num_layers": num_layers,
                       "num_heads": num_heads, "head_features": head_features, "multiplier": multiplier,
                       "embedding_max_length": embedding_max_length}
        self.net = StyleTransformer(channels, embedding_features, num_layers, num_heads, head_features, multiplier,
                                    embedding_max_length, self.reference_conditioned)

    def sizes(self) -> dict:
        """The architecture's sizes (plus sigma_data when set), as the section spells them."""
        return {**self._sizes, **({"sigma_data": self.sigma_data} if self.sigma_data is not None else {})}

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float, embedding: torch.Tensor,
                features: torch.Tensor | None, embedding_scale: float = 1.0) -> torch.Tensor:
        """features: (B, C) reference style; None (and only None) for a single-speaker denoiser."""
        if (features is None) == self.reference_conditioned:
            raise ConfigError(f"style_denoiser {self.name!r}: " + ("needs a reference style (features)"
                              if self.reference_conditioned else "is single-speaker and takes no reference style"))
        if embedding.shape[1] > self.max_length:
            raise TextError(f"{embedding.shape[1]} tokens; the style diffusion reads at most {self.max_length}")
        sigmas = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1).expand(x.shape[0])
        padded = sigmas.reshape(-1, 1, 1)
        data = self.sigma_data
        if data is None:
            raise ConfigError("style_denoiser: sigma_data is not set (give it, or the model's config.yml)")
        c_skip = data ** 2 / (padded ** 2 + data ** 2)
        c_out = padded * data * (data ** 2 + padded ** 2) ** -0.5
        c_in = (padded ** 2 + data ** 2) ** -0.5
        predicted = self.net(c_in * x, torch.log(sigmas) * 0.25, embedding, features, embedding_scale)
        return c_skip * x + c_out * predicted

    def describe(self) -> dict:
        return {"channels": self.channels, "sigma_data": self.sigma_data,
                "reference_conditioned": self.reference_conditioned}


class TextStyleDenoiser(StyleDenoiser):
    """The single-speaker denoiser (official `Transformer1d`, config.yml `multispeaker: false`):
    the style is drawn from the text alone, `features` is None. Same sizes, preconditioning and
    guidance as `style_transformer`; module names follow the official checkpoints."""

    name = "transformer"
    description = "StyleTTS2 single-speaker style diffusion denoiser: Transformer1d (text only) with EDM preconditioning"
    reference_conditioned = False

