"""Zipformer2 as used by ZipVoice (inference only), in plain torch.

Internal layout is time-major (T, B, C) like the reference, so matmul shapes and float32
rounding match. Module attribute names mirror the official state dict
(`encoders.{i}[.encoder].layers.{j}.self_attn_weights.in_proj.weight`, ...), which lets
`load_state_dict(strict=True)` accept the published checkpoints.

Structure of one decoder (`TTSZipformer`): in_proj -> a U-Net-shaped sequence of stacks
(downsampling factors e.g. 1,2,4,2,1; a downsampled stack is averaged down, run, repeated
back up and mixed with its input through a learned per-channel bypass) -> out_proj.

Training-time regularisers (regularizers.py) act at the `regularizers_of(self)` calls, in
training mode only once attached; everywhere else those calls are the identity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from voxpipe.core.kernels import set_fused
from voxpipe.plugins.zipvoice import native_kernels
from voxpipe.plugins.zipvoice.scaling import (
    ActivationAndLinear,
    BiasNorm,
    Linear,
    SwooshR,
    regularizers_of,
)

# Sinusoidal width of the guidance-scale input of distilled decoders: a constructor default
# the official models never override, independent of time_embed_dim.
GUIDANCE_SCALE_EMBED_DIM = 192


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding [cos(t f_k), sin(t f_k)] of a (N,) float tensor -> (N, dim).

    f_k = max_period^(-k/half), k < half = dim // 2; an odd `dim` gets a trailing zero column.
    `t` is used as given (flow time in [0, 1] or a guidance scale, not multiplied by 1000).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(0, half, dtype=torch.float32, device=timesteps.device) / half
    )
    args = timesteps[..., None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = torch.cat([embedding, torch.zeros_like(embedding[..., :1])], dim=-1)
    return embedding


def compact_rel_pos_encoding(seq_len: int, pos_dim: int, device: torch.device | None = None) -> Tensor:
    """Zipformer's compact relative positional encoding -> (1, 2*seq_len - 1, pos_dim).

    Row r encodes the offset r - (seq_len - 1). Offsets are log-compressed, squashed with atan
    and Fourier-expanded (cos at even, sin at odd columns); the last column is 1 (a bias).
    """
    offsets = torch.arange(-(seq_len - 1), seq_len, device=device).to(torch.float32).unsqueeze(1)
    freqs = 1 + torch.arange(pos_dim // 2, device=device)
    compression_length = pos_dim**0.5
    # Grows like the offset near 0 but only logarithmically for large offsets.
    compressed = (
        compression_length
        * offsets.sign()
        * ((offsets.abs() + compression_length).log() - math.log(compression_length))
    )
    length_scale = 1.0 * pos_dim / (2.0 * math.pi)
    angle = (compressed / length_scale).atan()
    encoding = torch.zeros(offsets.shape[0], pos_dim, dtype=torch.float32, device=device)
    encoding[:, 0::2] = (angle * freqs).cos()
    encoding[:, 1::2] = (angle * freqs).sin()
    encoding[:, -1] = 1.0
    return encoding.unsqueeze(0)


def relative_to_absolute(rel_scores: Tensor) -> Tensor:
    """(..., T, 2T-1) scores by relative offset -> (..., T, T) by key position.

    Key j of query i uses offset j - i, stored at column (T - 1) + j - i: in a contiguous
    (T, 2T-1) block that is flat position (T - 1) + i (2T - 2) + j, a strided view (no copy,
    no gather: 10 % of a decoder step on CPU). The ONNX exporter has no as_strided, so export
    traces the equivalent gather.
    """
    seq_len = rel_scores.shape[-2]
    if torch.onnx.is_in_onnx_export():
        query_index = torch.arange(seq_len, device=rel_scores.device).unsqueeze(1)
        key_index = torch.arange(seq_len, device=rel_scores.device).unsqueeze(0)
        column = (seq_len - 1 - query_index + key_index).expand(*rel_scores.shape[:-1], seq_len)
        return torch.gather(rel_scores, dim=-1, index=column)
    rel_scores = rel_scores.contiguous()
    width = 2 * seq_len - 1
    outer = rel_scores.shape[:-2]
    outer_strides = [stride for stride in rel_scores.stride()[:-2]]
    return rel_scores.as_strided(
        (*outer, seq_len, seq_len), (*outer_strides, width - 1, 1), rel_scores.storage_offset() + seq_len - 1
    )


class RelPositionMultiheadAttentionWeights(nn.Module):
    """Attention weights (H, B, T, T) from content (q.k) and relative-position (p.pos) scores.

    in_proj packs [queries (H*dq) | keys (H*dq) | position queries (H*dp)]; no 1/sqrt(d) factor
    (it is folded into the trained weights). Padded keys get score -1000 before the softmax.
    With the fused kernels the position scores, padding and softmax are one native pass where a
    C compiler is at hand (native_kernels.py; the sum is not rounded before the softmax).
    """

    fused: bool = False

    def __init__(self, embed_dim: int, pos_dim: int, num_heads: int, query_head_dim: int, pos_head_dim: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query_head_dim = query_head_dim
        self.pos_head_dim = pos_head_dim
        self.in_proj = Linear(embed_dim, (2 * query_head_dim + pos_head_dim) * num_heads)
        self.linear_pos = Linear(pos_dim, num_heads * pos_head_dim, bias=False)

    def forward(self, x: Tensor, pos_emb: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        """x (T, B, C), pos_emb (1, 2T-1, pos_dim), key_padding_mask (B, T) True=pad."""
        seq_len, batch_size, _ = x.shape
        heads, dq, dp = self.num_heads, self.query_head_dim, self.pos_head_dim
        regularize = regularizers_of(self)
        x = self.in_proj(x)
        q = x[..., : heads * dq].reshape(seq_len, batch_size, heads, dq).permute(2, 1, 0, 3)
        k = regularize.apply("whiten_keys", regularize.apply("balance_keys", x[..., heads * dq : 2 * heads * dq]))
        k = k.reshape(seq_len, batch_size, heads, dq).permute(2, 1, 3, 0)
        p = x[..., 2 * heads * dq :].reshape(seq_len, batch_size, heads, dp).permute(2, 1, 0, 3)
        scores = torch.matmul(q, k)  # (H, B, T_query, T_key)

        if not regularize.happens("pos_emb_skip_rate"):
            pos = self.linear_pos(pos_emb).reshape(-1, 2 * seq_len - 1, heads, dp).permute(2, 0, 3, 1)  # (H, 1, dp, 2T-1)
            if self.fused and pos.shape[1] == 1:  # one native pass: position scores, padding, softmax
                weights = native_kernels.relative_attention_weights(scores, p, pos[:, 0], key_padding_mask)
                if weights is not None:
                    return weights
            rel_scores = torch.matmul(p, pos)  # (H, B, T_query, 2T-1), last axis = relative offset
            scores = scores + relative_to_absolute(rel_scores)
        scores = regularize.apply("penalize_scores", scores)

        if key_padding_mask is not None and bool(key_padding_mask.any()):
            scores = scores.masked_fill(key_padding_mask.unsqueeze(1), -1000)
        return scores.softmax(dim=-1)


class SelfAttention(nn.Module):
    """Value projection + weighted sum with precomputed weights + output projection."""

    def __init__(self, embed_dim: int, num_heads: int, value_head_dim: int) -> None:
        super().__init__()
        self.in_proj = Linear(embed_dim, num_heads * value_head_dim)
        self.out_proj = Linear(num_heads * value_head_dim, embed_dim)

    def forward(self, x: Tensor, attn_weights: Tensor) -> Tensor:
        """x (T, B, C), attn_weights (H, B, T, T) -> (T, B, C)."""
        seq_len, batch_size, _ = x.shape
        heads = attn_weights.shape[0]
        v = self.in_proj(x).reshape(seq_len, batch_size, heads, -1).permute(2, 1, 0, 3)
        out = torch.matmul(attn_weights, v)  # (H, B, T, dv)
        out = out.permute(2, 1, 0, 3).reshape(seq_len, batch_size, -1)
        return regularizers_of(self).apply("whiten", self.out_proj(out))


class FeedforwardModule(nn.Module):
    """Linear -> SwooshL -> Linear."""

    def __init__(self, embed_dim: int, feedforward_dim: int) -> None:
        super().__init__()
        self.in_proj = Linear(embed_dim, feedforward_dim)
        self.out_proj = ActivationAndLinear(feedforward_dim, embed_dim, activation="SwooshL")

    def forward(self, x: Tensor) -> Tensor:
        regularize = regularizers_of(self)
        hidden = regularize.apply("hidden_balancer", self.in_proj(x))
        return regularize.apply("out_whiten", self.out_proj(hidden))


class NonlinAttention(nn.Module):
    """Gated "attention as convolution": (tanh(s) * x) mixed over time by one head's weights, * y."""

    def __init__(self, channels: int, hidden_channels: int) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.in_proj = Linear(channels, 3 * hidden_channels)
        self.out_proj = Linear(hidden_channels, channels)

    def forward(self, x: Tensor, attn_weights: Tensor) -> Tensor:
        """x (T, B, C), attn_weights (H', B, T, T) (the layer passes only its first head)."""
        seq_len, batch_size, _ = x.shape
        regularize = regularizers_of(self)
        s, x, y = self.in_proj(x).chunk(3, dim=2)
        s = torch.tanh(regularize.apply("balancer", s))
        x = regularize.apply("whiten1", x) * s
        heads = attn_weights.shape[0]
        x = x.reshape(seq_len, batch_size, heads, -1).permute(2, 1, 0, 3)
        x = torch.matmul(attn_weights, x)
        x = x.permute(2, 1, 0, 3).reshape(seq_len, batch_size, -1)
        return regularize.apply("whiten2", self.out_proj(x * y))


