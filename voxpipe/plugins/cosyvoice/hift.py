"""CosyVoice's HiFT vocoder (HiFTNet: neural source filter + iSTFTNet), the `cosyvoice-hift`
vocoder, loading the official `hift.pt` strictly.

    mel (B, 80, T) at 50 Hz --F0 predictor--> F0 (B, T) Hz --x480, NSF--> source s (B, 1, T*480)
    mel --conv_pre--> [leaky ReLU, transposed conv x8/x5/x3, + downsampled STFT of s through a
    resblock, mean of 3 Snake resblocks] --conv_post--> log-magnitude, phase (n_fft/2+1 bins each)
    --iSTFT (n_fft 16, hop 4)--> speech (B, T*480) at 24 kHz, clamped to +-audio_limit.

Streaming (`inference(mel, cache_source)`, as the official `HiFTGenerator.inference`): the first
samples of the source are replaced by `cache_source` (the previous chunk's source over the mel
frames both chunks share), so consecutive chunks keep the excitation's phase; the full source is
returned for the next call. The source is random (initial phases, noise): a `torch.Generator`
seeded s reproduces the official code run after `torch.manual_seed(s)` (see hift_source.py).

The hyper-parameters come from the `hift:` entry of cosyvoice2.yaml (read as data).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.vocoder import Vocoder
from voxpipe.plugins.cosyvoice.hift_source import ConvRNNF0Predictor, HarmonicSource
from voxpipe.plugins.cosyvoice.official_weights import (
    load_official,
    pick_official_files,
)

WEIGHTS_FILE = "hift.pt"


@dataclass(frozen=True)
class HiftConfig:
    """The official `HiFTGenerator` arguments (defaults: CosyVoice2's cosyvoice2.yaml)."""

    in_channels: int = 80
    base_channels: int = 512
    nb_harmonics: int = 8
    sampling_rate: int = 24000
    nsf_alpha: float = 0.1
    nsf_sigma: float = 0.003
    nsf_voiced_threshold: float = 10.0
    upsample_rates: tuple[int, ...] = (8, 5, 3)
    upsample_kernel_sizes: tuple[int, ...] = (16, 11, 7)
    n_fft: int = 16
    hop_len: int = 4
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    source_resblock_kernel_sizes: tuple[int, ...] = (7, 7, 11)
    source_resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    lrelu_slope: float = 0.1
    audio_limit: float = 0.99
    f0_cond_channels: int = 512
    f0_num_class: int = 1

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame (480 for CosyVoice2)."""
        return int(np.prod(self.upsample_rates)) * self.hop_len

    @classmethod
    def from_args(cls, args: dict[str, Any], where: str = "hift") -> HiftConfig:
        """From the `hift:` entry's arguments (`!new:...HiFTGenerator`), errors naming the key."""
        args = dict(args)
        istft = args.pop("istft_params", None) or {}
        f0 = args.pop("f0_predictor", None)
        f0_args = f0.kwargs() if hasattr(f0, "kwargs") else dict(f0 or {})
        if f0 is not None and getattr(f0, "class_name", "ConvRNNF0Predictor") != "ConvRNNF0Predictor":
            raise ConfigError(f"{where}.f0_predictor: only ConvRNNF0Predictor is implemented, got {f0.target}")
        known = {f for f in cls.__dataclass_fields__ if f not in ("n_fft", "hop_len")}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown HiFTGenerator argument(s) {unknown}")
        values: dict[str, Any] = {}
        for key, value in args.items():
            values[key] = _tupled(value)
        try:
            if "n_fft" in istft:
                values["n_fft"] = int(istft["n_fft"])
            if "hop_len" in istft:
                values["hop_len"] = int(istft["hop_len"])
            if "cond_channels" in f0_args:
                values["f0_cond_channels"] = int(f0_args["cond_channels"])
            if "num_class" in f0_args:
                values["f0_num_class"] = int(f0_args["num_class"])
            if "in_channels" in f0_args and int(f0_args["in_channels"]) != int(values.get("in_channels", 80)):
                raise ConfigError(f"{where}.f0_predictor.in_channels {f0_args['in_channels']} != in_channels "
                                  f"{values.get('in_channels', 80)}")
            config = cls(**values)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{where}: bad HiFTGenerator arguments: {error}") from None
        lengths = {len(config.upsample_rates), len(config.upsample_kernel_sizes), len(config.source_resblock_kernel_sizes),
                   len(config.source_resblock_dilation_sizes)}
        if len(lengths) != 1 or len(config.resblock_kernel_sizes) != len(config.resblock_dilation_sizes):
            raise ConfigError(f"{where}: upsample_rates, upsample_kernel_sizes and source_resblock_* must have one "
                              f"entry per upsampling stage; resblock kernel and dilation lists must match")
        if config.base_channels % (2 ** len(config.upsample_rates)):
            raise ConfigError(f"{where}: base_channels {config.base_channels} is not divisible by "
                              f"2^{len(config.upsample_rates)}")
        return config


def _tupled(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tupled(v) for v in value)
    return value


class Snake(nn.Module):
    """x + sin^2(alpha x) / alpha, one alpha per channel (linear scale)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.view(1, -1, 1)
        return x + (1.0 / (alpha + 1e-9)) * torch.sin(x * alpha).pow(2)


class SnakeResBlock(nn.Module):
    """Per dilation d: x += conv_1(snake(conv_d(snake(x)))) (BigVGAN-style, 'same' padding)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]) -> None:
        super().__init__()
        self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                              padding=(kernel_size * d - d) // 2) for d in dilations)
        self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2)
                                    for _ in dilations)
        self.activations1 = nn.ModuleList(Snake(channels) for _ in dilations)
        self.activations2 = nn.ModuleList(Snake(channels) for _ in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv1, conv2, act1, act2 in zip(self.convs1, self.convs2, self.activations1, self.activations2):
            x = x + conv2(act2(conv1(act1(x))))
        return x


class HiftGenerator(nn.Module):
    """The official `HiFTGenerator`'s modules under the official names (state dict keys match)."""

    def __init__(self, config: HiftConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.m_source = HarmonicSource(c.sampling_rate, c.hop_length, c.nb_harmonics, c.nsf_alpha, c.nsf_sigma,
                                       c.nsf_voiced_threshold)
        self.conv_pre = nn.Conv1d(c.in_channels, c.base_channels, 7, 1, padding=3)
        self.ups = nn.ModuleList(
            nn.ConvTranspose1d(c.base_channels // 2**i, c.base_channels // 2 ** (i + 1), k, u, padding=(k - u) // 2)
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)))
        # the source's STFT enters each stage downsampled to that stage's rate
        cumulative = np.cumprod([1, *c.upsample_rates[::-1][:-1]])[::-1]
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for i, (rate, k, d) in enumerate(zip(cumulative, c.source_resblock_kernel_sizes,
                                             c.source_resblock_dilation_sizes)):
            channels = c.base_channels // 2 ** (i + 1)
            rate = int(rate)
            if rate == 1:
                self.source_downs.append(nn.Conv1d(c.n_fft + 2, channels, 1, 1))
            else:
                self.source_downs.append(nn.Conv1d(c.n_fft + 2, channels, rate * 2, rate, padding=rate // 2))
            self.source_resblocks.append(SnakeResBlock(channels, k, d))
        self.resblocks = nn.ModuleList(
            SnakeResBlock(c.base_channels // 2 ** (i + 1), k, d)
            for i in range(len(self.ups))
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes))
        self.conv_post = nn.Conv1d(c.base_channels // 2 ** len(self.ups), c.n_fft + 2, 7, 1, padding=3)
        self.f0_predictor = ConvRNNF0Predictor(c.in_channels, c.f0_cond_channels, c.f0_num_class)
        # scipy's periodic Hann, computed in float64 as the official get_window("hann", n_fft)
        self.register_buffer("stft_window", torch.hann_window(c.n_fft, periodic=True, dtype=torch.float64).float(),
                             persistent=False)

    def source(self, mel: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """mel (B, C, T) -> NSF source (B, 1, T * hop)."""
        f0 = self.f0_predictor(mel)
        f0_samples = F.interpolate(f0[:, None], scale_factor=float(self.config.hop_length), mode="nearest")
        return self.m_source(f0_samples.transpose(1, 2), generator).transpose(1, 2)

    def decode(self, mel: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """mel (B, C, T), source (B, 1, N) -> speech (B, N)."""
        c = self.config
        spec = torch.view_as_real(torch.stft(source.squeeze(1), c.n_fft, c.hop_len, c.n_fft, window=self.stft_window,
                                             return_complex=True))
        source_spec = torch.cat([spec[..., 0], spec[..., 1]], dim=1)
        x = self.conv_pre(mel)
        kernels = len(c.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, c.lrelu_slope))
            if i == len(self.ups) - 1:
                x = F.pad(x, (1, 0), mode="reflect")
            x = x + self.source_resblocks[i](self.source_downs[i](source_spec))
            total = self.resblocks[i * kernels](x)
            for j in range(1, kernels):
                total = total + self.resblocks[i * kernels + j](x)
            x = total / kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as the official code
        bins = c.n_fft // 2 + 1
        magnitude = torch.exp(x[:, :bins]).clip(max=1e2)
        phase = torch.sin(x[:, bins:])  # the official model's phase is sin(x) (its note: redundant)
        spectrum = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        speech = torch.istft(spectrum, c.n_fft, c.hop_len, c.n_fft, window=self.stft_window)
        return speech.clamp(-c.audio_limit, c.audio_limit)


class HiftParams(Params):
    model_dir: str | None = Field(None, description="official model folder (cosyvoice2.yaml + hift.pt)")
    weights: str | None = Field(None, description="hift.pt (default: model_dir/hift.pt)")
    hyperparams: str | None = Field(None, description="cosyvoice2.yaml (default: the one in model_dir)")
    seed: int | None = Field(0, description="seed of the NSF source's random phase and noise for each decode() "
                                            "call (None: a fresh random seed each call)")
    device: str = Field("cpu", description="torch device")


class CosyVoiceHift(Vocoder):
    """CosyVoice HiFT: 80-bin mel at 50 Hz -> 24 kHz speech (F0-driven NSF source + iSTFT)."""

    name: ClassVar[str] = "cosyvoice-hift"
    description: ClassVar[str] = "CosyVoice HiFT vocoder (NSF source + iSTFT; official hift.pt, streaming source cache)"
    Params: ClassVar[type[Params]] = HiftParams

    def __init__(self, *, model_dir, weights, hyperparams, seed, device) -> None:
        yaml_file, weights_file = pick_official_files(model_dir, hyperparams, weights, WEIGHTS_FILE)
        self.config = read_hift_config(yaml_file)
        self.files = {"hyperparams": yaml_file, "weights": weights_file}
        self.model = HiftGenerator(self.config)
        load_official(self.model, weights_file, strip_prefix="generator.")
        try:
            self.device = torch.device(device)
            self.model.eval().to(self.device)
        except (RuntimeError, AssertionError) as error:
            raise ConfigError(f"cosyvoice-hift: cannot use device {device!r}: {error}") from None
        self.seed = seed
        self.sample_rate = self.config.sampling_rate
        self.hop_length = self.config.hop_length
        self.feature_sample_rate = self.sample_rate
        self.feature_dim = self.config.in_channels

    def _check(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[1] != self.feature_dim:
            raise ValueError(f"cosyvoice-hift expects mel features (B, {self.feature_dim}, T), got shape "
                             f"{tuple(mel.shape)}")
        if mel.shape[2] < 1:
            raise ValueError("cosyvoice-hift: the mel has no frames")
        if not torch.isfinite(mel).all():
            raise ValueError("cosyvoice-hift: the mel has NaN or infinite values")
        return mel.to(self.device, torch.float32)

    def _generator(self) -> torch.Generator:
        generator = torch.Generator(device=self.device)
        if self.seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(self.seed))
        return generator

    @torch.inference_mode()
    def inference(self, mel: torch.Tensor, cache_source: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, 80, T), cache_source (B, 1, K) or None -> (speech (B, T*hop), source (B, 1, T*hop)).

        The first K source samples are replaced by `cache_source` (K <= T*hop). `generator`:
        the NSF source's randomness (default: a new one seeded with `seed`).
        """
        mel = self._check(mel)
        generator = generator if generator is not None else self._generator()
        source = self.model.source(mel, generator)
        if cache_source is not None and cache_source.shape[-1] > 0:
            if cache_source.dim() != 3 or cache_source.shape[1] != 1 or cache_source.shape[-1] > source.shape[-1]:
                raise ValueError(f"cache_source must be (B, 1, K) with K <= {source.shape[-1]} samples "
                                 f"({mel.shape[2]} frames x {self.hop_length}), got {tuple(cache_source.shape)}")
            source[:, :, :cache_source.shape[-1]] = cache_source.to(source)
        return self.model.decode(mel, source), source

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, 80, T) mel -> waveform (B, T * hop_length) in [-audio_limit, audio_limit]."""
        return self.inference(features)[0]


def read_hift_config(yaml_file: Path) -> HiftConfig:
    """The `hift:` entry of an official hyper-parameter file (read as data, never executed)."""
    from voxpipe.plugins.cosyvoice.hyperparams import read_official_entry

    node = read_official_entry(yaml_file, "hift", "HiFTGenerator", "cosyvoice-hift (CosyVoice 1/2)")
    return HiftConfig.from_args(node.kwargs(), where=f"{yaml_file}: hift")
