"""CosyVoice3's vector-field estimator: the DiT of cosyvoice/flow/DiT (an F5-TTS-style diffusion
transformer), official module names so `flow.pt` loads as saved.

    x, cond (prompt mel), mu (B, 80, T); spks (B, 80); t (B,)
    t --sinusoid (256, scale 1000)--> Linear, SiLU, Linear --> time embedding c (B, dim)
    [x, cond, mu, spks repeated] --Linear--> (B, T, dim); += causal conv position embedding
        (two 31-tap grouped causal convs with Mish)
    depth x DiT block: AdaLN-zero from c (shift/scale/gate for attention and feed-forward);
        x += gate * Attn(AdaLN(x)) with rotary positions; x += gate * FF(AdaLN(x)) (GELU tanh)
    [long skip: Linear([x, input embedding])] -> final AdaLN (scale, shift) -> Linear -> (B, 80, T)

Attention is full (non-streaming) or chunk-causal with `static_chunk_size` frames per chunk
(streaming: frame i sees every frame up to the end of its own chunk).

The official rotary embedding (x_transformers' `RotaryEmbedding(dim_head)` applied to the
projected queries/keys BEFORE they are split into heads) rotates only the first `dim_head`
channels of the inner dimension, i.e. the first head; the other heads see no positions besides the
convolutional ones. Reproduced as is: it is what the weights were trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.cosyvoice.flow_dit_config import DiTConfig
from voxpipe.plugins.cosyvoice.flow_encoder import chunk_mask
from voxpipe.plugins.cosyvoice.flow_estimator import timestep_sinusoids


class TimeEmbedding(nn.Module):
    """t (B,) -> (B, dim): sinusoids (scale 1000) -> Linear, SiLU, Linear (official `time_mlp.0/2`)."""

    def __init__(self, dim: int, freq_dim: int) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.time_mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.time_mlp(timestep_sinusoids(t, self.freq_dim).to(t.dtype))


class CausalConvPositions(nn.Module):
    """(B, T, dim) -> (B, T, dim): two causal grouped convs, each followed by Mish."""

    def __init__(self, dim: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.pad = kernel_size - 1
        self.conv1 = nn.Sequential(nn.Conv1d(dim, dim, kernel_size, groups=groups), nn.Mish())
        self.conv2 = nn.Sequential(nn.Conv1d(dim, dim, kernel_size, groups=groups), nn.Mish())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.pad(x.transpose(1, 2), (self.pad, 0)))
        out = self.conv2(F.pad(out, (self.pad, 0)))
        return out.transpose(1, 2)


class InputEmbedding(nn.Module):
    """[x, cond, mu, spks] (B, T, 2*mel + mu + spk) -> Linear -> + causal conv positions."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.spk_dim = config.spk_dim
        self.proj = nn.Linear(config.mel_dim * 2 + config.mu_dim + config.spk_dim, config.dim)
        self.conv_pos_embed = CausalConvPositions(config.dim, config.conv_pos_kernel, config.conv_pos_groups)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, mu: torch.Tensor, spks: torch.Tensor) -> torch.Tensor:
        parts = [x, cond, mu]
        if self.spk_dim > 0:
            parts.append(spks.unsqueeze(1).expand(-1, x.shape[1], -1))
        x = self.proj(torch.cat(parts, dim=-1))
        return self.conv_pos_embed(x) + x


class RotaryEmbedding(nn.Module):
    """Rotary angles for interleaved channel pairs; `inv_freq` is a saved buffer in the official
    checkpoint (x_transformers registers it persistent), loaded with the rest."""

    def __init__(self, dim_head: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (base ** (torch.arange(0, dim_head, 2).float() / dim_head)))

    def forward(self, length: int) -> torch.Tensor:
        """(T, dim_head) angles: position x inv_freq, each repeated for its channel pair."""
        positions = torch.arange(length, device=self.inv_freq.device).to(self.inv_freq.dtype)
        angles = positions.unsqueeze(1) * self.inv_freq.unsqueeze(0)
        return angles.repeat_interleave(2, dim=-1)


def apply_rotary(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """x (B, T, inner); angles (T, r): rotate the first r channels' interleaved pairs (a, b) ->
    (a cos - b sin, b cos + a sin); the rest unchanged."""
    rotated, rest = x[..., : angles.shape[-1]], x[..., angles.shape[-1]:]
    pairs = rotated.unflatten(-1, (-1, 2))
    half_turned = torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)
    return torch.cat((rotated * angles.cos() + half_turned * angles.sin(), rest), dim=-1)