class ConvolutionModule(nn.Module):
    """GLU -> depthwise conv over time ('same' padding, padded frames zeroed) -> SwooshR -> Linear."""

    def __init__(self, channels: int, kernel_size: int) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"convolution kernel size must be odd, got {kernel_size}")
        self.in_proj = Linear(channels, 2 * channels)
        self.depthwise_conv = nn.Conv1d(
            channels, channels, kernel_size=kernel_size, groups=channels, padding=kernel_size // 2
        )
        self.out_proj = ActivationAndLinear(channels, channels, activation="SwooshR")

    fused: bool = False

    def forward(self, x: Tensor, src_key_padding_mask: Tensor | None = None) -> Tensor:
        """x (T, B, C), src_key_padding_mask (B, T) True=pad -> (T, B, C)."""
        regularize = regularizers_of(self)
        if self.fused:  # fast path: one GLU kernel instead of sigmoid + multiply
            x = nn.functional.glu(self.in_proj(x), dim=2).permute(1, 2, 0)  # (B, C, T)
        else:
            x, gate = self.in_proj(x).chunk(2, dim=2)
            x = (x * torch.sigmoid(regularize.apply("balancer1", gate))).permute(1, 2, 0)  # (B, C, T)
        if src_key_padding_mask is not None and bool(src_key_padding_mask.any()):
            # Padding must not leak into valid frames through the kernel.
            x = x.masked_fill(src_key_padding_mask.unsqueeze(1).expand_as(x), 0.0)
        if self.fused:
            x = depthwise_conv_over_time(self.depthwise_conv, x)
        else:  # the official call: oneDNN's 1-D kernel, whose sums round differently from the 2-D one
            x = self.depthwise_conv(x)
        x = regularize.apply("balancer2", x).permute(2, 0, 1)
        return self.out_proj(regularize.apply("whiten", x))


