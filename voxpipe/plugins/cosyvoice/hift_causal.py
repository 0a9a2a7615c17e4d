"""CosyVoice3's causal HiFT (the official `CausalHiFTGenerator` + `CausalConvRNNF0Predictor`),
read from a cosyvoice3.yaml `hift:` entry and loaded strictly from `hift.pt`.

Same layout as CosyVoice2's HiFT (hift.py) with every convolution causal:

    mel (B, 80, T) --causal F0 predictor (float64, looks 3 frames ahead)--> F0 (B, T) Hz
    --x480 nearest, NSF with a fixed noise table--> source (B, 1, T*480)
    mel --conv_pre (kernel conv_pre_look_right + 1, looks that many frames ahead)--> [causal
    upsampling convs x8/x5/x3, + causal downsampled STFT of the source, causal Snake resblocks]
    --causal conv_post--> log-magnitude, phase --iSTFT (n_fft 16, hop 4)--> speech (B, T*480)

`finalize` (as the official `CausalHiFTGenerator.inference(speech_feat, finalize)`):
- True: the mel is the end of the utterance; the look-ahead convolutions see zeros past it;
  speech (B, T*hop), source (B, 1, T*hop).
- False: more mel follows. The last 3 frames (F0 look-ahead) and the 4 before them (conv_pre's
  `conv_pre_look_right`) are right context only, and the last `hop` samples of the iSTFT (not yet
  overlapped by the next frame) are withheld: speech (B, (T - 8)*hop) (T - `lookahead_frames`),
  source (B, 1, (T - 3)*hop). Every sample returned is final: vocoding a longer mel (same prefix)
  gives the same samples there, because the noise table is fixed per sample index.

`CausalHiftStream` is the official `CosyVoice3Model.token2wav`'s HiFT cache (all mel so far
re-vocoded per chunk, `speech_offset` samples already emitted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.core.errors import ConfigError
from voxpipe.plugins.cosyvoice.hift import (
    HiftConfig,
    HiftGenerator,
    SnakeResBlock,
    source_stages,
)
from voxpipe.plugins.cosyvoice.hift_causal_source import (
    CausalConv1d,
    CausalConvRNNF0Predictor,
    CausalDownsampleConv,
    CausalHarmonicSource,
    CausalUpsampleConv,
    FixedSourceNoise,
    official_causal_padding,
)
from voxpipe.plugins.cosyvoice.official_weights import (
    fold_weight_norm_exactly,
    load_strictly,
    read_state_dict,
)


@dataclass(frozen=True)
class CausalHiftConfig(HiftConfig):
    """The official `CausalHiFTGenerator` arguments (defaults: cosyvoice3.yaml)."""

    conv_pre_look_right: int = 4

    GENERATOR: ClassVar[str] = "CausalHiFTGenerator"
    F0_PREDICTOR: ClassVar[str] = "CausalConvRNNF0Predictor"

    @classmethod
    def from_args(cls, args: dict[str, Any], where: str = "hift") -> CausalHiftConfig:
        config = super().from_args(args, where)
        if config.sampling_rate == 22050:
            raise ConfigError(f"{where}: sampling_rate 22050 makes the official CausalHiFTGenerator use the "
                              f"non-causal per-call random SineGen; only the causal SineGen2 (other rates) is "
                              f"implemented")
        if config.conv_pre_look_right < 0:
            raise ConfigError(f"{where}.conv_pre_look_right: must be >= 0, got {config.conv_pre_look_right}")
        kernels = [(k, d) for k, ds in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes) for d in ds]
        kernels += [(k, d) for k, ds in zip(config.source_resblock_kernel_sizes,
                                            config.source_resblock_dilation_sizes) for d in ds]
        for k, d in kernels:
            if official_causal_padding(k, d) != (k - 1) * d:
                raise ConfigError(f"{where}: resblock kernel {k} with dilation {d} cannot be causal (the official "
                                  f"CausalConv1d changes the length: even kernel with even dilation)")
        return config


class CausalHiftGenerator(HiftGenerator):
    """The official `CausalHiFTGenerator`'s modules under the official names (state dict keys
    match); the F0 predictor is held in float64. `noise`: the source's fixed table."""

    def __init__(self, config: CausalHiftConfig, noise: FixedSourceNoise) -> None:
        nn.Module.__init__(self)  # the same attribute names as HiFTGenerator, other modules
        c = config
        self.config = c
        self.noise = noise
        self.m_source = CausalHarmonicSource(c.sampling_rate, c.hop_length, c.nb_harmonics, c.nsf_alpha,
                                             c.nsf_sigma, c.nsf_voiced_threshold)
        self.conv_pre = CausalConv1d(c.in_channels, c.base_channels, c.conv_pre_look_right + 1, side="right")
        self.ups = nn.ModuleList(
            CausalUpsampleConv(c.base_channels // 2**i, c.base_channels // 2 ** (i + 1), k, u)
            for i, (u, k) in enumerate(zip(c.upsample_rates, c.upsample_kernel_sizes)))
        self.source_downs = nn.ModuleList()
        self.source_resblocks = nn.ModuleList()
        for channels, rate, k, d in source_stages(c):
            if rate == 1:
                self.source_downs.append(CausalConv1d(c.n_fft + 2, channels, 1))
            else:
                self.source_downs.append(CausalDownsampleConv(c.n_fft + 2, channels, rate * 2, rate))
            self.source_resblocks.append(SnakeResBlock(channels, k, d, causal=True))
        self.resblocks = nn.ModuleList(
            SnakeResBlock(c.base_channels // 2 ** (i + 1), k, d, causal=True)
            for i in range(len(self.ups))
            for k, d in zip(c.resblock_kernel_sizes, c.resblock_dilation_sizes))
        self.conv_post = CausalConv1d(c.base_channels // 2 ** len(self.ups), c.n_fft + 2, 7)
        self.f0_predictor = CausalConvRNNF0Predictor(c.in_channels, c.f0_cond_channels, c.f0_num_class).double()
        self.register_buffer("stft_window", torch.hann_window(c.n_fft, periodic=True, dtype=torch.float64).float(),
                             persistent=False)

    @property
    def lookahead_frames(self) -> int:
        """Mel frames at the end whose speech `finalize=False` withholds: F0 look-ahead (3) +
        conv_pre_look_right (4) + the iSTFT's unfinished last frame (1) = 8 officially."""
        return self.f0_predictor.lookahead + self.config.conv_pre_look_right + 1

    def f0(self, mel: torch.Tensor, finalize: bool = True) -> torch.Tensor:
        """mel (B, C, T) float32 -> F0 (B, T) (finalize) or (B, T - 3) Hz, float32 (computed in float64)."""
        return self.f0_predictor(mel.to(torch.float64), finalize=finalize).to(mel.dtype)

    def source(self, mel: torch.Tensor, finalize: bool = True) -> torch.Tensor:  # type: ignore[override]
        """mel (B, C, T) -> NSF source (B, 1, T' * hop), T' the F0 frames."""
        f0 = self.f0(mel, finalize)
        f0_samples = F.interpolate(f0[:, None], scale_factor=float(self.config.hop_length), mode="nearest")
        return self.m_source(f0_samples.transpose(1, 2), self.noise).transpose(1, 2)

    def decode(self, mel: torch.Tensor, source: torch.Tensor, finalize: bool = True) -> torch.Tensor:
        """mel (B, C, T), source (B, 1, T * hop) -> speech (B, T * hop) (finalize) or
        (B, (T - conv_pre_look_right - 1) * hop): the last conv_pre_look_right frames are right context."""
        c = self.config
        source_spec = self.source_spectrum(source)
        if finalize:
            x = self.conv_pre(mel)
        else:
            keep = mel.shape[2] - c.conv_pre_look_right
            x = self.conv_pre(mel[:, :, :keep], mel[:, :, keep:])
            source_spec = source_spec[:, :, :keep * int(np.prod(c.upsample_rates)) + 1]
        speech = self.spectrum_to_speech(self.fuse_and_upsample(x, source_spec))
        if not finalize:  # not yet overlapped by the next frame's iSTFT window
            speech = speech[:, :speech.shape[1] - c.hop_length]
        return speech.clamp(-c.audio_limit, c.audio_limit)

    def inference(self, mel: torch.Tensor, finalize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The official `CausalHiFTGenerator.inference`: mel (B, C, T) -> (speech, source), shapes
        in the module docstring. finalize=False needs T >= lookahead_frames (checked by the caller)."""
        source = self.source(mel, finalize)
        decoder_mel = mel if finalize else mel[:, :, :mel.shape[2] - self.f0_predictor.lookahead]
        return self.decode(decoder_mel, source, finalize), source


def load_causal_hift(model: CausalHiftGenerator, path: Path) -> None:
    """Load the official `hift.pt` strictly. The F0 predictor's weight-norm pairs are folded in
    float64 (the official code casts the predictor, parametrization included, to float64 and
    computes the weight there); everything else as official_weights.load_official."""
    state = {key.removeprefix("generator."): value for key, value in read_state_dict(path).items()}
    kernel = getattr(torch, "_weight_norm", None)
    for g_name, v_name in (("parametrizations.weight.original0", "parametrizations.weight.original1"),
                           ("weight_g", "weight_v")):
        for key in [k for k in state if k.startswith("f0_predictor.") and k.endswith(g_name)]:
            prefix = key[: -len(g_name)]
            if prefix + v_name not in state or kernel is None:
                continue
            g, v = state.pop(key).double(), state.pop(prefix + v_name).double()
            state[prefix + "weight"] = kernel(v, g, 0)
    state = fold_weight_norm_exactly(state)
    expected = model.state_dict()
    state = {key: value.to(expected[key].dtype) if key in expected else value for key, value in state.items()}
    load_strictly(model, state, path, fits="the CausalHiFTGenerator its hyper-parameters describe")


class CausalHiftStream:
    """One utterance through the causal HiFT, chunk by chunk, as the official
    `CosyVoice3Model.token2wav` keeps `hift_cache_dict[uuid]`: every `push` appends the new mel
    frames to all earlier ones, vocodes the whole mel with `finalize`, and returns only the
    samples past `speech_offset` (those not returned before).

    `vocode(mel, finalize)` -> (speech (1, N), source) is the vocoder's call (CosyVoiceHift.inference).
    """

    def __init__(self, vocode, lookahead_frames: int) -> None:
        self._vocode = vocode
        self.lookahead_frames = lookahead_frames
        self.mel: torch.Tensor | None = None  # (B, F, frames so far)
        self.speech_offset = 0               # samples returned so far
        self.finished = False

    def push(self, mel: torch.Tensor, finalize: bool = False) -> torch.Tensor:
        """mel (B, F, t) new frames (t may be 0 when finalizing) -> new speech (B, n).

        finalize=False: n = (frames so far - lookahead_frames) * hop - speech_offset (empty while
        fewer than lookahead_frames + 1 frames exist). finalize=True: the rest of the utterance;
        afterwards the stream takes nothing more.
        """
        if self.finished:
            raise RuntimeError("this CausalHiftStream was finalized; start a new one per utterance")
        self.mel = mel if self.mel is None else torch.cat([self.mel, mel.to(self.mel)], dim=2)
        if finalize:
            self.finished = True
        elif self.mel.shape[2] <= self.lookahead_frames:  # nothing is final yet
            return self.mel.new_zeros(self.mel.shape[0], 0)
        speech, _ = self._vocode(self.mel, finalize=finalize)
        new = speech[:, self.speech_offset:]
        self.speech_offset += new.shape[1]
        return new
