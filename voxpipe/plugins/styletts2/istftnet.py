"""StyleTTS2's decoder with an iSTFTNet generator (Kokoro-82M's): aligned text features,
F0 and energy curves and an acoustic style -> waveform.

Frames: F decoder frames; F0/energy curves have 2F values; the generator upsamples 2F by
prod(upsample_rates) to spectrogram frames and the inverse STFT by its hop, so one decoder
frame is 2 * prod(upsample_rates) * hop samples (Kokoro: 2 * 60 * 5 = 600 at 24 kHz, 40 Hz).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from voxpipe.core.component import Component
from voxpipe.core.component import Params as BaseParams
from voxpipe.plugins.styletts2 import channels_last
from voxpipe.plugins.styletts2.decoder_front import (
    AdainDecoderFront,
    check_generator_sizes,
)
from voxpipe.plugins.styletts2.layers import AdaIN1d


def _same_padding(kernel: int, dilation: int = 1) -> int:
    return (kernel * dilation - dilation) // 2


class SnakeResBlock(nn.Module):
    """HiFi-GAN resblock with AdaIN and Snake activations x + sin^2(a x) / a (per-channel a):
    for each dilation d: x += conv_1(snake(AdaIN(conv_d(snake(AdaIN(x))))). (B, C, T) -> same."""

    def __init__(self, channels: int, kernel: int, dilations: list[int], style_dim: int) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d, padding=_same_padding(kernel, d))
                                    for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=_same_padding(kernel))
                                    for _ in dilations)
        self.adain1 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.adain2 = nn.ModuleList(AdaIN1d(style_dim, channels) for _ in dilations)
        self.alpha1 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)
        self.alpha2 = nn.ParameterList(nn.Parameter(torch.ones(1, channels, 1)) for _ in dilations)

    channels_last = False  # convolve x in channels-last memory (istftnet's bf16 stages, channels_last.py)

    @staticmethod
    def _snake(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        return x + torch.sin(alpha * x).pow(2) / alpha

    def _conv(self, conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
        return channels_last.conv1d(conv, x) if self.channels_last else conv(x)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        for conv1, conv2, norm1, norm2, alpha1, alpha2 in zip(self.convs1, self.convs2, self.adain1, self.adain2,
                                                               self.alpha1, self.alpha2):
            y = self._conv(conv1, self._snake(norm1(x, style), alpha1))
            x = x + self._conv(conv2, self._snake(norm2(y, style), alpha2))
        return x


class HarmonicSource(nn.Module):
    """Neural source filter excitation: sines at F0 and its harmonics, voiced where F0 exceeds a
    threshold, merged by a linear layer + tanh. (B, L) F0 in Hz per sample -> (B, L) excitation.

    With `generator` (a seeded torch.Generator) the random initial harmonic phases and the additive
    noise are drawn as the official SineGen draws them (same order, same amounts); without it
    there is no noise and every phase starts at 0 (as Kokoro's ONNX export)."""

    def __init__(self, sample_rate: int, upsample: int, harmonics: int, voiced_threshold: float,
                 sine_amp: float = 0.1, noise_std: float = 0.003) -> None:
        super().__init__()
        self.sample_rate, self.upsample, self.harmonics = sample_rate, upsample, harmonics
        self.voiced_threshold, self.sine_amp, self.noise_std = voiced_threshold, sine_amp, noise_std
        self.l_linear = nn.Linear(harmonics + 1, 1)

    def forward(self, f0: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        batch, length = f0.shape
        multiples = torch.arange(1, self.harmonics + 2, device=f0.device, dtype=f0.dtype)
        cycles = (f0.unsqueeze(-1) * multiples / self.sample_rate) % 1  # (B, L, H) cycles per sample
        if generator is not None:
            start = torch.rand(batch, self.harmonics + 1, generator=generator, device=f0.device)
            start[:, 0] = 0
            cycles[:, 0, :] = cycles[:, 0, :] + start
        # The phase is integrated at the frame rate and interpolated back (the official recipe,
        # which keeps phase continuous and cheap): down by `upsample`, cumulate, up again.
        coarse = F.interpolate(cycles.transpose(1, 2), scale_factor=1 / self.upsample, mode="linear")
        phase = torch.cumsum(coarse, dim=-1) * 2 * math.pi
        phase = F.interpolate(phase * self.upsample, scale_factor=self.upsample, mode="linear").transpose(1, 2)
        sines = torch.sin(phase) * self.sine_amp
        voiced = (f0 > self.voiced_threshold).to(f0.dtype).unsqueeze(-1)
        if generator is not None:
            noise_amp = voiced * self.noise_std + (1 - voiced) * self.sine_amp / 3
            # The official randn_like fills a (B, L, H) view of a (B, H, L) buffer; torch draws
            # normals differently for such strided tensors, so the same layout replays the same noise.
            draw = torch.empty(batch, self.harmonics + 1, length, device=f0.device, dtype=f0.dtype).transpose(1, 2)
            noise = noise_amp * draw.normal_(generator=generator)
            sines = sines * voiced + noise
            torch.randn(voiced.shape, generator=generator, device=f0.device)  # the official noise branch draw (unused)
        else:
            sines = sines * voiced
        return torch.tanh(self.l_linear(sines)).squeeze(-1)


class ISTFTNetGenerator(nn.Module):
    """iSTFTNet: HiFi-GAN upsampling with AdaIN resblocks, a harmonic source injected at every
    scale through its STFT, and an inverse STFT of the predicted magnitude and phase.
    (B, C, 2F) features, (B, S) style, (B, 2F) F0 -> (B, 2F * prod(upsample_rates) * hop)."""

    def __init__(self, style_dim: int, resblock_kernel_sizes: list[int], upsample_rates: list[int],
                 upsample_initial_channel: int, resblock_dilation_sizes: list[list[int]],
                 upsample_kernel_sizes: list[int], n_fft: int, hop_size: int, sample_rate: int,
                 harmonics: int, voiced_threshold: float) -> None:
        super().__init__()
        self.num_kernels = len(resblock_kernel_sizes)
        self.n_fft, self.hop_size = n_fft, hop_size
        self.f0_upsample = math.prod(upsample_rates) * hop_size
        self.m_source = HarmonicSource(sample_rate, self.f0_upsample, harmonics, voiced_threshold)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        self.noise_convs = nn.ModuleList()
        self.noise_res = nn.ModuleList()
        channels = upsample_initial_channel
        for i, (rate, kernel) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            channels = upsample_initial_channel // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(channels * 2, channels, kernel, rate, padding=(kernel - rate) // 2))
            for res_kernel, dilations in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(SnakeResBlock(channels, res_kernel, list(dilations), style_dim))
            if i + 1 < len(upsample_rates):
                stride = math.prod(upsample_rates[i + 1:])
                self.noise_convs.append(nn.Conv1d(n_fft + 2, channels, stride * 2, stride, padding=(stride + 1) // 2))
                self.noise_res.append(SnakeResBlock(channels, 7, [1, 3, 5], style_dim))
            else:
                self.noise_convs.append(nn.Conv1d(n_fft + 2, channels, 1))
                self.noise_res.append(SnakeResBlock(channels, 11, [1, 3, 5], style_dim))
        self.conv_post = nn.Conv1d(channels, n_fft + 2, 7, padding=3)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.stage_dtype = torch.float32
        self.channels_last = False

    def use_dtype(self, dtype: torch.dtype) -> None:
        """Run the upsampling stages (upsampling and noise convolutions, resblocks) in `dtype`.

        The harmonic source, its STFT, `conv_post` (whose outputs are the log-magnitude and the
        phase of the spectrum) and the inverse STFT stay float32: with `conv_post` in bf16 too the
        log-mel distance to float32 audio was 0.17 on Kokoro-82M, with it in float32 0.04
        (docs/performance.md, the 2026-12-02 23:31 section)."""
        self.stage_dtype = dtype
        for stage in (self.ups, self.resblocks, self.noise_convs, self.noise_res):
            stage.to(dtype)
        # bf16 convolutions also keep their tensors channels-last (channels_last.py); float32 keeps
        # the official calls (there channels-last was slower: the layout copies outweigh the gain)
        self.channels_last = dtype == torch.bfloat16
        for stage in (self.resblocks, self.noise_res):
            for module in stage.modules():
                if isinstance(module, (SnakeResBlock, AdaIN1d)):
                    module.channels_last = self.channels_last

    def _source_spectrum(self, f0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """(B, 2F) F0 -> (B, n_fft + 2, frames): magnitude and phase of the excitation's STFT."""
        per_sample = torch.repeat_interleave(f0, self.f0_upsample, dim=1)  # nearest upsampling
        source = self.m_source(per_sample, generator)
        spectrum = torch.stft(source, self.n_fft, self.hop_size, self.n_fft, window=self.window, return_complex=True)
        return torch.cat([spectrum.abs(), spectrum.angle()], dim=1)

    def forward(self, x: torch.Tensor, style: torch.Tensor, f0: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        with torch.no_grad():
            source = self._source_spectrum(f0, generator).to(self.stage_dtype)
        x, style = x.to(self.stage_dtype), style.to(self.stage_dtype)
        layout = channels_last.to_channels_last if self.channels_last else (lambda t: t)
        x, source = layout(x), layout(source)
        last = len(self.ups) - 1
        for i, up in enumerate(self.ups):
            x = F.leaky_relu(x, 0.1)
            x = channels_last.conv_transpose1d(up, x) if self.channels_last else up(x)
            if i == last:
                x = layout(F.pad(x, (1, 0), mode="reflect"))
            noise = self.noise_convs[i]
            noise = channels_last.conv1d(noise, source) if self.channels_last else noise(source)
            x = x + self.noise_res[i](noise, style)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x, style) for block in blocks) / self.num_kernels
        x = self.conv_post(F.leaky_relu(x).float())
        bins = self.n_fft // 2 + 1
        magnitude, phase = torch.exp(x[:, :bins]), torch.sin(x[:, bins:])
        spectrum = torch.polar(magnitude, phase)
        return torch.istft(spectrum, self.n_fft, self.hop_size, self.n_fft, window=self.window)


class StyleDecoder(AdainDecoderFront, Component, nn.Module):
    """StyleTTS2 decoder: encodes aligned text features with F0 and energy (AdaIN residual blocks,
    the last one upsampling x2 to the curves' rate), then an iSTFTNet generator.

    asr (B, dim_in, F), F0 and energy (B, 2F), acoustic style (B, S) -> (B, N) waveform."""

    kind = "decoder"
    name = "istftnet"
    description = "StyleTTS2 decoder with an iSTFTNet generator (Kokoro-82M)"

    class Params(BaseParams):
        dim_in: int = Field(512, ge=1, description="aligned text feature width (config hidden_dim)")
        style_dim: int = Field(128, ge=1, description="acoustic style dimension (config style_dim)")
        hidden: int = Field(1024, ge=1, description="width of the encode/decode blocks")
        residual_dim: int = Field(64, ge=1, description="width of the text features re-injected in every block")
        resblock_kernel_sizes: list[int] = Field([3, 7, 11], description="kernel of each parallel resblock")
        upsample_rates: list[int] = Field([10, 6], description="generator upsampling factors")
        upsample_initial_channel: int = Field(512, ge=2)
        resblock_dilation_sizes: list[list[int]] = Field([[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                                                         description="dilations of each parallel resblock")
        upsample_kernel_sizes: list[int] = Field([20, 12], description="kernels of the upsampling convolutions "
                                                 "(kernel - rate must be even)")
        gen_istft_n_fft: int = Field(20, ge=2)
        gen_istft_hop_size: int = Field(5, ge=1)
        sample_rate: int = Field(24000, ge=1, description="Hz of the waveform (the harmonic source is built for it)")
        harmonics: int = Field(8, ge=0, description="overtones of the harmonic source")
        voiced_threshold: float = Field(10.0, ge=0, description="F0 (Hz) above which a sample is voiced")
        dtype: Literal["float32", "bfloat16"] = Field(
            "float32", description="arithmetic of the generator's upsampling stages (the bulk of the work); "
            "bfloat16 (channels-last) is 1.5-1.9x faster where the CPU has native bf16, log-mel distance "
            "0.03-0.04 to float32 audio (Kokoro-82M); the harmonic source, the last convolution and the "
            "inverse STFT stay float32")

    def __init__(self, *, dim_in, style_dim, hidden, residual_dim, resblock_kernel_sizes, upsample_rates,
                 upsample_initial_channel, resblock_dilation_sizes, upsample_kernel_sizes, gen_istft_n_fft,
                 gen_istft_hop_size, sample_rate, harmonics, voiced_threshold, dtype) -> None:
        nn.Module.__init__(self)
        check_generator_sizes(resblock_kernel_sizes, upsample_rates, upsample_initial_channel,
                              resblock_dilation_sizes, upsample_kernel_sizes)
        self.sample_rate = sample_rate
        self.samples_per_frame = 2 * math.prod(upsample_rates) * gen_istft_hop_size
        self.build_front(dim_in, style_dim, hidden, residual_dim, upsample_initial_channel)
        self.generator = ISTFTNetGenerator(style_dim, resblock_kernel_sizes, upsample_rates, upsample_initial_channel,
                                           resblock_dilation_sizes, upsample_kernel_sizes, gen_istft_n_fft,
                                           gen_istft_hop_size, sample_rate, harmonics, voiced_threshold)
        self.dtype = dtype
        self.generator.use_dtype(getattr(torch, dtype))  # before loading: the weights are rounded once, on load

    def forward(self, asr: torch.Tensor, f0: torch.Tensor, energy: torch.Tensor, style: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.front(asr, f0, energy, style)
        return self.generator(x, style, f0, generator)

    def describe(self) -> dict:
        return {"sample_rate": self.sample_rate, "samples_per_frame": self.samples_per_frame, "dtype": self.dtype}