def depthwise_conv_over_time(conv: nn.Conv1d, x: Tensor) -> Tensor:
    """`conv(x)` for a depthwise `conv` over time: x (B, C, T) -> (B, C, T), channels-last strides.

    Computed as a 2-D convolution of (B, C, 1, T) in channels-last memory: the same sums, but
    on CPU oneDNN runs it with its vectorised NHWC depthwise kernel instead of the 1-D path, which
    is 10-30x slower (938 frames, 512 channels, kernel 31: 11.6 -> 0.36 ms in float32, 4.9 -> 0.31
    ms in bfloat16). For batch 1, the (T, B, C) -> (B, C, T) permute the module gives is already
    channels-last, so nothing is copied; a larger batch is copied once into (B, T, C).
    """
    batch, channels, frames = x.shape
    # Canonical channels-last strides: `x.unsqueeze(2)` would keep the permute's batch stride
    # (C, not T * C), which oneDNN does not take for channels-last, and run the slow kernel.
    x = x.transpose(1, 2).contiguous().reshape(batch, 1, frames, channels).permute(0, 3, 1, 2)  # (B, C, 1, T)
    y = nn.functional.conv2d(
        x, conv.weight.unsqueeze(2), conv.bias, padding=(0, conv.padding[0]), groups=conv.groups
    )
    return y.squeeze(2)


