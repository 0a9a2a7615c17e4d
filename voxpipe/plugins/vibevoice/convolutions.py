"""Causal 1-D convolutions of the sigma-VAE, whole-sequence and streamed.

Attribute names follow the official checkpoints (`conv.conv.weight`, `convtr.convtr.weight`) so
the state dicts load as they are. A streamed call passes a `ConvStream`: each convolution keeps
the tail of its input there, so feeding a sequence chunk by chunk gives the same samples as
feeding it whole (exactly, for stride-1 convolutions and the transposed upsamplers).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvStream:
    """Per-convolution input tails of one streamed sequence (batch kept as given)."""

    def __init__(self) -> None:
        self.tails: dict[int, torch.Tensor] = {}

    def get(self, module: nn.Module) -> torch.Tensor | None:
        return self.tails.get(id(module))

    def put(self, module: nn.Module, tail: torch.Tensor) -> None:
        self.tails[id(module)] = tail.detach()


class _Conv1dHolder(nn.Module):
    """Holds the `nn.Conv1d` under `.conv` (the official `NormConv1d` without a norm)."""

    def __init__(self, conv: nn.Conv1d) -> None:
        super().__init__()
        self.conv = conv


class _ConvTranspose1dHolder(nn.Module):
    def __init__(self, convtr: nn.ConvTranspose1d) -> None:
        super().__init__()
        self.convtr = convtr


class CausalConv1d(nn.Module):
    """Conv1d with all padding on the left: output frame i sees input frames <= i * stride.

    x (B, C_in, T) -> (B, C_out, ceil(T / stride)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.conv = _Conv1dHolder(nn.Conv1d(in_channels, out_channels, kernel_size, stride, groups=groups, bias=bias))
        self.kernel_size = kernel_size
        self.stride = stride
        # Left context: what the official code pads with zeros and its streaming cache keeps.
        self.context = kernel_size - stride

    def forward(self, x: torch.Tensor, stream: ConvStream | None = None) -> torch.Tensor:
        if stream is None:
            length = x.shape[-1]
            frames = math.ceil((length - self.kernel_size + self.context) / self.stride + 1)
            right = (frames - 1) * self.stride + self.kernel_size - self.context - length
            return self.conv.conv(F.pad(x, (self.context, max(right, 0))))
        if self.stride != 1:
            raise ValueError("streamed calls are supported for stride-1 convolutions only (the decoder)")
        tail = stream.get(self)
        if tail is None:
            tail = x.new_zeros(x.shape[0], x.shape[1], self.context)
        joined = torch.cat([tail, x], dim=-1)
        if self.context > 0:
            stream.put(self, joined[..., joined.shape[-1] - self.context:])
        return self.conv.conv(joined)


# Inputs up to this many frames go through `_conv_transpose_as_gemm` (see there).
SHORT_INPUT_FRAMES = 32


def _conv_transpose_as_gemm(conv: nn.ConvTranspose1d, x: torch.Tensor) -> torch.Tensor:
    """conv(x) for x (B, C_in, T) -> (B, C_out, (T - 1) * stride + K), as one GEMM of x with the
    weight viewed as (C_in, C_out * K) and an overlap-add (`fold`) of the K-sample pieces.

    The same sums as torch's transposed convolution in another order (~1e-6 relative). torch's
    own kernels took 55-85 ms for the decoder's first upsampler (2048 -> 1024 channels, K 16,
    stride 8) on 2-16 input frames, what streaming feeds it, against 5-17 ms here, where the
    134 MB weight is read once; for long inputs (whole-utterance decoding) torch's kernels are
    as fast or faster, so they keep those (docs/vibevoice.md)."""
    batch, in_channels, frames = x.shape
    _, out_channels, kernel = conv.weight.shape
    stride = conv.stride[0]
    pieces = torch.matmul(x.transpose(1, 2), conv.weight.reshape(in_channels, out_channels * kernel))
    y = F.fold(pieces.transpose(1, 2), output_size=(1, (frames - 1) * stride + kernel),
               kernel_size=(1, kernel), stride=(1, stride))[:, :, 0]
    return y if conv.bias is None else y + conv.bias[:, None]


class CausalConvTranspose1d(nn.Module):
    """ConvTranspose1d trimmed on the right: x (B, C_in, T) -> (B, C_out, T * stride).

    Streamed, it keeps the last ceil(kernel_size / stride) - 1 inputs, all that reach its new
    samples (the official cache keeps kernel_size - 1: the same samples, more work), and returns
    the T * stride new samples.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, bias: bool = True) -> None:
        super().__init__()
        self.convtr = _ConvTranspose1dHolder(nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride, bias=bias))
        self.stride = stride
        self.trim = kernel_size - stride
        self.context = math.ceil(kernel_size / stride) - 1

    def _trimmed(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.convtr.convtr
        plain = conv.padding[0] == conv.output_padding[0] == 0 and conv.groups == conv.dilation[0] == 1
        if x.shape[-1] <= SHORT_INPUT_FRAMES and plain:
            y = _conv_transpose_as_gemm(conv, x)
        else:
            y = conv(x)
        return y[..., : y.shape[-1] - self.trim] if self.trim > 0 else y

    def forward(self, x: torch.Tensor, stream: ConvStream | None = None) -> torch.Tensor:
        if stream is None:
            return self._trimmed(x)
        tail = stream.get(self)
        joined = x if tail is None else torch.cat([tail, x], dim=-1)
        stream.put(self, joined[..., max(joined.shape[-1] - self.context, 0):])
        y = self._trimmed(joined)
        return y[..., y.shape[-1] - x.shape[-1] * self.stride:]
