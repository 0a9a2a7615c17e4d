"""CosyVoice3's causal HiFT excitation: the causal F0 predictor, causal convolutions, and the NSF
harmonic source with a FIXED noise table (the official `CausalConvRNNF0Predictor`,
`cosyvoice.transformer.convolution.CausalConv1d*` and `SourceModuleHnNSF(causal=True)` with
`SineGen2(causal=True)`).

Causal convolutions (no padding of their own, the official padding rules):
- `CausalConv1d(..., side="left")`: `pad` zeros before the input (pad = (k - 1) d), output t
  sees inputs t - pad .. t.
- `CausalConv1d(..., side="right")`: `pad` frames after the input, look-ahead: the real next
  frames when given (`right_context`), else zeros (the end of the utterance).
- `CausalUpsampleConv`: nearest upsampling x stride, then k - 1 zeros on the left.
- `CausalDownsampleConv`: stride - 1 zeros on the left, kernel 2 x stride.

`CausalConvRNNF0Predictor`: mel (B, 80, T) -> F0 (B, T) Hz. Its first convolution (kernel 4)
looks 3 frames ahead; `finalize=False` takes those frames from the input, so T - 3 frames come
out. The official code runs it in float64 ("f0_predictor precision is crucial for causal
inference"); the generator keeps it in float64 likewise.

`FixedSourceNoise`: unlike CosyVoice2's HiFT, the causal source draws nothing at inference; the
official module draws, once at construction from torch's global RNG, an initial phase per harmonic
(1, H+1) (fundamental 0) and a UNIFORM [0, 1) noise table (1, 300 s x 24 kHz, H+1), and sample n
of every call uses row n. So re-vocoding a longer mel reproduces the earlier samples (what
CosyVoice3's streaming relies on). Here the table comes from `torch.Generator().manual_seed(seed)`:
`rand(1, H+1)` (column 0 zeroed), then `rand(1, N, H+1)` grown on demand (CPU `rand` draws are
sequential, so growing keeps earlier rows: a test checks it). The official tables depend on the
global RNG state when the model was built (seed 1986 plus every earlier initialisation), so
parity fixtures inject these tables into the official module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from voxpipe.plugins.cosyvoice.hift_source import HarmonicSourceBase


def official_causal_padding(kernel_size: int, dilation: int = 1) -> int:
    """The official `CausalConv1d.causal_padding` (equals (k - 1) d except for even k with even d,
    where the official module cannot keep the length)."""
    return int((kernel_size * dilation - dilation) / 2) * 2 + (kernel_size + 1) % 2


class CausalConv1d(nn.Conv1d):
    """Stride-1 convolution padded on one side only; (B, C, T) -> (B, C_out, T)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 side: str = "left") -> None:
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        if side not in ("left", "right"):
            raise ValueError(f"side must be 'left' or 'right', got {side!r}")
        self.pad = official_causal_padding(kernel_size, dilation)
        if self.pad != (kernel_size - 1) * dilation:
            raise ValueError(f"a causal convolution of kernel {kernel_size} and dilation {dilation} cannot keep the "
                             f"length (the official CausalConv1d pads {self.pad})")
        self.side = side

    def forward(self, x: torch.Tensor, right_context: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, T); right_context (B, C, pad) frames after x ("right" side only; default zeros)."""
        if self.pad == 0:
            return super().forward(x)
        if self.side == "left":
            return super().forward(F.pad(x, (self.pad, 0)))
        if right_context is None:
            right_context = x.new_zeros(x.shape[0], x.shape[1], self.pad)
        return super().forward(torch.cat([x, right_context], dim=2))


class CausalUpsampleConv(nn.Conv1d):
    """Nearest upsampling x `stride`, then a left-padded convolution: (B, C, T) -> (B, C_out, T stride).
    The official `CausalConv1dUpsample` (a Conv1d: weights (C_out, C, k), not a transposed conv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size)
        self.stride_up = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=float(self.stride_up), mode="nearest")
        return super().forward(F.pad(x, (self.kernel_size[0] - 1, 0)))


