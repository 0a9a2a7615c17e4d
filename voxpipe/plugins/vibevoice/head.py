"""The VibeVoice diffusion head: predicts one acoustic latent's diffusion output (v or epsilon)
from the noisy latent, the timestep and the TTS LM's hidden state.

noisy (B, latent_size), timesteps (B,) in training-step units [0, 1000), condition (B, hidden)
-> (B, latent_size). A stack of adaLN-modulated SwiGLU layers (shift, scale and gate from the
condition + timestep embedding) and an adaLN final layer. Names match the official keys under
`model.prediction_head.`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.vibevoice.config import DiffusionHeadConfig


class RMSNorm(nn.Module):
    """RMS norm over the last axis in float32, with an optional learned scale."""

    def __init__(self, dim: int, eps: float, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return y * self.weight if self.weight is not None else y


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """t (B,) -> (B, dim): [cos(t f), sin(t f)] with f = max_period^(-k / (dim / 2))."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = t[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[:, :1])], dim=-1)
    return embedding.to(t.dtype)


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden: int, frequency_dim: int = 256) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, hidden, bias=False), nn.SiLU(),
                                 nn.Linear(hidden, hidden, bias=False))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t, self.frequency_dim))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class AdaLNLayer(nn.Module):
    """x + gate * ffn(norm(x) * (1 + scale) + shift); shift, scale, gate from the condition."""

    def __init__(self, dim: int, ffn_dim: int, cond_dim: int, eps: float) -> None:
        super().__init__()
        self.ffn = SwiGLU(dim, ffn_dim)
        self.norm = RMSNorm(dim, eps)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 3 * dim, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.adaLN_modulation(c).chunk(3, dim=-1)
        return x + gate * self.ffn(self.norm(x) * (1 + scale) + shift)


class AdaLNFinalLayer(nn.Module):
    def __init__(self, dim: int, out_dim: int, cond_dim: int, eps: float) -> None:
        super().__init__()
        self.norm_final = RMSNorm(dim, eps, affine=False)
        self.linear = nn.Linear(dim, out_dim, bias=False)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, 2 * dim, bias=False))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class DiffusionHead(nn.Module):
    def __init__(self, config: DiffusionHeadConfig) -> None:
        super().__init__()
        self.config = config
        hidden = config.hidden_size
        self.noisy_images_proj = nn.Linear(config.latent_size, hidden, bias=False)
        self.cond_proj = nn.Linear(hidden, hidden, bias=False)
        self.t_embedder = TimestepEmbedder(hidden)
        ffn = int(hidden * config.head_ffn_ratio)
        self.layers = nn.ModuleList([AdaLNLayer(hidden, ffn, hidden, config.rms_norm_eps)
                                     for _ in range(config.head_layers)])
        self.final_layer = AdaLNFinalLayer(hidden, config.latent_size, hidden, config.rms_norm_eps)

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        c = self.cond_proj(condition) + self.t_embedder(timesteps)
        x = self.noisy_images_proj(noisy)
        for layer in self.layers:
            x = layer(x, c)
        return self.final_layer(x, c)
