"""Building blocks shared by StyleTTS2's text side, prosody predictor and decoder.

Shapes: B batch, C channels, T time steps (phonemes or frames), S style dimension.
Parameter names follow the official checkpoints (StyleTTS2 / Kokoro), so their state dicts load
as they are; weight-normalized convolutions are plain convolutions here: the loader folds
`g * v / |v|` into one weight (inference only, see docs/styletts2.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.styletts2 import channels_last


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channels of a (B, C, T) tensor, with the checkpoints' `gamma`/`beta`."""

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = F.layer_norm(x.transpose(1, 2), (x.shape[1],), self.gamma, self.beta, self.eps)
        return normed.transpose(1, 2)


class AdaLayerNorm(nn.Module):
    """Layer norm over channels of (B, T, C), scaled and shifted by a style: (1 + gamma) x + beta."""

    def __init__(self, style_dim: int, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(style).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, C) each
        return (1 + gamma) * F.layer_norm(x, (x.shape[-1],), eps=self.eps) + beta


class AdaIN1d(nn.Module):
    """Instance norm of (B, C, T) over time, scaled and shifted by a style (B, S).

    `norm` keeps an affine weight/bias as Kokoro's modules do; StyleTTS2 checkpoints (and
    Kokoro's own files) leave them at 1 and 0, so loaders may omit them."""

    channels_last = False  # x (1, C, T) arrives in channels-last memory: keep it so (istftnet's bf16 stages)

    def __init__(self, style_dim: int, channels: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm1d(channels, affine=True)
        self.fc = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.fc(style).unsqueeze(-1).chunk(2, dim=1)  # (B, C, 1) each
        if self.channels_last and x.shape[0] == 1:
            return channels_last.adain(self.norm, x, gamma, beta)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlock(nn.Module):
    """Residual block with AdaIN: [AdaIN, LeakyReLU(0.2), (x2 upsample), conv3] x 2, a
    (nearest-upsampled, 1x1-projected) shortcut, sum scaled by 1/sqrt(2).

    (B, C_in, T) -> (B, C_out, T or 2T). Upsampling in the residual path is a depthwise
    transposed convolution (`pool`), in the shortcut nearest-neighbour repetition."""

    def __init__(self, dim_in: int, dim_out: int, style_dim: int, upsample: bool = False) -> None:
        super().__init__()
        self.upsamples = upsample
        self.conv1 = nn.Conv1d(dim_in, dim_out, 3, padding=1)
        self.conv2 = nn.Conv1d(dim_out, dim_out, 3, padding=1)
        self.norm1 = AdaIN1d(style_dim, dim_in)
        self.norm2 = AdaIN1d(style_dim, dim_out)
        if dim_in != dim_out:
            self.conv1x1 = nn.Conv1d(dim_in, dim_out, 1, bias=False)
        if upsample:
            self.pool = nn.ConvTranspose1d(dim_in, dim_in, 3, stride=2, groups=dim_in, padding=1, output_padding=1)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsamples:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.conv1x1(x) if hasattr(self, "conv1x1") else x

    def _residual(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.norm1(x, style), 0.2)
        if self.upsamples:
            x = self.pool(x)
        x = self.conv1(x)
        x = F.leaky_relu(self.norm2(x, style), 0.2)
        return self.conv2(x)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return (self._residual(x, style) + self._shortcut(x)) / math.sqrt(2)


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """A batch-first LSTM over (B, T, C) sequences of `lengths` (B,): outputs past a sequence's
    length are 0 and the result keeps all T steps, so padding never leaks into the states."""
    total = x.shape[1]
    if bool((lengths == total).all()):
        return lstm(x)[0]
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, _ = lstm(packed)
    return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=total)[0]


def lengths_mask(lengths: torch.Tensor, total: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True at padding."""
    return torch.arange(total, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)
