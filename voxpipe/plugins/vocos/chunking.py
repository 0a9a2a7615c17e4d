"""Process long frame sequences in overlapping chunks, so network activations stay bounded.

The T frames are split into `ceil(T / chunk_frames)` cores of near-equal size. Each core is
processed together with `context` extra frames on each side (the window), and only the part of the
result that belongs to the core is kept. For a computation that is local in time with a receptive
field within `context`, the stitched result equals one-pass processing up to float rounding.

Alignment: the stages used here are shift-invariant by whole frames, i.e. element m (last axis)
of the result for a window starting at frame `lo` is element `lo * rate + m` of the one-pass
result, where `rate` is elements per frame (1 for frame-rate tensors, the hop for waveforms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch


@dataclass(frozen=True)
class Chunk:
    """Frames [lo, hi) are processed; frames [start, end) are kept. lo <= start < end <= hi."""

    lo: int
    start: int
    end: int
    hi: int
    last: bool


def plan_chunks(num_frames: int, chunk_frames: int, context_frames: int) -> list[Chunk]:
    """Cores of at most `chunk_frames` frames covering [0, num_frames), with their windows."""
    count = max(1, math.ceil(num_frames / chunk_frames))
    edges = [round(i * num_frames / count) for i in range(count + 1)]
    return [
        Chunk(max(0, start - context_frames), start, end, min(num_frames, end + context_frames), i == count - 1)
        for i, (start, end) in enumerate(zip(edges[:-1], edges[1:]))
    ]


def place(out: torch.Tensor, piece: torch.Tensor, chunk: Chunk, rate: int) -> None:
    """Copy the core part of `piece` (the result for frames [chunk.lo, chunk.hi), last axis at
    `rate` elements per frame) into `out` (the whole result). The last chunk also fills the tail
    beyond its last frame (e.g. the final samples of an ISTFT)."""
    begin = chunk.start * rate
    stop = out.shape[-1] if chunk.last else min(out.shape[-1], chunk.end * rate)
    offset = chunk.lo * rate
    if stop - offset > piece.shape[-1]:
        raise ValueError(f"chunk result has {piece.shape[-1]} elements, needs {stop - offset}")
    out[..., begin:stop] = piece[..., begin - offset : stop - offset]


def decode_in_chunks(
    decode: Callable[[torch.Tensor], torch.Tensor],
    features: torch.Tensor,
    *,
    chunk_frames: int,
    context_frames: int,
    samples_per_frame: int,
    total_samples: int,
) -> torch.Tensor:
    """features (B, F, T) -> decode(features) (B, total_samples), decoding at most
    `chunk_frames + 2 * context_frames` frames at a time."""
    out = features.new_zeros(features.shape[0], total_samples)
    for chunk in plan_chunks(features.shape[-1], chunk_frames, context_frames):
        place(out, decode(features[..., chunk.lo : chunk.hi]), chunk, samples_per_frame)
    return out