class BypassModule(nn.Module):
    """out = orig + (new - orig) * bypass_scale, per channel."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((embed_dim,), 0.5))

    fused: bool = False

    def forward(self, src_orig: Tensor, src: Tensor) -> Tensor:
        if self.fused:  # fast path: one pass (lerp rounds differently from the three-op form)
            return torch.lerp(src_orig, src, self.bypass_scale)
        regularize = regularizers_of(self)
        scale = regularize.apply("scale_limit", self.bypass_scale)
        keep = regularize.keep_mask("skip_rate", src)  # (B, 1): whole-layer skipping per sequence
        if keep is not None:
            scale = scale * keep
        return src_orig + (src - src_orig) * scale


class Zipformer2EncoderLayer(nn.Module):
    """One Zipformer2 layer: one set of attention weights shared by a non-linear attention and
    two self-attentions, three feed-forwards, two conv modules, BiasNorm, mid and final bypass.
    A time embedding, when given, is added before the first feed-forward and each conv module."""

    def __init__(
        self,
        embed_dim: int,
        pos_dim: int,
        num_heads: int,
        query_head_dim: int,
        pos_head_dim: int,
        value_head_dim: int,
        feedforward_dim: int,
        cnn_module_kernel: int,
    ) -> None:
        super().__init__()
        self.bypass = BypassModule(embed_dim)
        self.bypass_mid = BypassModule(embed_dim)
        self.self_attn_weights = RelPositionMultiheadAttentionWeights(
            embed_dim, pos_dim, num_heads, query_head_dim, pos_head_dim
        )
        self.self_attn1 = SelfAttention(embed_dim, num_heads, value_head_dim)
        self.self_attn2 = SelfAttention(embed_dim, num_heads, value_head_dim)
        self.feed_forward1 = FeedforwardModule(embed_dim, (feedforward_dim * 3) // 4)
        self.feed_forward2 = FeedforwardModule(embed_dim, feedforward_dim)
        self.feed_forward3 = FeedforwardModule(embed_dim, (feedforward_dim * 5) // 4)
        self.nonlin_attention = NonlinAttention(embed_dim, hidden_channels=3 * embed_dim // 4)
        self.conv_module1 = ConvolutionModule(embed_dim, cnn_module_kernel)
        self.conv_module2 = ConvolutionModule(embed_dim, cnn_module_kernel)
        self.norm = BiasNorm(embed_dim)

    def forward(
        self,
        src: Tensor,
        pos_emb: Tensor,
        time_emb: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """src (T, B, C), pos_emb (1, 2T-1, pos_dim), time_emb (B, C) or None, mask (B, T)."""
        src_orig = src
        regularize = regularizers_of(self)
        attn_weights = self.self_attn_weights(src, pos_emb=pos_emb, key_padding_mask=src_key_padding_mask)
        if time_emb is not None:
            src = src + time_emb
        # After the first residual add `src` is this layer's own tensor: later adds go in place
        # (same values, no new (T, B, C) buffer each time), except when autograd records them.
        src = src + self.feed_forward1(src)
        attention_keep = regularize.keep_mask("attention_skip_rate", src)  # (B, 1), shared by 3 modules
        na_weights = regularize.apply("const_attention_rate", attn_weights[0:1])
        na = regularize.apply("balancer_na", self.nonlin_attention(src, na_weights))
        src = _residual_add(src, _keep(na, attention_keep))
        src = _residual_add(src, _keep(self.self_attn1(src, attn_weights), attention_keep))
        if time_emb is not None:
            src = _residual_add(src, time_emb)
        conv = self.conv_module1(src, src_key_padding_mask=src_key_padding_mask)
        src = _residual_add(src, regularize.apply("conv_skip_rate", conv))
        ff2 = regularize.apply("balancer_ff2", self.feed_forward2(src))
        src = _residual_add(src, regularize.apply("ff2_skip_rate", ff2))
        src = self.bypass_mid(src_orig, src)

        src = _residual_add(src, _keep(self.self_attn2(src, attn_weights), attention_keep))
        if time_emb is not None:
            src = _residual_add(src, time_emb)
        conv = self.conv_module2(src, src_key_padding_mask=src_key_padding_mask)
        src = _residual_add(src, regularize.apply("conv_skip_rate", conv))
        ff3 = regularize.apply("balancer_ff3", self.feed_forward3(src))
        src = _residual_add(src, regularize.apply("ff3_skip_rate", ff3))
        src = self.norm(regularize.apply("balancer1", src))
        src = self.bypass(src_orig, src)
        return regularize.apply("whiten", regularize.apply("balancer2", src))


def _keep(x: Tensor, keep: Tensor | None) -> Tensor:
    """x (T, B, C) times a (B, 1) per-sequence keep mask, if any."""
    return x if keep is None else x * keep


def _residual_add(total: Tensor, term: Tensor) -> Tensor:
    """total + term, in place unless autograd must keep `total` (training): same values."""
    if torch.is_grad_enabled() and (total.requires_grad or term.requires_grad):
        return total + term
    return total.add_(term)


class Zipformer2Encoder(nn.Module):
    """A stack of layers sharing one positional encoding and one projected time embedding."""

    def __init__(self, num_layers: int, embed_dim: int, time_embed_dim: int | None, pos_dim: int, **layer_kwargs) -> None:
        super().__init__()
        self.pos_dim = pos_dim
        # (SwooshR, Linear): the Sequential indices give the official key `time_emb.1.weight`.
        self.time_emb = (
            nn.Sequential(SwooshR(), Linear(time_embed_dim, embed_dim)) if time_embed_dim is not None else None
        )
        self.layers = nn.ModuleList(
            [Zipformer2EncoderLayer(embed_dim=embed_dim, pos_dim=pos_dim, **layer_kwargs) for _ in range(num_layers)]
        )

    def forward(self, src: Tensor, time_emb: Tensor | None = None, src_key_padding_mask: Tensor | None = None) -> Tensor:
        """src (T, B, C), time_emb (B, time_embed_dim) or None, mask (B, T) -> (T, B, C)."""
        pos_emb = compact_rel_pos_encoding(src.shape[0], self.pos_dim, device=src.device).to(src.dtype)
        pos_emb = regularizers_of(self).apply("pos_dropout", pos_emb)
        if self.time_emb is not None:
            if time_emb is None:
                raise ValueError("this encoder stack needs a time embedding")
            time_emb = self.time_emb(time_emb)
        else:
            time_emb = None
        for layer in self.layers:
            src = layer(src, pos_emb, time_emb=time_emb, src_key_padding_mask=src_key_padding_mask)
        return src


class SimpleDownsample(nn.Module):
    """Frame-rate reduction by `factor`: softmax(bias)-weighted mean of each group of frames.

    The sequence is right-padded by repeating its last frame to a multiple of `factor`.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(factor))

    def forward(self, src: Tensor) -> Tensor:
        """(T, B, C) -> (ceil(T / factor), B, C)."""
        seq_len, batch_size, channels = src.shape
        factor = self.factor
        reduced_len = (seq_len + factor - 1) // factor
        pad = reduced_len * factor - seq_len
        src = torch.cat((src, src[seq_len - 1 :].expand(pad, batch_size, channels)), dim=0)
        src = src.reshape(reduced_len, factor, batch_size, channels)
        weights = self.bias.softmax(dim=0).unsqueeze(-1).unsqueeze(-1)  # (factor, 1, 1)
        return (src * weights).sum(dim=1)


