"""Vocos building blocks, laid out so that the published state dicts load with strict key matching.

Attribute names mirror the official modules (`backbone.convnext.0.dwconv.weight`, `head.out.weight`,
`head.istft.window`, `feature_extractor.mel_spec.mel_scale.fb`, ...). Shapes use B = batch,
T = frames, C/D = channels, N = samples.
"""

from __future__ import annotations

import torch
from torch import nn

from voxpipe.core import onednn
from voxpipe.plugins.vocos.config import BackboneSpec, HeadSpec, MelSpec

MAX_MAGNITUDE = 1e2  # Vocos clips exp(log-magnitude) here to avoid overflow
LAYER_NORM_EPS = 1e-6


class MelFeatureBuffers(nn.Module):
    """The mel front-end's buffers (STFT window, mel filterbank) as stored in Vocos checkpoints.

    Decoding never uses them, but they are part of the published state dict, so strict loading
    needs a place for them. Filled from the checkpoint; zeros until then.
    """

    def __init__(self, spec: MelSpec):
        super().__init__()
        self.mel_spec = nn.Module()
        self.mel_spec.spectrogram = nn.Module()
        self.mel_spec.spectrogram.register_buffer("window", torch.zeros(spec.n_fft))
        self.mel_spec.mel_scale = nn.Module()
        self.mel_spec.mel_scale.register_buffer("fb", torch.zeros(spec.n_fft // 2 + 1, spec.n_mels))


class Linear(nn.Linear):
    """`nn.Linear` (same parameters and state-dict names) that runs float32 inference on oneDNN's
    GEMM when `fused` is set (`kernels: fused`; voxpipe/core/onednn.py): the same function, rounded
    differently from torch's MKL call at ~1e-6 relative."""

    fused: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused:
            return onednn.linear(x, self.weight, self.bias)
        return super().forward(x)


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k=7) -> LayerNorm -> Linear -> GELU -> Linear -> layer scale, residual."""

    def __init__(self, dim: int, intermediate_dim: int, layer_scale: bool):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.pwconv1 = Linear(dim, intermediate_dim)
        self.act = nn.GELU()
        self.pwconv2 = Linear(intermediate_dim, dim)
        self.gamma = nn.Parameter(torch.ones(dim)) if layer_scale else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, T) -> (B, C, T)."""
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        if self.gamma is not None:
            y = self.gamma * y
        return x + y.transpose(1, 2)


class VocosBackbone(nn.Module):
    """Conv embedding + LayerNorm + ConvNeXt blocks + final LayerNorm; keeps the frame rate."""

    def __init__(self, spec: BackboneSpec):
        super().__init__()
        self.dim = spec.dim
        self.embed = nn.Conv1d(spec.input_channels, spec.dim, kernel_size=7, padding=3)
        self.norm = nn.LayerNorm(spec.dim, eps=LAYER_NORM_EPS)
        self.convnext = nn.ModuleList(
            ConvNeXtBlock(spec.dim, spec.intermediate_dim, spec.layer_scale) for _ in range(spec.num_layers)
        )
        self.final_layer_norm = nn.LayerNorm(spec.dim, eps=LAYER_NORM_EPS)

    @property
    def receptive_field(self) -> int:
        """Frames of context on each side that reach one output frame (k=7 convs: 3 each)."""
        return 3 * (1 + len(self.convnext))

    compute_dtype = torch.float32  # the weights' dtype (VocosModel.use_dtype); inputs and outputs stay float32

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, F, T) -> hidden (B, T, D), time-major, float32."""
        x = self.norm(self.embed(features.to(self.compute_dtype)).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2)).float()


class ISTFT(nn.Module):
    """Inverse STFT with a periodic Hann window (`window` buffer) and either padding convention.

    center: torch.istft(center=True): frame t is centred on sample t * hop; (T - 1) * hop samples.
    same:   overlap-add, trimmed by (n_fft - hop) / 2 on each side; T * hop samples. torch.istft
            cannot do this (its NOLA check fails at the untrimmed edges), hence the explicit fold.
    """

    def __init__(self, n_fft: int, hop_length: int, padding: str):
        super().__init__()
        self.n_fft, self.hop_length, self.padding = n_fft, hop_length, padding
        self.register_buffer("window", torch.hann_window(n_fft))

    def num_samples(self, num_frames: int) -> int:
        if self.padding == "center":
            return max(num_frames - 1, 0) * self.hop_length
        return num_frames * self.hop_length

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """spec (B, n_fft / 2 + 1, T) complex -> wave (B, N)."""
        if self.padding == "center":
            return torch.istft(spec, self.n_fft, self.hop_length, self.n_fft, self.window, center=True)
        return self._istft_same(spec)

    def _istft_same(self, spec: torch.Tensor) -> torch.Tensor:
        num_frames = spec.shape[-1]
        pad = (self.n_fft - self.hop_length) // 2
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * self.window[None, :, None]
        length = (num_frames - 1) * self.hop_length + self.n_fft
        fold = dict(output_size=(1, length), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        wave = nn.functional.fold(frames, **fold)[:, 0, 0]
        squared = self.window.square()[None, :, None].expand(1, -1, num_frames)
        envelope = nn.functional.fold(squared, **fold)[0, 0, 0]
        wave, envelope = wave[:, pad : length - pad], envelope[pad : length - pad]
        if not bool((envelope > 1e-11).all()):
            raise ValueError(f"ISTFT window (n_fft {self.n_fft}, hop {self.hop_length}) does not overlap-add to > 0")
        return wave / envelope


class ISTFTHead(nn.Module):
    """Linear -> (log-magnitude, phase) -> complex spectrum -> ISTFT."""

    def __init__(self, spec: HeadSpec):
        super().__init__()
        self.out = Linear(spec.dim, spec.n_fft + 2)
        self.istft = ISTFT(spec.n_fft, spec.hop_length, spec.padding)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden (B, T, D) -> wave (B, N); N = istft.num_samples(T)."""
        log_mag, phase = self.out(hidden).transpose(1, 2).chunk(2, dim=1)
        magnitude = torch.exp(log_mag).clamp(max=MAX_MAGNITUDE)
        return self.istft(torch.polar(magnitude, phase))


class VocosModel(nn.Module):
    """feature_extractor (buffers only) + backbone + head: the vocos-mel-24khz state-dict layout."""

    def __init__(self, mel: MelSpec, backbone: BackboneSpec, head: HeadSpec):
        super().__init__()
        self.feature_extractor = MelFeatureBuffers(mel)
        self.backbone = VocosBackbone(backbone)
        self.head = ISTFTHead(head)

    def use_dtype(self, dtype: torch.dtype) -> None:
        """Compute the network body (the backbone) in `dtype`; the heads, which predict the
        log-magnitude and phase of the spectrum, and the ISTFT stay float32 (a bf16 head would
        round the spectrum to 8 significant bits)."""
        self.backbone.to(dtype)
        self.backbone.compute_dtype = dtype
