"""LinaCodec's feature upsampler and the dual-head (24 kHz + 48 kHz) Vocos model of LuxTTS."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from voxpipe.plugins.vocos.config import GROUP_NORM_GROUPS, BackboneSpec, HeadSpec, MelSpec, UpsamplerSpec
from voxpipe.plugins.vocos.modules import ISTFTHead, Linear, VocosModel

GROUP_NORM_EPS = 1e-6
SNAKE_EPS = 1e-9


class Snake1d(nn.Module):
    """x + sin(alpha x)^2 / alpha, with one learned alpha per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T)."""
        return x + (self.alpha + SNAKE_EPS).reciprocal() * torch.sin(self.alpha * x).pow(2)


@dataclass(frozen=True)
class GroupNormStats:
    """Per-(batch item, group) statistics a GroupNorm uses: mean and 1 / sqrt(var + eps), (B, G)."""

    mean: torch.Tensor
    rstd: torch.Tensor


def group_norm(norm: nn.GroupNorm, x: torch.Tensor, stats: GroupNormStats | None) -> torch.Tensor:
    """norm(x) for x (B, C, T), with `stats` (e.g. of the whole utterance) instead of x's own."""
    if stats is None:
        return norm(x)
    batch, channels, frames = x.shape
    grouped = x.reshape(batch, norm.num_groups, -1)
    mean, rstd = stats.mean.to(x.dtype), stats.rstd.to(x.dtype)  # a bf16 upsampler gets float32 stats
    normalized = ((grouped - mean[..., None]) * rstd[..., None]).reshape(batch, channels, frames)
    return normalized * norm.weight[:, None] + norm.bias[:, None]


class GroupStatsAccumulator:
    """Streams GroupNorm statistics over pieces of a sequence (sums in float64), so chunked
    decoding can normalise every chunk with the statistics of the whole sequence."""

    def __init__(self, norm: nn.GroupNorm):
        self.groups, self.eps = norm.num_groups, norm.eps
        self.count = 0
        self.total: torch.Tensor | float = 0.0
        self.total_sq: torch.Tensor | float = 0.0

    def add(self, x: torch.Tensor) -> None:
        """x (B, C, t): the input of the GroupNorm for some frames, each frame added once."""
        grouped = x.double().reshape(x.shape[0], self.groups, -1)
        self.count += grouped.shape[-1]
        self.total = self.total + grouped.sum(-1)
        self.total_sq = self.total_sq + grouped.square().sum(-1)

    def finish(self, dtype: torch.dtype) -> GroupNormStats:
        mean = self.total / self.count
        var = (self.total_sq / self.count - mean.square()).clamp(min=0)  # biased, as GroupNorm
        return GroupNormStats(mean.to(dtype), (var + self.eps).rsqrt().to(dtype))


class ResnetBlock(nn.Module):
    """(GroupNorm -> Snake -> Conv k=3) twice, plus the input. Channels in = channels out."""

    def __init__(self, channels: int):
        super().__init__()
        self.snake1 = Snake1d(channels)
        self.norm1 = nn.GroupNorm(GROUP_NORM_GROUPS, channels, eps=GROUP_NORM_EPS)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.norm2 = nn.GroupNorm(GROUP_NORM_GROUPS, channels, eps=GROUP_NORM_EPS)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.snake2 = Snake1d(channels)

    def forward(self, x: torch.Tensor, stats1: GroupNormStats | None = None, stats2: GroupNormStats | None = None,
                stop_before_norm2: bool = False) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T); or, with `stop_before_norm2`, the input of norm2."""
        h = self.conv1(self.snake1(group_norm(self.norm1, x, stats1)))
        if stop_before_norm2:
            return h
        h = self.conv2(self.snake2(group_norm(self.norm2, h, stats2)))
        return x + h


class UpSamplerBlock(nn.Module):
    """Per stage: ConvTranspose1d (x factor frames, half the channels) + ResnetBlock; then a
    Linear back to the input width and a Snake.

    GroupNorm takes its statistics over the whole sequence, so this block is not local in time.
    For chunked decoding, `forward` accepts whole-sequence statistics (`stats`) and can stop at the
    input of any GroupNorm to collect them (`stop_before`); see docs/vocoders.md.
    """

    def __init__(self, spec: UpsamplerSpec):
        super().__init__()
        self.upsample_layers = nn.ModuleList()
        self.resnet_blocks = nn.ModuleList()
        for stage, (kernel, factor) in enumerate(zip(spec.kernel_sizes, spec.upsample_factors)):
            c_in, c_out = spec.in_channels >> stage, spec.in_channels >> (stage + 1)
            self.upsample_layers.append(
                nn.ConvTranspose1d(c_in, c_out, kernel_size=kernel, stride=factor, padding=(kernel - factor) // 2)
            )
            self.resnet_blocks.append(ResnetBlock(c_out))
        width = spec.in_channels >> len(spec.upsample_factors)
        self.out_proj = Linear(width, spec.in_channels)
        self.final_snake = Snake1d(spec.in_channels)

    compute_dtype = torch.float32  # the weights' dtype (DualHeadVocosModel.use_dtype); the output is float32

    @property
    def factor(self) -> int:
        """Output frames per input frame."""
        return math.prod(layer.stride[0] for layer in self.upsample_layers)

    def group_norms(self) -> list[nn.GroupNorm]:
        """Every GroupNorm in the order the forward pass applies them."""
        return [norm for block in self.resnet_blocks for norm in (block.norm1, block.norm2)]

    def norm_rate(self, index: int) -> int:
        """Frames per input frame at the input of GroupNorm `index`."""
        return math.prod(layer.stride[0] for layer in self.upsample_layers[: index // 2 + 1])

    def forward(self, x: torch.Tensor, stats: list[GroupNormStats] | None = None,
                stop_before: int | None = None) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T * factor).

        stats: statistics to use for the first len(stats) GroupNorms instead of their input's own.
        stop_before: return the input of GroupNorm number `stop_before` (B, C', T * norm_rate) instead.
        """
        stats = list(stats or [])
        x = x.to(self.compute_dtype)

        def given(index: int) -> GroupNormStats | None:
            return stats[index] if index < len(stats) else None

        for stage, (upsample, block) in enumerate(zip(self.upsample_layers, self.resnet_blocks)):
            x = upsample(x)
            if stop_before == 2 * stage:
                return x
            x = block(x, given(2 * stage), given(2 * stage + 1), stop_before_norm2=stop_before == 2 * stage + 1)
            if stop_before == 2 * stage + 1:
                return x
        return self.final_snake(self.out_proj(x.transpose(1, 2)).transpose(1, 2)).float()


class DualHeadVocosModel(VocosModel):
    """VocosModel + upsampler + head_48k: the LuxTTS `vocoder/vocos.bin` state-dict layout."""

    def __init__(
        self, mel: MelSpec, backbone: BackboneSpec, head: HeadSpec, upsampler: UpsamplerSpec, head_48k: HeadSpec
    ):
        super().__init__(mel, backbone, head)
        self.upsampler = UpSamplerBlock(upsampler)
        self.head_48k = ISTFTHead(head_48k)

    def use_dtype(self, dtype: torch.dtype) -> None:
        """The backbone and the upsampler in `dtype`; both heads and their ISTFTs float32."""
        super().use_dtype(dtype)
        self.upsampler.to(dtype)
        self.upsampler.compute_dtype = dtype
