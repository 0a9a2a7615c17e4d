"""StyleTTS2's decoder with a HiFi-GAN generator (the LibriTTS model's `decoder.type: hifigan`):
aligned text features, F0 and energy curves and an acoustic style -> waveform.

The front end (F0/energy downsampling, AdaIN residual encode/decode blocks, text residual) is
the official Decoder's, shared with the iSTFTNet variant; the generator differs: Snake
activations with per-channel `alphas` before every upsampling, transposed convolutions that
reach the waveform rate directly (prod(upsample_rates) samples per curve value, 300 at 24 kHz),
the harmonic source added at every scale through strided convolutions of the waveform-rate
excitation (not its STFT), and a tanh output. One decoder frame = 2 * prod(upsample_rates)
samples (600 at 24 kHz).

Official inference quirk carried by the decoder: the duration-aligned features feed the
HiFi-GAN model one frame late (frame 0 repeated, the last dropped); `aligned_frame_delay = 1`
tells the synthesizer to do so (the iSTFTNet decoder has none).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.plugins.styletts2.decoder_front import (
    AdainDecoderFront,
    check_generator_sizes,
)
from voxpipe.plugins.styletts2.istftnet import HarmonicSource, SnakeResBlock


def _snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    return x + torch.sin(alpha * x).pow(2) / alpha


class HifiGanGenerator(nn.Module):
    """(B, C, 2F) features, (B, S) style, (B, 2F) F0 in Hz -> (B, 1, 2F * prod(upsample_rates))."""

    def __init__(self, style_dim: int, resblock_kernel_sizes: list[int], upsample_rates: list[int],
                 upsample_initial_channel: int, resblock_dilation_sizes: list[list[int]],
                 upsample_kernel_sizes: list[int], sample_rate: int, harmonics: int, voiced_threshold: float) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.upsample = math.prod(upsample_rates)
        self.m_source = HarmonicSource(sample_rate, self.upsample, harmonics, voiced_threshold)
        self.ups, self.noise_convs, self.noise_res, self.resblocks = (nn.ModuleList() for _ in range(4))
        self.alphas = nn.ParameterList([nn.Parameter(torch.ones(1, upsample_initial_channel, 1))])
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            channels = upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(channels * 2, channels, kernel, rate, padding=rate // 2 + rate % 2,
                                               output_padding=rate % 2))
            if i + 1 < len(upsample_rates):
                stride = math.prod(upsample_rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(1, channels, stride * 2, stride, padding=(stride + 1) // 2))
                self.noise_res.append(SnakeResBlock(channels, 7, [1, 3, 5], style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(1, channels, 1))
                self.noise_res.append(SnakeResBlock(channels, 11, [1, 3, 5], style_dim))
        for i in range(len(upsample_rates)):
            channels = upsample_initial_channel // 2 ** (i + 1)
            self.alphas.append(nn.Parameter(torch.ones(1, channels, 1)))
            for res_kernel, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(SnakeResBlock(channels, res_kernel, list(dilations), style_dim))
        self.conv_post = nn.Conv1d(channels, 1, 7, 1, padding=3)

    def forward(self, x: torch.Tensor, style: torch.Tensor, f0: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            per_sample = torch.repeat_interleave(f0, self.upsample, dim=1)  # nearest upsampling
            source = self.m_source(per_sample, generator).unsqueeze(1)  # (B, 1, N)
        for i, up in enumerate(self.ups):
            x = _snake(x, self.alphas[i])
            injected = self.noise_res[i](self.noise_convs[i](source), style)
            x = up(x) + injected
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x, style) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(_snake(x, self.alphas[-1])))


class HifiGanDecoder(AdainDecoderFront, Component, nn.Module):
    """StyleTTS2 decoder with a HiFi-GAN generator: asr (B, dim_in, F), F0 and energy (B, 2F),
    acoustic style (B, S) -> (B, N) waveform, N = 2F * prod(upsample_rates)."""

    kind = "decoder"
    name = "hifigan"
    description = "StyleTTS2 decoder with a HiFi-GAN generator (StyleTTS2 LibriTTS)"
    aligned_frame_delay = 1

    class Params(BaseParams):
        dim_in: int = Field(512, ge=1, description="aligned text feature width (config hidden_dim)")
        style_dim: int = Field(128, ge=1, description="acoustic style dimension (config style_dim)")
        hidden: int = Field(1024, ge=1, description="width of the encode/decode blocks (official: 1024)")
        residual_dim: int = Field(64, ge=1, description="width of the re-injected text features (official: 64)")
        resblock_kernel_sizes: list[int] = Field([3, 7, 11])
        upsample_rates: list[int] = Field([10, 5, 3, 2])
        upsample_initial_channel: int = Field(512, ge=2)
        resblock_dilation_sizes: list[list[int]] = Field([[1, 3, 5], [1, 3, 5], [1, 3, 5]])
        upsample_kernel_sizes: list[int] = Field([20, 10, 6, 4])
        sample_rate: int = Field(24000, ge=1, description="Hz of the waveform (the harmonic source is built for it)")
        harmonics: int = Field(8, ge=0, description="overtones of the harmonic source")
        voiced_threshold: float = Field(10.0, ge=0, description="F0 (Hz) above which a sample is voiced")

    def __init__(self, *, dim_in, style_dim, hidden, residual_dim, resblock_kernel_sizes, upsample_rates,
                 upsample_initial_channel, resblock_dilation_sizes, upsample_kernel_sizes, sample_rate, harmonics,
                 voiced_threshold) -> None:
        nn.Module.__init__(self)
        check_generator_sizes(resblock_kernel_sizes, upsample_rates, upsample_initial_channel,
                              resblock_dilation_sizes, upsample_kernel_sizes)
        self.sample_rate = sample_rate
        self.samples_per_frame = 2 * math.prod(upsample_rates)
        self.build_front(dim_in, style_dim, hidden, residual_dim, upsample_initial_channel)
        self.generator = HifiGanGenerator(style_dim, resblock_kernel_sizes, upsample_rates, upsample_initial_channel,
                                          resblock_dilation_sizes, upsample_kernel_sizes, sample_rate, harmonics,
                                          voiced_threshold)

    def forward(self, asr: torch.Tensor, f0: torch.Tensor, energy: torch.Tensor, style: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.front(asr, f0, energy, style)
        return self.generator(x, style, f0, generator).squeeze(1)

    def describe(self) -> dict:
        return {"sample_rate": self.sample_rate, "samples_per_frame": self.samples_per_frame}

