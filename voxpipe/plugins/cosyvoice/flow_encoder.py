"""The flow's token encoder (`UpsampleConformerEncoder` of CosyVoice2), official module names.

    token embeddings (1, T, D) --linear+LayerNorm, x sqrt(D)--> pre-lookahead conv (sees the next
    `pre_lookahead_len` tokens: zeros at the end, or the `context` tokens when streaming)
    --> N conformer layers (rel-pos attention, chunk-causal when streaming: chunk = static_chunk_size)
    --> x2 nearest upsampling + causal 5-tap conv --> linear+LayerNorm, x sqrt(D)
    --> 4 conformer layers (chunk = 2 x static_chunk_size) --> LayerNorm   => (1, 2T, D)

Conformer layer (pre-norm, no macaron, no conv module): x += MHA_relpos(LN(x)); x += FFN(LN(x)).
Relative positions: ESPnet's "new" scheme (Transformer-XL shift, pos_bias_u/v).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.cosyvoice.flow_config import EncoderConfig


def relative_positions(length: int, dim: int) -> torch.Tensor:
    """(1, 2L-1, dim) sinusoids for relative distances L-1 ... -(L-1) (ESPnet's rel_pos_espnet)."""
    position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * -(math.log(10000.0) / dim))
    positive = torch.zeros(length, dim)
    negative = torch.zeros(length, dim)
    positive[:, 0::2] = torch.sin(position * div_term)
    positive[:, 1::2] = torch.cos(position * div_term)
    negative[:, 0::2] = torch.sin(-1 * position * div_term)
    negative[:, 1::2] = torch.cos(-1 * position * div_term)
    return torch.cat([torch.flip(positive, [0]), negative[1:]], dim=0).unsqueeze(0)


def chunk_mask(length: int, chunk: int, device: torch.device) -> torch.Tensor | None:
    """(1, L, L) bool: frame i sees frames of its own and earlier chunks; None = full context."""
    if chunk <= 0:
        return None
    index = torch.arange(length, device=device)
    visible_end = (torch.div(index, chunk, rounding_mode="trunc") + 1) * chunk
    return (index.unsqueeze(0) < visible_end.unsqueeze(1)).unsqueeze(0)


class LinearEmbed(nn.Module):
    """Linear + LayerNorm, scaled by sqrt(D) (the official `LinearNoSubsampling` + positional scale)."""

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__()
        self.out = nn.Sequential(nn.Linear(input_size, output_size), nn.LayerNorm(output_size, eps=1e-5))
        self.scale = math.sqrt(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x) * self.scale