def simple_upsample(src: Tensor, factor: int) -> Tensor:
    """(T, B, C) -> (T * factor, B, C), each frame repeated `factor` times."""
    seq_len, batch_size, channels = src.shape
    return src.unsqueeze(1).expand(seq_len, factor, batch_size, channels).reshape(seq_len * factor, batch_size, channels)


class DownsampledZipformer2Encoder(nn.Module):
    """Run a stack at 1/factor frame rate, upsample back and bypass-mix with the input."""

    def __init__(self, encoder: Zipformer2Encoder, dim: int, downsample: int) -> None:
        super().__init__()
        self.downsample_factor = downsample
        self.downsample = SimpleDownsample(downsample)
        self.encoder = encoder
        self.out_combiner = BypassModule(dim)

    def forward(self, src: Tensor, time_emb: Tensor | None = None, src_key_padding_mask: Tensor | None = None) -> Tensor:
        """src (T, B, C), time_emb (B, D) or None, mask (B, T) -> (T, B, C)."""
        src_orig = src
        factor = self.downsample_factor
        if src_key_padding_mask is not None:
            src_key_padding_mask = src_key_padding_mask[..., ::factor]
        src = self.encoder(self.downsample(src), time_emb=time_emb, src_key_padding_mask=src_key_padding_mask)
        src = simple_upsample(src, factor)[: src_orig.shape[0]]
        return self.out_combiner(src_orig, src)


