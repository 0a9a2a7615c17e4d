"""Channels-last (B, C, T) tensors for the iSTFTNet generator's bf16 stages.

A (B, C, T) tensor "in channels-last memory" here has strides (T * C, 1, C): the C values of a
time step are adjacent. oneDNN's bf16 convolutions take that layout directly as the 2-D
channels-last (B, C, 1, T) view, where a plain (B, C, T) tensor costs a reorder into its blocked
layout before and after every convolution, and its dilated ones fall back to a slower GEMM
kernel (Kokoro-82M, a 6.6 s sentence on a Zen 5: convolutions 830 -> 550 ms, the whole synthesis
1.28 -> 1.14 s; docs/performance.md). Element-wise operations keep the layout of their inputs,
so once the generator's input is converted, every stage stays in it; the instance norm is the
one operation that would return plain memory (`adain`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> the same values with strides (T * C, 1, C); no copy when already so."""
    return x.transpose(1, 2).contiguous().transpose(1, 2)


def _as_2d(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) -> (B, C, 1, T) in torch's channels-last memory format (a view when x already is
    channels-last; the copy otherwise keeps canonical strides, which oneDNN needs)."""
    batch, channels, frames = x.shape
    return to_channels_last(x).transpose(1, 2).reshape(batch, 1, frames, channels).permute(0, 3, 1, 2)


def conv1d(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` for x (B, C_in, T) -> (B, C_out, T') in channels-last memory (zero padding only)."""
    y = F.conv2d(_as_2d(x), conv.weight.unsqueeze(2), conv.bias, stride=(1, conv.stride[0]),
                 padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]), groups=conv.groups)
    return y.squeeze(2)


def conv_transpose1d(conv: nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)` for x (B, C_in, T) -> (B, C_out, T') in channels-last memory."""
    y = F.conv_transpose2d(_as_2d(x), conv.weight.unsqueeze(2), conv.bias, stride=(1, conv.stride[0]),
                           padding=(0, conv.padding[0]), output_padding=(0, conv.output_padding[0]),
                           groups=conv.groups, dilation=(1, conv.dilation[0]))
    return y.squeeze(2)


def adain(norm: nn.InstanceNorm1d, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """(1 + gamma) * norm(x) + beta for x (1, C, T) in channels-last memory, gamma and beta (1, C, 1):
    one batch norm over the time axis of the (1, C, 1, T) view (for a batch of one, its statistics
    are the instance norm's), the style folded into its affine, the result channels-last too."""
    scale = (1 + gamma.reshape(-1))
    weight = scale if norm.weight is None else scale * norm.weight
    bias = beta.reshape(-1) if norm.bias is None else scale * norm.bias + beta.reshape(-1)
    return F.batch_norm(_as_2d(x), None, None, weight, bias, True, 0.0, norm.eps).squeeze(2)