class RelPositionAttention(nn.Module):
    """Multi-head self-attention with relative positions (Transformer-XL / ESPnet)."""

    def __init__(self, heads: int, size: int) -> None:
        super().__init__()
        self.h, self.d_k = heads, size // heads
        self.linear_q = nn.Linear(size, size)
        self.linear_k = nn.Linear(size, size)
        self.linear_v = nn.Linear(size, size)
        self.linear_out = nn.Linear(size, size)
        self.linear_pos = nn.Linear(size, size, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.d_k))

    @staticmethod
    def rel_shift(x: torch.Tensor) -> torch.Tensor:
        """(B, H, T, 2T-1) scores over relative offsets -> (B, H, T, T) over key positions."""
        b, h, t, n = x.shape
        padded = torch.cat([x.new_zeros(b, h, t, 1), x], dim=-1).view(b, h, n + 1, t)
        return padded[:, :, 1:].view_as(x)[:, :, :, : n // 2 + 1]

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, D), pos_emb (1, 2T-1, D), mask (1, T, T) bool (True = visible) or None."""
        b, t, _ = x.shape
        q = self.linear_q(x).view(b, t, self.h, self.d_k)
        k = self.linear_k(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(x).view(b, t, self.h, self.d_k).transpose(1, 2)
        p = self.linear_pos(pos_emb).view(pos_emb.shape[0], -1, self.h, self.d_k).transpose(1, 2)
        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        position = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        if position.shape != content.shape:
            position = self.rel_shift(position)
        scores = (content + position) / math.sqrt(self.d_k)
        if mask is not None:
            hidden = ~mask.unsqueeze(1)  # (1, 1, T, T)
            attention = torch.softmax(scores.masked_fill(hidden, -float("inf")), dim=-1).masked_fill(hidden, 0.0)
        else:
            attention = torch.softmax(scores, dim=-1)
        out = torch.matmul(attention, v).transpose(1, 2).reshape(b, t, self.h * self.d_k)
        return self.linear_out(out)


class FeedForward(nn.Module):
    def __init__(self, size: int, hidden: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(size, hidden)
        self.w_2 = nn.Linear(hidden, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-norm: x += attention(LN(x)); x += FFN(LN(x)) (LayerNorm eps 1e-12 as the official)."""

    def __init__(self, size: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = RelPositionAttention(heads, size)
        self.feed_forward = FeedForward(size, hidden)
        self.norm_mha = nn.LayerNorm(size, eps=1e-12)
        self.norm_ff = nn.LayerNorm(size, eps=1e-12)

    def forward(self, x: torch.Tensor, pos_emb: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.self_attn(self.norm_mha(x), pos_emb, mask)
        return x + self.feed_forward(self.norm_ff(x))


class PreLookaheadLayer(nn.Module):
    """Each token sees the next `lookahead` ones (conv over [x, context or zeros], channels ->
    hidden), then a causal 3-tap conv (hidden -> channels); residual. CosyVoice2 runs it inside
    the encoder (hidden = channels), CosyVoice3 directly on the 80-d token embeddings (hidden 1024)."""

    def __init__(self, channels: int, lookahead: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = channels if hidden is None else hidden
        self.lookahead = lookahead
        self.conv1 = nn.Conv1d(channels, hidden, kernel_size=lookahead + 1)
        self.conv2 = nn.Conv1d(hidden, channels, kernel_size=3)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C), context (B, lookahead, C) of the tokens after x, or None (end of input)."""
        out = x.transpose(1, 2)
        if context is None:
            out = F.pad(out, (0, self.lookahead))
        else:
            out = torch.cat([out, context.transpose(1, 2)], dim=2)
        out = F.leaky_relu(self.conv1(out))
        out = self.conv2(F.pad(out, (self.conv2.kernel_size[0] - 1, 0)))
        return out.transpose(1, 2) + x


class CausalUpsample(nn.Module):
    """x `stride` nearest, then a causal conv of 2*stride+1 taps: (B, C, T) -> (B, C, stride*T)."""

    def __init__(self, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv1d(channels, channels, stride * 2 + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(x, scale_factor=float(self.stride), mode="nearest")
        return self.conv(F.pad(out, (self.stride * 2, 0)))


class UpsampleConformerEncoder(nn.Module):
    """Token embeddings (B, T, D) -> frame states (B, stride*T, D)."""

    def __init__(self, config: EncoderConfig, lookahead: int, stride: int) -> None:
        super().__init__()
        size = config.output_size
        self.config, self.stride = config, stride
        self.embed = LinearEmbed(config.input_size, size)
        # the official code hard-codes 512 channels, lookahead 3 and stride 2 here: equal to
        # output_size, pre_lookahead_len and token_mel_ratio in every official configuration
        self.pre_lookahead_layer = PreLookaheadLayer(size, lookahead)
        self.encoders = nn.ModuleList(ConformerLayer(size, config.attention_heads, config.linear_units)
                                      for _ in range(config.num_blocks))
        self.up_layer = CausalUpsample(size, stride)
        self.up_embed = LinearEmbed(config.input_size, size)
        self.up_encoders = nn.ModuleList(ConformerLayer(size, config.attention_heads, config.linear_units)
                                         for _ in range(config.num_up_blocks))
        self.after_norm = nn.LayerNorm(size, eps=1e-5)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None, streaming: bool = False) -> torch.Tensor:
        """x (B, T, D) embedded tokens; context (B, lookahead, D) embedded right-context tokens
        (not encoded themselves, only looked ahead at), or None; streaming: chunk-causal attention."""
        size = self.config.output_size
        x = self.embed(x)
        if context is not None:
            context = self.embed(context)
        chunk = self.config.static_chunk_size if streaming else 0
        pos_emb = relative_positions(x.shape[1], size).to(x)
        x = self.pre_lookahead_layer(x, context)
        mask = chunk_mask(x.shape[1], chunk, x.device)
        for layer in self.encoders:
            x = layer(x, pos_emb, mask)
        x = self.up_layer(x.transpose(1, 2)).transpose(1, 2)
        x = self.up_embed(x)
        pos_emb = relative_positions(x.shape[1], size).to(x)
        mask = chunk_mask(x.shape[1], chunk * self.stride, x.device)
        for layer in self.up_encoders:
            x = layer(x, pos_emb, mask)
        return self.after_norm(x)
