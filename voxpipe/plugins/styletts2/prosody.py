"""StyleTTS2's prosody predictor: phoneme durations, then F0 and energy curves, all styled."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import ConfigError
from voxpipe.plugins.styletts2.layers import AdainResBlock, AdaLayerNorm, run_lstm


class DurationEncoder(nn.Module):
    """`num_layers` x [BiLSTM, AdaLayerNorm] over the projected PL-BERT states with the prosodic
    style appended to every step. (B, C, T) -> (B, T, C + S), zero at padding.

    `lstms` alternates LSTM and AdaLayerNorm modules (the checkpoints' `lstms.0`, `lstms.1`, ...)."""

    def __init__(self, style_dim: int, channels: int, num_layers: int) -> None:
        super().__init__()
        self.lstms = nn.ModuleList()
        for _ in range(num_layers):
            self.lstms.append(nn.LSTM(channels + style_dim, channels // 2, 1, batch_first=True, bidirectional=True))
            self.lstms.append(AdaLayerNorm(style_dim, channels))

    def forward(self, x: torch.Tensor, style: torch.Tensor, lengths: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        keep = (~pad_mask).unsqueeze(-1).to(x.dtype)  # (B, T, 1)
        styles = style.unsqueeze(1).expand(-1, x.shape[-1], -1)  # (B, T, S)
        x = torch.cat([x.transpose(1, 2), styles], dim=-1) * keep
        for block in self.lstms:
            if isinstance(block, AdaLayerNorm):
                x = torch.cat([block(x, style), styles], dim=-1) * keep
            else:
                x = run_lstm(block, x, lengths)
        return x


class ProsodyPredictor(Component, nn.Module):
    """Durations from PL-BERT states and a prosodic style; F0 and energy (N) curves from the
    duration-aligned states (at twice the decoder's frame rate, see `f0_energy`)."""

    kind = "prosody_predictor"
    name = "styletts2"
    description = "StyleTTS2 prosody predictor: durations, F0 and energy with AdaIN"

    class Params(BaseParams):
        style_dim: int = Field(128, ge=1, description="prosodic style dimension (config style_dim)")
        hidden_dim: int = Field(512, ge=2, description="width (config hidden_dim)")
        num_layers: int = Field(3, ge=1, description="duration encoder layers (config n_layer)")
        max_dur: int = Field(50, ge=1, description="duration classes per phoneme (config max_dur)")

    def __init__(self, *, style_dim, hidden_dim, num_layers, max_dur) -> None:
        nn.Module.__init__(self)
        if hidden_dim % 4:
            raise ConfigError(f"prosody_predictor: hidden_dim must be a multiple of 4, got {hidden_dim}")
        self.style_dim = style_dim
        half = hidden_dim // 2
        self.text_encoder = DurationEncoder(style_dim, hidden_dim, num_layers)
        self.lstm = nn.LSTM(hidden_dim + style_dim, half, 1, batch_first=True, bidirectional=True)
        self.duration_proj = nn.Module()
        self.duration_proj.linear_layer = nn.Linear(hidden_dim, max_dur)
        self.shared = nn.LSTM(hidden_dim + style_dim, half, 1, batch_first=True, bidirectional=True)
        self.F0 = self._curve_blocks(hidden_dim, style_dim)
        self.N = self._curve_blocks(hidden_dim, style_dim)
        self.F0_proj = nn.Conv1d(half, 1, 1)
        self.N_proj = nn.Conv1d(half, 1, 1)

    @staticmethod
    def _curve_blocks(hidden: int, style_dim: int) -> nn.ModuleList:
        return nn.ModuleList([
            AdainResBlock(hidden, hidden, style_dim),
            AdainResBlock(hidden, hidden // 2, style_dim, upsample=True),
            AdainResBlock(hidden // 2, hidden // 2, style_dim),
        ])

    def durations(self, projected: torch.Tensor, style: torch.Tensor, lengths: torch.Tensor,
                  pad_mask: torch.Tensor, speed: float) -> tuple[torch.Tensor, torch.Tensor]:
        """projected PL-BERT states (B, C, T), prosodic style (B, S) ->
        (encoded (B, T, C + S), durations (B, T) in frames as real numbers, before rounding).

        A phoneme's duration is the sum of the sigmoids of its `max_dur` logits, divided by speed."""
        encoded = self.text_encoder(projected, style, lengths, pad_mask)
        logits = self.duration_proj.linear_layer(run_lstm(self.lstm, encoded, lengths))
        return encoded, torch.sigmoid(logits).sum(dim=-1) / speed

    def f0_energy(self, aligned: torch.Tensor, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Frame-aligned encoder states (B, C + S, F) -> F0 and energy curves (B, 2F) each
        (the curves run at twice the frame rate: the middle blocks upsample by 2)."""
        shared = self.shared(aligned.transpose(1, 2))[0].transpose(1, 2)
        f0, energy = shared, shared
        for block in self.F0:
            f0 = block(f0, style)
        for block in self.N:
            energy = block(energy, style)
        return self.F0_proj(f0).squeeze(1), self.N_proj(energy).squeeze(1)