def set_kernels(module: nn.Module, kernels: str, prepack: bool = False) -> None:
    """Choose the arithmetic of every Zipformer block under `module`.

    reference: the official operation order, bit-identical to k2-fsa/ZipVoice (parity path).
    fused: the same functions with fewer memory passes (Swoosh with its constant folded into the
    next bias; Swoosh and attention weights each in one native pass where a C compiler is at
    hand, native_kernels.py; one-pass BiasNorm, lerp bypass, GLU) and faster CPU kernels (float32 GEMMs on oneDNN, `fused_linear`;
    the depthwise convolutions in channels-last memory, `depthwise_conv_over_time`): rounding
    differs at ~1e-7 per op (bounded in tests/test_precision.py).
    prepack (fused only): bf16 Linear weights also kept in oneDNN's layout (`scaling.packed_weight`:
    the same function, a second copy of those weights in memory), packed in their first call or
    by `scaling.pack_weights`.
    """
    set_fused(module, kernels)
    if kernels == "fused":
        native_kernels.prepare()  # build/load the native kernels now, not inside the first synthesis
    for sub in module.modules():
        if hasattr(type(sub), "prepack"):
            sub.prepack = prepack and kernels == "fused"


def _per_stack(value: int | Sequence[int], num_stacks: int, what: str) -> tuple[int, ...]:
    values = (value,) if isinstance(value, int) else tuple(value)
    if len(values) == 1:
        values = values * num_stacks
    if len(values) != num_stacks:
        raise ValueError(f"{what} has {len(values)} entries for {num_stacks} stacks")
    return values


def _check_unet_factors(factors: Sequence[int]) -> None:
    """Factors must rise by doubling to the middle and fall back by halving, e.g. 1,2,4,2,1."""
    ok = factors[0] == 1 and factors[-1] == 1
    middle = len(factors) // 2
    ok = ok and all(factors[i] == 2 * factors[i - 1] for i in range(1, middle + 1))
    ok = ok and all(2 * factors[i] == factors[i - 1] for i in range(middle + 1, len(factors)))
    if not ok:
        raise ValueError(f"downsampling factors {list(factors)} are not U-Net shaped (e.g. 1,2,4,2,1)")