class Attention(nn.Module):
    """Multi-head self-attention with q/k/v biases and rotary positions (official `to_q`, ...)."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads, self.dim_head = heads, dim_head
        self.to_q = nn.Linear(dim, inner)
        self.to_k = nn.Linear(dim, inner)
        self.to_v = nn.Linear(dim, inner)
        self.to_out = nn.ModuleList([nn.Linear(inner, dim)])

    def forward(self, x: torch.Tensor, angles: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x (B, T, dim); angles (T, dim_head); mask (1, 1, T, T) bool, True = visible, or None."""
        b, t, _ = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.dim_head).transpose(1, 2)

        q = apply_rotary(self.to_q(x), angles)
        k = apply_rotary(self.to_k(x), angles)
        out = F.scaled_dot_product_attention(heads(q), heads(k), heads(self.to_v(x)), attn_mask=mask)
        out = self.to_out[0](out.transpose(1, 2).reshape(b, t, self.heads * self.dim_head))
        if mask is not None:
            # as the official processor: frames the last query row cannot see (padding) give zeros
            keep = mask[:, 0, -1].unsqueeze(-1)
            out = out.masked_fill(~keep, 0.0)
        return out


class AdaLayerNorm(nn.Module):
    """LayerNorm (no affine, eps 1e-6) whose shift/scale(/gate) come from the time embedding:
    Linear(SiLU(c)) -> `chunks` pieces of dim."""

    def __init__(self, dim: int, chunks: int) -> None:
        super().__init__()
        self.chunks = chunks
        self.linear = nn.Linear(dim, dim * chunks)
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)

    def modulation(self, time: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(B, dim) -> `chunks` (B, 1, dim) tensors."""
        return tuple(piece.unsqueeze(1) for piece in self.linear(F.silu(time)).chunk(self.chunks, dim=1))


class DiTBlock(nn.Module):
    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        dim = config.dim
        self.attn_norm = AdaLayerNorm(dim, 6)
        self.attn = Attention(dim, config.heads, config.dim_head)
        self.ff_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        inner = int(dim * config.ff_mult)
        # official FeedForward: ff = Sequential(Sequential(Linear, GELU), Dropout, Linear)
        self.ff = nn.Module()
        self.ff.ff = nn.Sequential(nn.Sequential(nn.Linear(dim, inner), nn.GELU(approximate="tanh")), nn.Identity(),
                                   nn.Linear(inner, dim))

    def forward(self, x: torch.Tensor, time: torch.Tensor, angles: torch.Tensor, mask: torch.Tensor | None):
        shift_attn, scale_attn, gate_attn, shift_ff, scale_ff, gate_ff = self.attn_norm.modulation(time)
        normed = self.attn_norm.norm(x) * (1 + scale_attn) + shift_attn
        x = x + gate_attn * self.attn(normed, angles, mask)
        normed = self.ff_norm(x) * (1 + scale_ff) + shift_ff
        return x + gate_ff * self.ff.ff(normed)


class DiTEstimator(nn.Module):
    """Velocity v(x, t | mu, speaker, prompt) on (B, 80, T) mel frames; the same call as the
    CosyVoice2 U-Net (flow_estimator.ConditionalEstimator), so the ODE parts drive either."""

    def __init__(self, config: DiTConfig) -> None:
        super().__init__()
        self.config = config
        self.time_embed = TimeEmbedding(config.dim, config.time_freq_dim)
        self.input_embed = InputEmbedding(config)
        self.rotary_embed = RotaryEmbedding(config.dim_head)
        self.transformer_blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        if config.long_skip_connection:
            self.long_skip_connection = nn.Linear(config.dim * 2, config.dim, bias=False)
        self.norm_out = AdaLayerNorm(config.dim, 2)
        self.proj_out = nn.Linear(config.dim, config.mel_dim)

    def _attention_mask(self, mask: torch.Tensor, streaming: bool) -> torch.Tensor | None:
        """(B, 1, T, T) bool from the frame mask (B, 1, T): padding hidden, chunk-causal if
        streaming; None when everything is visible. A row with nothing visible attends
        everywhere (the official add_optional_chunk_mask's rule)."""
        frames = mask.bool()
        chunk = chunk_mask(mask.shape[-1], self.config.static_chunk_size, mask.device) if streaming else None
        if chunk is None and bool(frames.all()):
            return None
        visible = frames if chunk is None else frames & chunk
        visible = visible.expand(-1, mask.shape[-1], -1)
        return (visible | ~visible.any(dim=-1, keepdim=True)).unsqueeze(1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, mu: torch.Tensor, t: torch.Tensor, spks: torch.Tensor,
                cond: torch.Tensor, streaming: bool = False) -> torch.Tensor:
        """x, mu, cond (B, 80, T); mask (B, 1, T); t (B,); spks (B, 80) -> velocity (B, 80, T)."""
        time = self.time_embed(t.reshape(-1).expand(x.shape[0]))
        h = self.input_embed(x.transpose(1, 2), cond.transpose(1, 2), mu.transpose(1, 2), spks)
        residual = h
        angles = self.rotary_embed(h.shape[1])
        attn_mask = self._attention_mask(mask, streaming)
        for block in self.transformer_blocks:
            h = block(h, time, angles, attn_mask)
        if self.config.long_skip_connection:
            h = self.long_skip_connection(torch.cat((h, residual), dim=-1))
        scale, shift = self.norm_out.modulation(time)
        h = self.norm_out.norm(h) * (1 + scale) + shift
        return self.proj_out(h).transpose(1, 2)
