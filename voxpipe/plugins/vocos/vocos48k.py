"""`vocos-48k`: LuxTTS's dual-head Vocos (from LinaCodec): 24 kHz mel in, 48 kHz waveform out.

Data flow for features (B, F, T):
    backbone           -> hidden (B, T, D)
    head (24 kHz)      -> head24k (B, 256 (T - 1))       ISTFT, padding "center"
    resample 24 -> 48  -> head24k_up48 (B, 512 (T - 1))   windowed sinc (voxpipe.dsp.resample)
    upsampler          -> (B, 4T, D)                      transposed convs + Snake ResNet blocks
    head_48k           -> head48k_raw (B, 128 * 4T)       ISTFT, padding "same"
    crossover merge    -> (B, 512 (T - 1)): head24k_up48 below `freq_range`, head48k above
(numbers for the published config; all of them are read from config.yaml).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from pydantic import Field

from voxpipe.dsp.resample import resample_sinc
from voxpipe.plugins.vocos.base import CheckpointVocoder, CheckpointVocoderParams
from voxpipe.plugins.vocos.chunking import place, plan_chunks
from voxpipe.plugins.vocos.config import ModelConfigError
from voxpipe.plugins.vocos.crossover import crossover_merge
from voxpipe.plugins.vocos.upsampler import DualHeadVocosModel, GroupStatsAccumulator



class LuxVocos48k(CheckpointVocoder):
    """Dual-head Vocos of LuxTTS: 24 kHz head + upsampled 48 kHz head merged by an FFT crossover."""

    name = "vocos-48k"
    description = "LuxTTS 48 kHz dual-head Vocos (LinaCodec): 24 kHz head below freq_range, 48 kHz head above"

    class Params(CheckpointVocoderParams):
        weights: str = Field(
            "hf://YatharthS/LuxTTS/vocoder",
            description="directory with config.yaml + vocos.bin (LuxTTS) or pytorch_model.bin (LinaCodec), "
            "or its parent (a `vocoder/` subdirectory is found), a checkpoint file, or hf://org/repo/path",
        )
        freq_range: float = Field(12000, gt=0, description="crossover frequency in Hz (LuxTTS sets 12000)")
        output: Literal["48k", "24k-smooth"] = Field(
            "48k",
            description="48k: merged output (official); 24k-smooth: the 24 kHz head resampled to 48 kHz only",
        )

    SECTIONS = ("feature_extractor", "backbone", "head", "upsampler", "head_48k")
    CHECKPOINT_NAMES = ("vocos.bin", "pytorch_model.bin", "model.safetensors")
    SUBDIRS = ("", "vocoder")  # the vocoder directory itself, or a LuxTTS / LinaCodec model directory

    def __init__(self, weights: str, device: str, freq_range: float,
                 output: Literal["48k", "24k-smooth"], chunk_frames: int | None, kernels: str, dtype: str):
        self.freq_range = float(freq_range)
        self.output = output
        self.chunk_frames = chunk_frames
        specs = self._load(weights, device, kernels, dtype)
        self.feature_sample_rate = specs["feature_extractor"].sample_rate
        self.hop_length = specs["head"].hop_length
        self.feature_dim = specs["backbone"].input_channels

    def _build(self, specs: dict[str, Any]) -> DualHeadVocosModel:
        mel, backbone, head, upsampler, head_48k = (specs[s] for s in self.SECTIONS)
        config = self.files.config
        checks = [
            ("feature_extractor.init_args.n_mels", mel.n_mels,
             "backbone.init_args.input_channels", backbone.input_channels),
            ("head.init_args.dim", head.dim, "backbone.init_args.dim", backbone.dim),
            ("head.init_args.hop_length", head.hop_length, "feature_extractor.init_args.hop_length", mel.hop_length),
            ("upsampler.init_args.in_channels", upsampler.in_channels, "backbone.init_args.dim", backbone.dim),
            ("head_48k.init_args.dim", head_48k.dim, "upsampler.init_args.in_channels", upsampler.in_channels),
        ]
        for key_a, value_a, key_b, value_b in checks:
            if value_a != value_b:
                raise ModelConfigError(f"{config}: {key_a} = {value_a} but {key_b} = {value_b}")
        # Output rate = rate of head_48k: prod(factors) * hop_48k of its samples span one 24 kHz frame.
        factor = math.prod(upsampler.upsample_factors) * head_48k.hop_length
        if (mel.sample_rate * factor) % head.hop_length:
            raise ModelConfigError(
                f"{config}: head_48k rate {mel.sample_rate} * {factor} / {head.hop_length} Hz is not an integer"
            )
        self.sample_rate = mel.sample_rate * factor // head.hop_length
        return DualHeadVocosModel(mel, backbone, head, upsampler, head_48k)

    # ---- stages (public for tests and inspection) ----------------------------------------------
    def backbone(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, F, T) -> backbone output (B, T, D), after the final LayerNorm."""
        with torch.no_grad():
            return self.model.backbone(self._check_features(features))

    def head_24k(self, hidden: torch.Tensor) -> torch.Tensor:
        """backbone output (B, T, D) -> 24 kHz head waveform (B, N24) at `feature_sample_rate`."""
        with torch.no_grad():
            return self.model.head(hidden.to(self.device, torch.float32))

    def smooth_48k(self, head24k: torch.Tensor) -> torch.Tensor:
        """24 kHz head waveform (B, N24) -> the same resampled to `sample_rate` (B, N): the low band."""
        return resample_sinc(head24k, self.feature_sample_rate, self.sample_rate)

    def upsample(self, hidden: torch.Tensor) -> torch.Tensor:
        """backbone output (B, T, D) -> upsampler output (B, T * prod(factors), D), time-major."""
        with torch.no_grad():
            return self.model.upsampler(hidden.to(self.device, torch.float32).transpose(1, 2)).transpose(1, 2)

    def head_48k(self, upsampled: torch.Tensor) -> torch.Tensor:
        """upsampler output (B, T', D) -> 48 kHz head waveform before trimming (B, hop_48k * T')."""
        with torch.no_grad():
            return self.model.head_48k(upsampled.to(self.device, torch.float32))

    def merge(self, head48k: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        """head48k (B, N') and the low band (B, N), N <= N' -> crossover at `freq_range` (B, N)."""
        if head48k.shape[-1] < low.shape[-1]:
            raise ValueError(
                f"48 kHz head gives {head48k.shape[-1]} samples, fewer than the low band's {low.shape[-1]}"
            )
        return crossover_merge(head48k[..., : low.shape[-1]], low, self.freq_range, self.sample_rate)

    # ---- decoding ---------------------------------------------------------------------------------
    def num_samples(self, num_frames: int) -> int:
        low = self.model.head.istft.num_samples(num_frames)
        return -(-low * self.sample_rate // self.feature_sample_rate)  # resampler length: ceil

    @property
    def context_frames(self) -> int:
        """Local receptive field of the network stages, in input frames (conservative)."""
        model = self.model
        low = math.ceil(model.head.istft.n_fft / model.head.istft.hop_length) + 1
        layers = model.upsampler.upsample_layers
        upsampler = sum(math.ceil(layer.kernel_size[0] / layer.stride[0]) + 2 for layer in layers)
        head_48k = math.ceil(model.head_48k.istft.n_fft / model.head_48k.istft.hop_length / model.upsampler.factor) + 1
        return model.backbone.receptive_field + max(low, upsampler + head_48k)

    def _decode_one_pass(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.model.backbone(features)
        low = self.smooth_48k(self.model.head(hidden))
        if self.output == "24k-smooth":
            return low
        upsampled = self.model.upsampler(hidden.transpose(1, 2)).transpose(1, 2)
        return self.merge(self.model.head_48k(upsampled), low)

    def _decode_chunked(self, features: torch.Tensor) -> torch.Tensor:
        """The one-pass result, with network activations bounded by the chunk size.

        The network runs per chunk (plus context); the two whole-sequence operations stay whole:
        the upsampler's GroupNorms get the statistics of the entire sequence (collected chunk by
        chunk, one norm after the other), and the resampler and crossover FFT run on the
        stitched waveforms. Memory beyond one chunk: the backbone output (B, D, T) and a few
        waveform-length buffers.
        """
        model = self.model
        batch, _, num_frames = features.shape
        chunks = plan_chunks(num_frames, self.chunk_frames, self.context_frames)
        hidden = features.new_zeros(batch, model.backbone.dim, num_frames)
        low_24k = features.new_zeros(batch, model.head.istft.num_samples(num_frames))
        for chunk in chunks:
            chunk_hidden = model.backbone(features[..., chunk.lo : chunk.hi])
            place(hidden, chunk_hidden.transpose(1, 2), chunk, 1)
            place(low_24k, model.head(chunk_hidden), chunk, model.head.istft.hop_length)
        low = self.smooth_48k(low_24k)
        del low_24k
        if self.output == "24k-smooth":
            return low

        upsampler = model.upsampler
        stats = []
        for index, norm in enumerate(upsampler.group_norms()):  # each norm's input depends on the previous norms
            accumulator, rate = GroupStatsAccumulator(norm), upsampler.norm_rate(index)
            for chunk in chunks:
                norm_input = upsampler(hidden[..., chunk.lo : chunk.hi], stats, stop_before=index)
                accumulator.add(norm_input[..., (chunk.start - chunk.lo) * rate : (chunk.end - chunk.lo) * rate])
            stats.append(accumulator.finish(hidden.dtype))

        istft_48k = model.head_48k.istft
        high = features.new_zeros(batch, istft_48k.num_samples(num_frames * upsampler.factor))
        for chunk in chunks:
            upsampled = upsampler(hidden[..., chunk.lo : chunk.hi], stats).transpose(1, 2)
            place(high, model.head_48k(upsampled), chunk, istft_48k.hop_length * upsampler.factor)
        del hidden
        return self.merge(high, low)

    def describe(self) -> dict:
        return {**super().describe(), "freq_range": self.freq_range, "output": self.output}
