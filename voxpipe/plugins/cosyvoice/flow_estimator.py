"""The flow's vector-field estimator (`CausalConditionalDecoder`: Matcha-TTS's 1-D U-Net with
causal convolutions, as CosyVoice2 uses it), official module names.

    [x, mu, speaker (repeated), prompt cond] (B, 4*80, T), t (B,)
    t --sinusoid (scale 1000) --Linear, SiLU, Linear--> time embedding (B, 4*channels[0])
    down: per level: causal resnet block (+ time) -> transformer blocks -> stride-2 conv (last: causal conv)
    mid:  num_mid_blocks x (causal resnet block -> transformer blocks)
    up:   per level: concat skip -> causal resnet block -> transformer blocks -> transposed conv x2
          (last: causal conv)
    -> causal block -> 1x1 conv -> velocity (B, 80, T)

Causal block: causal 3-tap conv, LayerNorm over channels, Mish. Transformer block (diffusers'
BasicTransformerBlock): x += Attn(LN(x)) (heads x head_dim inner size, no q/k/v bias); x +=
Linear(GELU(Linear(LN(x)))) (4x). Attention is full (non-streaming) or chunk-causal with
`static_chunk_size` frames per chunk (streaming).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.cosyvoice.flow_config import EstimatorConfig
from voxpipe.plugins.cosyvoice.flow_encoder import chunk_mask


def timestep_sinusoids(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """t (B,) -> (B, dim) [sin, cos] features (Matcha's SinusoidalPosEmb)."""
    half = dim // 2
    frequencies = torch.exp(torch.arange(half, device=t.device).float() * -(math.log(10000) / (half - 1)))
    angles = scale * t.unsqueeze(1) * frequencies.unsqueeze(0)
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


class CausalConv1d(nn.Conv1d):
    """Conv1d left-padded by kernel_size - 1 (stride 1)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))


class Resample(nn.Module):
    """A strided or transposed conv held as `.conv` (Matcha's Downsample1D / Upsample1D)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of (B, C, T)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class CausalBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int) -> None:
        super().__init__()
        # indices as the official Sequential(conv, Transpose, LayerNorm, Transpose, Mish)
        self.block = nn.ModuleDict({"0": CausalConv1d(dim, dim_out, 3), "2": ChannelLayerNorm(dim_out)})

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = F.mish(self.block["2"](self.block["0"](x * mask)))
        return out * mask


class CausalResnetBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, time_dim: int) -> None:
        super().__init__()
        self.mlp = nn.ModuleDict({"1": nn.Linear(time_dim, dim_out)})  # official Sequential(Mish, Linear)
        self.block1 = CausalBlock(dim, dim_out)
        self.block2 = CausalBlock(dim_out, dim_out)
        self.res_conv = nn.Conv1d(dim, dim_out, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        h = self.block1(x, mask) + self.mlp["1"](F.mish(time)).unsqueeze(-1)
        return self.block2(h, mask) + self.res_conv(x * mask)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        inner = heads * head_dim
        self.heads, self.head_dim = heads, head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_k = nn.Linear(dim, inner, bias=False)
        self.to_v = nn.Linear(dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, C); mask (B or 1, T, T) bool, True = visible, or None."""
        b, t, _ = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        attn_mask = None if mask is None else mask.unsqueeze(1)
        out = F.scaled_dot_product_attention(heads(self.to_q(x)), heads(self.to_k(x)), heads(self.to_v(x)),
                                             attn_mask=attn_mask)
        return self.to_out[0](out.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))


class GeluFeedForward(nn.Module):
    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.ModuleDict({"0": nn.ModuleDict({"proj": nn.Linear(dim, dim * mult)}),
                                  "2": nn.Linear(dim * mult, dim)})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net["2"](F.gelu(self.net["0"]["proj"](x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads, head_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = GeluFeedForward(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn1(self.norm1(x), mask)
        return x + self.ff(self.norm3(x))


class TimestepEmbedding(nn.Module):
    def __init__(self, in_channels: int, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(in_channels, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class Level(nn.ModuleList):
    """One U-Net level as the official ModuleList: [resnet block, transformer blocks, resampling
    conv] (no resampling in the mid levels)."""

    def __init__(self, dim: int, dim_out: int, time_dim: int, config: EstimatorConfig, resample: nn.Module | None):
        blocks = nn.ModuleList(TransformerBlock(dim_out, config.num_heads, config.attention_head_dim)
                               for _ in range(config.n_blocks))
        super().__init__([CausalResnetBlock(dim, dim_out, time_dim), blocks] + ([resample] if resample is not None else []))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, time: torch.Tensor, attn_mask: torch.Tensor | None):
        x = self[0](x, mask, time).transpose(1, 2)
        for block in self[1]:
            x = block(x, attn_mask)
        return x.transpose(1, 2)


class ConditionalEstimator(nn.Module):
    """Velocity v(x, t | mu, speaker, prompt) on (B, 80, T) mel frames."""

    def __init__(self, config: EstimatorConfig) -> None:
        super().__init__()
        self.config = config
        channels = config.channels
        time_dim = channels[0] * 4
        self.time_mlp = TimestepEmbedding(config.in_channels, time_dim)
        self.down_blocks = nn.ModuleList()
        previous = config.in_channels
        for i, width in enumerate(channels):
            last = i == len(channels) - 1
            resample = CausalConv1d(width, width, 3) if last else Resample(nn.Conv1d(width, width, 3, 2, 1))
            self.down_blocks.append(Level(previous, width, time_dim, config, resample))
            previous = width
        self.mid_blocks = nn.ModuleList(Level(channels[-1], channels[-1], time_dim, config, None)
                                        for _ in range(config.num_mid_blocks))
        widths = channels[::-1] + (channels[0],)
        self.up_blocks = nn.ModuleList()
        for i in range(len(widths) - 1):
            last = i == len(widths) - 2
            resample = CausalConv1d(widths[i + 1], widths[i + 1], 3) if last else \
                Resample(nn.ConvTranspose1d(widths[i + 1], widths[i + 1], 4, 2, 1))
            self.up_blocks.append(Level(widths[i] * 2, widths[i + 1], time_dim, config, resample))
        self.final_block = CausalBlock(widths[-1], widths[-1])
        self.final_proj = nn.Conv1d(widths[-1], config.out_channels, 1)

    def _attention_mask(self, mask: torch.Tensor, streaming: bool) -> torch.Tensor | None:
        """(B, T, T) bool from the frame mask (B, 1, T): padding hidden, chunk-causal if streaming."""
        frames = mask.bool()
        chunk = chunk_mask(mask.shape[-1], self.config.static_chunk_size, mask.device) if streaming else None
        visible = frames if chunk is None else frames & chunk
        visible = visible.expand(-1, mask.shape[-1], -1)
        # a row with nothing visible attends everywhere (the official add_optional_chunk_mask's rule)
        empty = ~visible.any(dim=-1, keepdim=True)
        return visible | empty

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor, spks: torch.Tensor,
                cond: torch.Tensor, streaming: bool = False) -> torch.Tensor:
        """x, mu, cond (B, 80, T); mask (B, 1, T); t (B,); spks (B, 80) -> velocity (B, 80, T)."""
        time = self.time_mlp(timestep_sinusoids(t, self.config.in_channels).to(t.dtype))
        x = torch.cat([x, mu, spks.unsqueeze(-1).expand(-1, -1, x.shape[-1]), cond], dim=1)
        hiddens, masks = [], [mask]
        for level in self.down_blocks:
            level_mask = masks[-1]
            x = level(x, level_mask, time, self._attention_mask(level_mask, streaming))
            hiddens.append(x)
            x = level[2](x * level_mask)
            masks.append(level_mask[:, :, ::2])
        masks = masks[:-1]
        mid_mask = masks[-1]
        for level in self.mid_blocks:
            x = level(x, mid_mask, time, self._attention_mask(mid_mask, streaming))
        for level in self.up_blocks:
            up_mask = masks.pop()
            skip = hiddens.pop()
            x = torch.cat([x[:, :, :skip.shape[-1]], skip], dim=1)
            x = level(x, up_mask, time, self._attention_mask(up_mask, streaming))
            x = level[2](x * up_mask)
        x = self.final_block(x, up_mask)
        return self.final_proj(x * up_mask) * mask
