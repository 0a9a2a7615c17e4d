"""What the checkpoint-backed Vocos vocoders share: loading, device, input checks, chunking."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.errors import ConfigError
from voxpipe.core.kernels import set_fused
from voxpipe.core.vocoder import Vocoder
from voxpipe.core.weights import resolve_path
from voxpipe.plugins.vocos.checkpoint import (
    CheckpointFiles,
    find_files,
    fold_weight_norm,
    load_strict,
    read_state_dict,
)
from voxpipe.plugins.vocos.chunking import decode_in_chunks
from voxpipe.plugins.vocos.config import parse_sections


def torch_device(device: str) -> torch.device:
    try:
        return torch.device(device)
    except (RuntimeError, ValueError) as error:
        raise ConfigError(f"device {device!r} is not a torch device ({error}); use e.g. 'cpu' or 'cuda:0'") from None


DEFAULT_CHUNK_FRAMES = 2048  # ~22 s at 24 kHz / hop 256: sentence-length inputs decode in one pass


class CheckpointVocoderParams(Params):
    """Parameters every checkpoint-loading Vocos vocoder shares (subclasses add `weights`)."""

    device: str = Field("cpu", description="torch device")
    chunk_frames: int | None = Field(
        DEFAULT_CHUNK_FRAMES, ge=16,
        description="decode longer inputs in chunks of this many frames; None = one pass (docs/vocoders.md)",
    )
    kernels: Literal["reference", "fused"] = Field(
        "reference",
        description="reference: torch's kernels (parity with the official vocoder); fused: float32 Linear layers "
                    "on oneDNN's GEMM (faster on AVX-512 CPUs, rounding ~1e-6; --precision auto/bf16 choose it)",
    )
    dtype: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="arithmetic of the network body (backbone, 48 kHz upsampler); the heads predicting the "
                    "spectrum and the ISTFT stay float32. bfloat16: faster where the CPU has native bf16 "
                    "(--precision auto/bf16 choose it there), log-mel distance ~0.006 to float32 "
                    "(docs/vocoders.md)",
    )


class CheckpointVocoder(Vocoder):
    """Base of vocoders built from `config.yaml` + a checkpoint.

    Subclasses set `SECTIONS` (config sections they need), `CHECKPOINT_NAMES`, `SUBDIRS` (where
    inside the weights location to look) and implement `_build(specs)`, `_decode_one_pass`,
    `num_samples` and `context_frames`.
    """

    SECTIONS: tuple[str, ...] = ()
    CHECKPOINT_NAMES: tuple[str, ...] = ()
    SUBDIRS: tuple[str, ...] = ("",)

    model: nn.Module
    files: CheckpointFiles
    chunk_frames: int | None

    def _load(self, weights: str, device: str, kernels: str, dtype: str) -> dict[str, Any]:
        """Resolve, parse config, build the module, load weights strictly, choose its kernels and
        the dtype of its body; returns the specs."""
        target = torch_device(device)
        location = resolve_path(weights, what=f"{self.name} weights")  # local path, or hf:// resolved
        self.files = find_files(Path(location), self.CHECKPOINT_NAMES, self.SUBDIRS, what=f"{self.name} weights")
        specs = parse_sections(self.files.config, self.SECTIONS)
        model = self._build(specs)
        state_dict = fold_weight_norm(read_state_dict(self.files.checkpoint), self.files.checkpoint)
        load_strict(model, state_dict, self.files)
        set_fused(model, kernels)  # the Linear layers (modules.Linear)
        self.kernels, self.dtype = kernels, dtype
        model.use_dtype(getattr(torch, dtype))  # after loading: the float32 weights are rounded once
        try:
            self.model = model.eval().to(target)
        except (RuntimeError, AssertionError) as error:  # e.g. CUDA requested but unavailable
            raise ConfigError(f"cannot move {self.name} to device {device!r}: {error}") from None
        self.device = target
        return specs

    def _build(self, specs: dict[str, Any]) -> nn.Module:
        """Check the specs agree with each other, set rate attributes they imply, build the module."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {**super().describe(), "kernels": self.kernels, "dtype": self.dtype}

    # ---- decoding ----------------------------------------------------------------------------
    @property
    def samples_per_frame(self) -> int:
        """Output samples per input frame (hop scaled to the output rate)."""
        return self.hop_length * self.sample_rate // self.feature_sample_rate

    def num_samples(self, num_frames: int) -> int:
        """Length of `decode` output for `num_frames` input frames."""
        raise NotImplementedError

    @property
    def context_frames(self) -> int:
        """Frames decoded on each side of a chunk (see docs/vocoders.md)."""
        raise NotImplementedError

    def _decode_one_pass(self, features: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _decode_chunked(self, features: torch.Tensor) -> torch.Tensor:
        """Decode in chunks of `chunk_frames` with `context_frames` on each side; exact for a
        decoder whose receptive field `context_frames` covers."""
        return decode_in_chunks(
            self._decode_one_pass,
            features,
            chunk_frames=self.chunk_frames,
            context_frames=self.context_frames,
            samples_per_frame=self.samples_per_frame,
            total_samples=self.num_samples(features.shape[-1]),
        )

    def _check_features(self, features: torch.Tensor) -> torch.Tensor:
        if not isinstance(features, torch.Tensor) or features.dim() != 3:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(f"{self.name}.decode expects features (B, F, T), got {shape}")
        if features.shape[1] != self.feature_dim:
            raise ValueError(
                f"{self.name}.decode expects {self.feature_dim} feature channels (B, F, T), "
                f"got shape {tuple(features.shape)}"
            )
        return features.to(device=self.device, dtype=torch.float32)

    def decode(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, F, T) log-mel, channel-major -> wave (B, num_samples(T)) at `sample_rate`.

        Inputs longer than `chunk_frames` are decoded in overlapping chunks (bounded network
        activations, same result up to float rounding; docs/vocoders.md).
        The result is on the device of `features`.
        """
        source_device = features.device if isinstance(features, torch.Tensor) else None
        features = self._check_features(features)
        batch, _, num_frames = features.shape
        with torch.no_grad():
            if self.num_samples(num_frames) == 0:
                wave = features.new_zeros(batch, 0)
            elif self.chunk_frames is None or num_frames <= self.chunk_frames:
                wave = self._decode_one_pass(features)
            else:
                wave = self._decode_chunked(features)
        return wave.to(source_device)