class CausalDownsampleConv(nn.Conv1d):
    """Strided convolution after stride - 1 zeros on the left (the official `CausalConv1dDownSample`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.stride[0] - 1, 0)))


class CausalConvRNNF0Predictor(nn.Module):
    """mel (B, C, T) -> F0 (B, T') >= 0 Hz; T' = T, or T - lookahead with finalize=False."""

    LOOKAHEAD_KERNEL = 4  # the official first convolution (hard-coded there)

    def __init__(self, in_channels: int, cond_channels: int, num_class: int = 1) -> None:
        super().__init__()
        layers: list[nn.Module] = [CausalConv1d(in_channels, cond_channels, self.LOOKAHEAD_KERNEL, side="right"),
                                   nn.ELU()]
        for _ in range(4):
            layers += [CausalConv1d(cond_channels, cond_channels, 3, side="left"), nn.ELU()]
        self.condnet = nn.Sequential(*layers)
        self.classifier = nn.Linear(cond_channels, num_class)

    @property
    def lookahead(self) -> int:
        """Mel frames the first convolution looks ahead (3)."""
        return self.condnet[0].pad

    def forward(self, mel: torch.Tensor, finalize: bool = True) -> torch.Tensor:
        first = self.condnet[0]
        if finalize:
            hidden = first(mel)
        else:  # the last `lookahead` frames are right context only
            keep = mel.shape[2] - self.lookahead
            hidden = first(mel[:, :, :keep], mel[:, :, keep:])
        for layer in self.condnet[1:]:
            hidden = layer(hidden)
        return torch.abs(self.classifier(hidden.transpose(1, 2)).squeeze(-1))


class FixedSourceNoise:
    """The causal source's fixed random tables (see the module docstring), drawn from `seed`.

    initial_phase: (1, H+1) in [0, 1) cycles, column 0 = 0.  rows(n): (1, n, H+1) uniform [0, 1).
    Kept on the CPU; grown in blocks as longer inputs arrive.
    """

    GROW_SAMPLES = 24000 * 10

    def __init__(self, seed: int, width: int) -> None:
        self.seed = int(seed)
        self.width = width
        self._generator = torch.Generator().manual_seed(self.seed)
        self.initial_phase = torch.rand(1, width, generator=self._generator)
        self.initial_phase[:, 0] = 0
        self._table = torch.zeros(1, 0, width)

    def rows(self, samples: int) -> torch.Tensor:
        """(1, samples, H+1): rows 0 .. samples - 1 of the table."""
        missing = samples - self._table.shape[1]
        if missing > 0:
            grow = max(missing, self.GROW_SAMPLES)
            more = torch.rand(1, grow, self.width, generator=self._generator)
            self._table = torch.cat([self._table, more], dim=1)
        return self._table[:, :samples]


class CausalHarmonicSource(HarmonicSourceBase):
    """F0 per sample (B, N, 1) Hz -> merged harmonic source (B, N, 1) (the official
    `SourceModuleHnNSF` with the causal `SineGen2`, in eval mode)."""

    def sines(self, f0: torch.Tensor, noise: FixedSourceNoise) -> torch.Tensor:
        """(B, N, 1) Hz -> (B, N, H+1) sines (amplitude sine_amp) where voiced, plus the table's noise."""
        # phase integrated at frame rate, then held for the frame's samples (nearest: causal)
        phase = self.frame_rate_phase(f0, noise.initial_phase.to(f0.device), "nearest")
        waves = torch.sin(phase) * self.sine_amp
        return self.voiced_with_noise(waves, f0, noise.rows(f0.shape[1]).to(f0.device))

    def forward(self, f0: torch.Tensor, noise: FixedSourceNoise) -> torch.Tensor:
        return torch.tanh(self.l_linear(self.sines(f0, noise)))
