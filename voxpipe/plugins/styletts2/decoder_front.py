"""The AdaIN front shared by StyleTTS2's decoders (iSTFTNet for Kokoro, HiFi-GAN for StyleTTS2
LibriTTS): aligned text features, F0 and energy -> the generator's input, and the size checks of
the generators behind it. A mixin, so the modules keep the official state-dict names
(`encode.*`, `decode.{0..3}.*`, `F0_conv.*`, `N_conv.*`, `asr_res.0.*`)."""

from __future__ import annotations

import torch
from torch import nn

from voxpipe.core.errors import ConfigError
from voxpipe.plugins.styletts2.layers import AdainResBlock


def check_generator_sizes(resblock_kernel_sizes: list[int], upsample_rates: list[int],
                          upsample_initial_channel: int, resblock_dilation_sizes: list[list[int]],
                          upsample_kernel_sizes: list[int]) -> None:
    """Refuse generator sizes the official modules could not be built with (ConfigError)."""
    if not (len(upsample_rates) == len(upsample_kernel_sizes) >= 1):
        raise ConfigError(f"decoder: upsample_rates {upsample_rates} and upsample_kernel_sizes "
                          f"{upsample_kernel_sizes} must be non-empty and equally long")
    if len(resblock_kernel_sizes) != len(resblock_dilation_sizes):
        raise ConfigError(f"decoder: resblock_kernel_sizes {resblock_kernel_sizes} and resblock_dilation_sizes "
                          f"{resblock_dilation_sizes} must be equally long")
    if upsample_initial_channel % 2 ** len(upsample_rates):
        raise ConfigError(f"decoder: upsample_initial_channel {upsample_initial_channel} must be divisible by "
                          f"2^{len(upsample_rates)}")


class AdainDecoderFront:
    """Mixin for an `nn.Module` decoder: `build_front` in `__init__`, `front` in `forward`."""

    def build_front(self, dim_in: int, style_dim: int, hidden: int, residual_dim: int,
                    upsample_initial_channel: int) -> None:
        block_in = hidden + 2 + residual_dim
        self.encode = AdainResBlock(dim_in + 2, hidden, style_dim)
        self.decode = nn.ModuleList([AdainResBlock(block_in, hidden, style_dim) for _ in range(3)]
                                    + [AdainResBlock(block_in, upsample_initial_channel, style_dim, upsample=True)])
        self.F0_conv = nn.Conv1d(1, 1, 3, stride=2, padding=1)
        self.N_conv = nn.Conv1d(1, 1, 3, stride=2, padding=1)
        self.asr_res = nn.Sequential(nn.Conv1d(dim_in, residual_dim, 1))

    def front(self, asr: torch.Tensor, f0: torch.Tensor, energy: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """asr (B, dim_in, F), F0 and energy (B, 2F), style (B, S) -> (B, upsample_initial_channel, 2F)."""
        f0_down = self.F0_conv(f0.unsqueeze(1))  # (B, 1, F)
        energy_down = self.N_conv(energy.unsqueeze(1))
        x = self.encode(torch.cat([asr, f0_down, energy_down], dim=1), style)
        residual = self.asr_res(asr)
        reinject = True  # text, F0 and energy go into every block up to the one that upsamples
        for block in self.decode:
            if reinject:
                x = torch.cat([x, residual, f0_down, energy_down], dim=1)
            x = block(x, style)
            reinject = reinject and not block.upsamples
        return x
