"""StyleTTS2's style encoders: a reference clip -> acoustic and prosodic style vectors.

Two encoders of the same shape read the clip's normalized log-mel (see mel.py): `acoustic`
(the official `style_encoder`, conditioning the decoder) and `prosodic` (the official
`predictor_encoder`, conditioning the prosody predictor); the voice is [acoustic | prosodic].

Each is the official `StyleEncoder`: a 3x3 conv, four residual blocks halving both mel bins and
frames (learned depthwise 3x3 stride-2 conv in the residual path, 2x2 average pooling in the
shortcut), LeakyReLU(0.2), a 5x5 conv without padding, global average, LeakyReLU, linear. The
5x5 conv needs at least 5 x 5 cells after four halvings: 80 mel bins and >= 65 frames
(0.8 s at 24 kHz). Official convolutions are spectrally normalized; the loader folds
weight / sigma into plain weights (inference, see checkpoints.py).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.core.errors import AudioError, ConfigError
from voxpipe.plugins.styletts2.mel import LogMel

HALVINGS = 4
FINAL_KERNEL = 5
SILENCE_PEAK = 1e-4
"""Peak amplitude below which a reference clip counts as silent (-80 dBFS)."""


class _HalvingConv(nn.Module):
    """The official LearnedDownSample('half'): depthwise 3x3 stride-2 conv as `conv`."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1, groups=channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class HalvingResBlock(nn.Module):
    """(B, C_in, H, W) -> (B, C_out, ceil(H/2)..., ceil(W/2)): LeakyReLU, conv3, learned halving,
    LeakyReLU, conv3; shortcut 1x1 conv (when widths differ) then 2x2 average pooling (an odd
    width repeats its last column first, as the official DownSample); sum / sqrt(2)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.downsample_res = _HalvingConv(dim_in)
        if dim_in != dim_out:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def _shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "conv1x1"):
            x = self.conv1x1(x)
        if x.shape[-1] % 2:
            x = torch.cat([x, x[..., -1:]], dim=-1)
        return F.avg_pool2d(x, 2)

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(F.leaky_relu(x, 0.2))
        x = self.downsample_res(x)
        return self.conv2(F.leaky_relu(x, 0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self._shortcut(x) + self._residual(x)) / math.sqrt(2)


class MelStyleEncoder(nn.Module):
    """(B, 1, n_mels, F) log-mel -> (B, style_dim). Module names follow the official checkpoint
    (`shared.0`, `shared.1..4`, `shared.6`, `unshared`)."""

    def __init__(self, dim_in: int, style_dim: int, max_conv_dim: int) -> None:
        super().__init__()
        blocks: list[nn.Module] = [nn.Conv2d(1, dim_in, 3, 1, 1)]
        width = dim_in
        for _ in range(HALVINGS):
            out = min(width * 2, max_conv_dim)
            blocks.append(HalvingResBlock(width, out))
            width = out
        blocks += [nn.LeakyReLU(0.2), nn.Conv2d(width, width, FINAL_KERNEL, 1, 0), nn.AdaptiveAvgPool2d(1),
                   nn.LeakyReLU(0.2)]
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.Linear(width, style_dim)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.unshared(self.shared(mel).flatten(1))


def _halved(size: int) -> int:
    for _ in range(HALVINGS):
        size = (size + 1) // 2
    return size


class StyleEncoder(Component, nn.Module):
    """Reference waveform (24 kHz) -> (1, 2 * style_dim) [acoustic | prosodic] style."""

    kind = "style_encoder"
    name = "styletts2"
    description = "StyleTTS2 acoustic + prosodic style encoders over the official log-mel"

    class Params(BaseParams):
        dim_in: int = Field(64, ge=1, description="first conv width (config dim_in)")
        style_dim: int = Field(128, ge=1, description="each style's size (config style_dim)")
        max_conv_dim: int = Field(512, ge=1, description="widest conv (config hidden_dim; the official build passes it)")
        sample_rate: int = Field(24000, ge=1, description="Hz the reference audio is read at (preprocess_params.sr)")
        n_fft: int = Field(2048, ge=2)
        win_length: int = Field(1200, ge=1)
        hop_length: int = Field(300, ge=1)
        n_mels: int = Field(80, ge=1, description="mel bins (config n_mels)")
        filterbank_sample_rate: int = Field(16000, ge=1, description="rate the mel filters are laid out for: the "
                                            "official transform's torchaudio default 16 kHz (see mel.py)")
        log_mean: float = Field(-4.0, description="official log-mel normalisation: (log(1e-5 + mel) - mean) / std")
        log_std: float = Field(4.0, gt=0)
        trim_top_db: float = Field(30.0, gt=0, description="silence trim of the reference (official: top_db 30)")

    def __init__(self, *, dim_in, style_dim, max_conv_dim, sample_rate, n_fft, win_length, hop_length, n_mels,
                 filterbank_sample_rate, log_mean, log_std, trim_top_db) -> None:
        nn.Module.__init__(self)
        if win_length > n_fft:
            raise ConfigError(f"style_encoder: win_length {win_length} exceeds n_fft {n_fft}")
        if _halved(n_mels) < FINAL_KERNEL:
            raise ConfigError(f"style_encoder: n_mels {n_mels} is too few: four halvings must leave >= {FINAL_KERNEL} bins")
        self.style_dim, self.sample_rate, self.trim_top_db = style_dim, sample_rate, trim_top_db
        self.mel = LogMel(n_fft, win_length, hop_length, n_mels, filterbank_sample_rate, log_mean, log_std)
        self.acoustic = MelStyleEncoder(dim_in, style_dim, max_conv_dim)
        self.prosodic = MelStyleEncoder(dim_in, style_dim, max_conv_dim)
        frames = next(f for f in range(1, 10_000) if _halved(f) >= FINAL_KERNEL)
        self.min_samples = (frames - 1) * hop_length
        """Shortest clip the encoders take (after trimming): its mel must have `frames` frames."""

    def check_clip(self, wave: torch.Tensor, where: str = "the reference clip") -> None:
        """AudioError unless `wave` (N,) is long enough and not silent (before any heavy work)."""
        if wave.numel() == 0 or float(wave.abs().max()) < SILENCE_PEAK:
            raise AudioError(f"{where} is silent (peak below {SILENCE_PEAK:g}); record some speech")
        if wave.numel() < self.min_samples:
            raise AudioError(f"{where} lasts {wave.numel() / self.sample_rate:.2f} s after trimming silence; the style "
                             f"encoder needs at least {self.min_samples / self.sample_rate:.2f} s of speech")

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """(N,) or (1, N) waveform at `sample_rate` -> (1, 2 * style_dim)."""
        mel = self.mel(wave.reshape(1, -1)).unsqueeze(1)  # (1, 1, n_mels, F)
        return torch.cat([self.acoustic(mel), self.prosodic(mel)], dim=1)

    def describe(self) -> dict:
        return {"style_dim": self.style_dim, "sample_rate": self.sample_rate,
                "min_seconds": self.min_samples / self.sample_rate}
