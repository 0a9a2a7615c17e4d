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

CosyVoice3: when that entry is `!new:...CausalHiFTGenerator` (cosyvoice3.yaml) the same component
builds the causal generator of hift_causal.py instead; `inference(mel, finalize=...)` is then the
official `CausalHiFTGenerator.inference` and `causal_stream()` the official CosyVoice3
token2wav's HiFT cache (see `CosyVoiceHift.inference`).
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

    GENERATOR: ClassVar[str] = "HiFTGenerator"
    F0_PREDICTOR: ClassVar[str] = "ConvRNNF0Predictor"

    @property
    def hop_length(self) -> int:
        """Output samples per mel frame (480 for CosyVoice2)."""
        return int(np.prod(self.upsample_rates)) * self.hop_len

    @classmethod
    def from_args(cls, args: dict[str, Any], where: str = "hift") -> HiftConfig:
        """From the `hift:` entry's arguments (`!new:...<GENERATOR>`), errors naming the key."""
        args = dict(args)
        istft = args.pop("istft_params", None) or {}
        f0 = args.pop("f0_predictor", None)
        f0_args = f0.kwargs() if hasattr(f0, "kwargs") else dict(f0 or {})
        if f0 is not None and getattr(f0, "class_name", cls.F0_PREDICTOR) != cls.F0_PREDICTOR:
            raise ConfigError(f"{where}.f0_predictor: {cls.GENERATOR} takes a {cls.F0_PREDICTOR}, got {f0.target}")
        known = {f for f in cls.__dataclass_fields__ if f not in ("n_fft", "hop_len")}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown {cls.GENERATOR} argument(s) {unknown}")
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
            raise ConfigError(f"{where}: bad {cls.GENERATOR} arguments: {error}") from None
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
    """Per dilation d: x += conv_1(snake(conv_d(snake(x)))) (BigVGAN-style, 'same' padding, or
    left padding only when `causal`: CosyVoice3's causal HiFT)."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...], causal: bool = False) -> None:
        super().__init__()
        if causal:
            from voxpipe.plugins.cosyvoice.hift_causal_source import CausalConv1d

            self.convs1 = nn.ModuleList(CausalConv1d(channels, channels, kernel_size, dilation=d) for d in dilations)
            self.convs2 = nn.ModuleList(CausalConv1d(channels, channels, kernel_size) for _ in dilations)
        else:
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


def source_stages(config: HiftConfig) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """Per upsampling stage i, how the source's STFT joins it: (channels, rate, kernel, dilations):
    the STFT frames are downsampled by `rate` (the product of the later stages' upsample rates, 1
    for the last) to the stage's `channels` (base_channels / 2^(i+1)), then pass a Snake resblock
    of `kernel` and `dilations`."""
    c = config
    rates = np.cumprod([1, *c.upsample_rates[::-1][:-1]])[::-1]
    return [(c.base_channels // 2 ** (i + 1), int(rate), k, d)
            for i, (rate, k, d) in enumerate(zip(rates, c.source_resblock_kernel_sizes,
                                                 c.source_resblock_dilation_sizes))]


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
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for channels, rate, k, d in source_stages(c):
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
        spectrum = self.fuse_and_upsample(self.conv_pre(mel), self.source_spectrum(source))
        return self.spectrum_to_speech(spectrum).clamp(-self.config.audio_limit, self.config.audio_limit)

    def source_spectrum(self, source: torch.Tensor) -> torch.Tensor:
        """source (B, 1, N) -> STFT real and imaginary parts (B, n_fft + 2, N / hop_len + 1)."""
        c = self.config
        spec = torch.view_as_real(torch.stft(source.squeeze(1), c.n_fft, c.hop_len, c.n_fft, window=self.stft_window,
                                             return_complex=True))
        return torch.cat([spec[..., 0], spec[..., 1]], dim=1)

    def fuse_and_upsample(self, x: torch.Tensor, source_spec: torch.Tensor) -> torch.Tensor:
        """conv_pre's output (B, base_channels, T) + the source's spectrum -> conv_post's output
        (B, n_fft + 2, T * prod(upsample_rates) + 1): log-magnitudes then phases."""
        c = self.config
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
        return self.conv_post(F.leaky_relu(x))  # default slope 0.01, as the official code

    def spectrum_to_speech(self, x: torch.Tensor) -> torch.Tensor:
        """conv_post's output (B, n_fft + 2, F) -> iSTFT speech (B, (F - 1) * hop_len), not clamped."""
        c = self.config
        bins = c.n_fft // 2 + 1
        magnitude = torch.exp(x[:, :bins]).clip(max=1e2)
        phase = torch.sin(x[:, bins:])  # the official model's phase is sin(x) (its note: redundant)
        spectrum = torch.complex(magnitude * torch.cos(phase), magnitude * torch.sin(phase))
        return torch.istft(spectrum, c.n_fft, c.hop_len, c.n_fft, window=self.stft_window)