class TTSZipformer(nn.Module):
    """Zipformer used as ZipVoice's text encoder (one stack, no time input) and flow-matching
    decoder (U-Net of stacks, time embedding, optionally a guidance-scale embedding).

    in_proj / out_proj map in_dim -> encoder_dim -> out_dim. With `two_stream=True`
    (ZipVoice-Dialog stereo) they are pairs of projections, selected by the input width:
    index 0 for in_dim[0] (stereo), index 1 for in_dim[1] (mono).
    """

    def __init__(
        self,
        in_dim: int | tuple[int, int],
        out_dim: int | tuple[int, int],
        downsampling_factor: int | Sequence[int],
        num_encoder_layers: int | Sequence[int],
        cnn_module_kernel: int | Sequence[int],
        encoder_dim: int,
        query_head_dim: int,
        pos_head_dim: int,
        value_head_dim: int,
        num_heads: int,
        feedforward_dim: int,
        pos_dim: int,
        time_embed_dim: int | None = None,
        use_guidance_scale_embed: bool = False,
        two_stream: bool = False,
    ) -> None:
        super().__init__()
        factors = (downsampling_factor,) if isinstance(downsampling_factor, int) else tuple(downsampling_factor)
        _check_unet_factors(factors)
        num_layers = _per_stack(num_encoder_layers, len(factors), "num_encoder_layers")
        kernels = _per_stack(cnn_module_kernel, len(factors), "cnn_module_kernel")
        self.time_embed_dim = time_embed_dim
        self.two_stream = two_stream

        if two_stream:
            self.in_dims = tuple(in_dim)
            self.in_proj = nn.ModuleList([Linear(d, encoder_dim) for d in in_dim])
            self.out_proj = nn.ModuleList([Linear(encoder_dim, d) for d in out_dim])
        else:
            self.in_proj = Linear(in_dim, encoder_dim)
            self.out_proj = Linear(encoder_dim, out_dim)

        encoders: list[nn.Module] = []
        for factor, layers, kernel in zip(factors, num_layers, kernels):
            encoder: nn.Module = Zipformer2Encoder(
                num_layers=layers,
                embed_dim=encoder_dim,
                time_embed_dim=time_embed_dim,
                pos_dim=pos_dim,
                num_heads=num_heads,
                query_head_dim=query_head_dim,
                pos_head_dim=pos_head_dim,
                value_head_dim=value_head_dim,
                feedforward_dim=feedforward_dim,
                cnn_module_kernel=kernel,
            )
            if factor != 1:
                encoder = DownsampledZipformer2Encoder(encoder, dim=encoder_dim, downsample=factor)
            encoders.append(encoder)
        self.encoders = nn.ModuleList(encoders)

        self.time_embed = None
        if time_embed_dim is not None:
            self.time_embed = nn.Sequential(
                Linear(time_embed_dim, 2 * time_embed_dim), SwooshR(), Linear(2 * time_embed_dim, time_embed_dim)
            )
        self.guidance_scale_embed = None
        if use_guidance_scale_embed:
            if time_embed_dim is None:
                raise ValueError("a guidance-scale embedding needs a time embedding")
            self.guidance_scale_embed = Linear(GUIDANCE_SCALE_EMBED_DIM, time_embed_dim, bias=False)

    def _embed_time(self, t: Tensor, guidance_scale: Tensor | None) -> Tensor:
        """t (B,), guidance_scale (B,) or None -> (B, time_embed_dim)."""
        dtype = self.time_embed[0].weight.dtype
        emb = timestep_embedding(t, self.time_embed_dim).to(dtype)
        if guidance_scale is not None:
            if self.guidance_scale_embed is None:
                raise ValueError("this decoder has no guidance-scale input (not a distilled model)")
            scale_emb = timestep_embedding(guidance_scale, GUIDANCE_SCALE_EMBED_DIM).to(dtype)
            emb = emb + self.guidance_scale_embed(scale_emb)
        return self.time_embed(emb)

    def forward(
        self,
        x: Tensor,
        t: Tensor | None = None,
        padding_mask: Tensor | None = None,
        guidance_scale: Tensor | None = None,
    ) -> Tensor:
        """x (B, T, in_dim), t (B,) or None, padding_mask (B, T) True=pad,
        guidance_scale (B,) or None -> (B, T, out_dim)."""
        if self.two_stream:
            if x.shape[2] not in self.in_dims:
                raise ValueError(f"input width {x.shape[2]} is none of {self.in_dims}")
            index = self.in_dims.index(x.shape[2])
            in_proj, out_proj = self.in_proj[index], self.out_proj[index]
        else:
            in_proj, out_proj = self.in_proj, self.out_proj

        x = in_proj(x.permute(1, 0, 2))
        time_emb = None
        if t is not None:
            if self.time_embed is None:
                raise ValueError("this Zipformer takes no time input")
            time_emb = self._embed_time(t, guidance_scale)
        for module in self.encoders:
            x = module(x, time_emb=time_emb, src_key_padding_mask=padding_mask)
        return out_proj(x).permute(1, 0, 2)