class HiftParams(Params):
    model_dir: str | None = Field(None, description="official model folder (cosyvoice2.yaml or cosyvoice3.yaml "
                                                    "+ hift.pt)")
    weights: str | None = Field(None, description="hift.pt (default: model_dir/hift.pt)")
    hyperparams: str | None = Field(None, description="cosyvoice2.yaml / cosyvoice3.yaml (default: the one in "
                                                      "model_dir)")
    seed: int | None = Field(0, description="CosyVoice2 HiFT: seed of the NSF source's random phase and noise for "
                                            "each decode() call (None: a fresh random seed each call). CosyVoice3 "
                                            "causal HiFT: seed of its fixed noise table, drawn once at load (None: "
                                            "a random seed at load)")
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
        self.causal = isinstance(self.config, _causal().CausalHiftConfig)
        if self.causal:
            causal = _causal()
            noise_seed = torch.Generator().seed() if seed is None else int(seed)  # None: nondeterministic
            self.model = causal.CausalHiftGenerator(self.config, causal.FixedSourceNoise(noise_seed,
                                                                                         self.config.nb_harmonics + 1))
            causal.load_causal_hift(self.model, weights_file)
        else:
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

    @property
    def lookahead_frames(self) -> int:
        """Mel frames at the end whose speech `inference(..., finalize=False)` withholds (CosyVoice3:
        3 + conv_pre_look_right + 1 = 8); 0 for CosyVoice2's HiFT (no finalize=False)."""
        return self.model.lookahead_frames if self.causal else 0

    def _check(self, mel: torch.Tensor, min_frames: int = 1) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[1] != self.feature_dim:
            raise ValueError(f"cosyvoice-hift expects mel features (B, {self.feature_dim}, T), got shape "
                             f"{tuple(mel.shape)}")
        if mel.shape[2] < 1:
            raise ValueError("cosyvoice-hift: the mel has no frames")
        if mel.shape[2] < min_frames:
            raise ValueError(f"cosyvoice-hift: finalize=False needs at least {min_frames} mel frames (the last "
                             f"{self.lookahead_frames - 1} are look-ahead), got {mel.shape[2]}")
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
                  generator: torch.Generator | None = None, *,
                  finalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """mel (B, 80, T) -> (speech, source).

        CosyVoice2 HiFT (the official `HiFTGenerator.inference(speech_feat, cache_source)`):
        speech (B, T*hop), source (B, 1, T*hop). The first K source samples are replaced by
        `cache_source` (B, 1, K) (K <= T*hop). `generator`: the NSF source's randomness (default:
        a new one seeded with `seed`). `finalize` must stay True.

        CosyVoice3 causal HiFT (the official `CausalHiFTGenerator.inference(speech_feat, finalize)`):
        finalize=True: the mel ends the utterance; speech (B, T*hop), source (B, 1, T*hop).
        finalize=False: more mel follows; the last `lookahead_frames` (8) frames' speech is withheld:
        speech (B, (T - 8)*hop) (T >= 8), source (B, 1, (T - 3)*hop). The noise is a fixed table
        (from `seed`, indexed by sample), so re-vocoding a longer mel with the same prefix
        reproduces the samples already returned: streaming re-vocodes ALL the mel so far and keeps
        the samples past those already emitted (`causal_stream()` does that). No source cache and
        no generator (a ValueError if given: there is nothing to continue or draw).
        """
        if self.causal:
            if cache_source is not None and cache_source.shape[-1] > 0:
                raise ValueError("cosyvoice-hift: the CosyVoice3 causal HiFT takes no cache_source (its noise is a "
                                 "fixed per-sample table: re-vocode the whole mel so far; see causal_stream())")
            if generator is not None:
                raise ValueError(f"cosyvoice-hift: the CosyVoice3 causal HiFT draws nothing per call (its fixed "
                                 f"noise table comes from seed={self.model.noise.seed}); pass no generator")
            mel = self._check(mel, 1 if finalize else self.lookahead_frames)
            return self.model.inference(mel, finalize=bool(finalize))
        if not finalize:
            raise ValueError("cosyvoice-hift: finalize=False is the CosyVoice3 causal HiFT's; this is CosyVoice2's "
                             "HiFTGenerator (stream with cache_source)")
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
        """features (B, 80, T) mel -> waveform (B, T * hop_length) in [-audio_limit, audio_limit]
        (the whole utterance: finalize=True for the causal HiFT)."""
        return self.inference(features)[0]

    def causal_stream(self):
        """A `CausalHiftStream` for one utterance (CosyVoice3 causal HiFT only): `push(mel_chunk,
        finalize)` -> the new speech, as the official CosyVoice3 token2wav's HiFT cache."""
        if not self.causal:
            raise ValueError("cosyvoice-hift: causal_stream() is the CosyVoice3 causal HiFT's; CosyVoice2's HiFT "
                             "streams with inference(mel, cache_source)")
        return _causal().CausalHiftStream(self.inference, self.lookahead_frames)


def _causal():
    from voxpipe.plugins.cosyvoice import hift_causal

    return hift_causal


def read_hift_config(yaml_file: Path) -> HiftConfig:
    """The `hift:` entry of an official hyper-parameter file (read as data, never executed):
    `HiFTGenerator` (CosyVoice 1/2) -> HiftConfig, `CausalHiFTGenerator` (CosyVoice3) ->
    CausalHiftConfig; anything else is a ConfigError naming the file, key and class."""
    from voxpipe.plugins.cosyvoice.hyperparams import read_hyperparams

    node = read_hyperparams(yaml_file).tree.get("hift")
    if node is None or not hasattr(node, "kwargs"):
        raise ConfigError(f"{yaml_file}: no 'hift: !new:...HiFTGenerator' (or CausalHiFTGenerator) entry")
    configs = {"HiFTGenerator": HiftConfig, "CausalHiFTGenerator": _causal().CausalHiftConfig}
    if node.class_name not in configs:
        raise ConfigError(f"{yaml_file}: key 'hift' is {node.target}; cosyvoice-hift implements "
                          f"{' and '.join(configs)} (CosyVoice 1/2 and 3)")
    return configs[node.class_name].from_args(node.kwargs(), where=f"{yaml_file}: hift")
