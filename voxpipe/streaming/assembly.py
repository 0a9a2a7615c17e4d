"""Incremental versions of `Pipeline._assemble`: cross-fade, then edge-silence trim, then PCM16.

Both give, sample for sample, what the whole-text functions give on the concatenated input
(`voxpipe.dsp.crossfade.crossfade_concat` and `voxpipe.dsp.silence.trim_edge_silence`), so a
stream equals `synthesize()`; they only hold back what later audio can still change:

- `CrossfadeJoiner` holds the last `fade_samples` of the audio so far (the next chunk is mixed
  into them);
- `StreamingEdgeTrim` holds the start until the first loud 10 ms block is found (the leading
  silence is then known), and at the end everything the trailing trim could still cut: the
  audio after the last point that is loud whatever the total length turns out to be, plus
  100 ms (see `_safe_end`). For rates that are a whole number of kHz (8, 16, 24, 48 kHz: one
  millisecond is a whole number of samples) the result is exact; at other rates (22.05 kHz)
  pydub's millisecond rounding can add or drop under 1 ms at the very start, which the stream
  does not reproduce.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from voxpipe.dsp.silence import (
    leading_silence_ms,
    max_rms_below_dbfs,
    PcmSegment,
    from_int16,
    to_int16,
)
from voxpipe.core.audio import to_pcm16

THRESHOLD_DBFS = -50.0  # trim_edge_silence's threshold
KEEP_MS = 100           # silence kept at each edge
BLOCK_MS = 10           # pydub detect_leading_silence chunk size


class CrossfadeJoiner:
    """`crossfade_concat` one chunk at a time.

    push((C, N) chunk) -> (C, M) audio that no later chunk can change; finish() -> the rest.
    """

    def __init__(self, fade_samples: int) -> None:
        self.fade_samples = int(fade_samples)
        self._tail: torch.Tensor | None = None  # last min(fade, total) samples, not yet released
        self._total = 0                         # length of the joined audio so far

    def push(self, chunk: torch.Tensor) -> torch.Tensor:
        tail = self._tail
        if tail is None:
            joined = chunk
            self._total = chunk.shape[-1]
        else:
            overlap = min(self.fade_samples, tail.shape[-1], chunk.shape[-1])
            if overlap <= 0:
                joined = torch.cat([tail, chunk], dim=-1)
            else:  # the same arithmetic as crossfade_concat, so the same float results
                fade_out = torch.linspace(1.0, 0.0, overlap, dtype=tail.dtype)
                mixed = tail[..., -overlap:] * fade_out + chunk[..., :overlap] * (1 - fade_out)
                joined = torch.cat([tail[..., :-overlap], mixed, chunk[..., overlap:]], dim=-1)
            self._total += chunk.shape[-1] - overlap
        keep = min(self.fade_samples, self._total)
        split = joined.shape[-1] - keep
        self._tail = joined[..., split:]
        return joined[..., :split]

    def finish(self) -> torch.Tensor:
        tail, self._tail = self._tail, None
        return tail if tail is not None else torch.zeros(1, 0)


class StreamingEdgeTrim:
    """`trim_edge_silence` (mono) on audio that arrives in pieces; output is PCM16LE bytes.

    push(float (N,)) -> bytes that are final; finish() -> the remaining bytes. The bytes equal
    `Audio(trim_edge_silence(all audio), rate).to_pcm16()` (see the module docstring for rates).
    """

    def __init__(self, sample_rate: int) -> None:
        self.rate = int(sample_rate)
        self._loud_rms = max_rms_below_dbfs(THRESHOLD_DBFS)  # integer RMS above this is loud
        self._buffer = np.zeros(0, np.int16)  # int16 audio not yet released (+ context)
        self._buffer_start = 0     # position of _buffer[0] in the trimmed stream (u coordinates)
        self._emitted = 0          # u up to which bytes were released
        self._lead: int | None = None  # input sample where the trimmed stream starts, once known
        self._seen = 0             # input samples pushed
        self._sure_loud = -1       # largest u inside a loud block whatever the final length
        block = self.rate * BLOCK_MS / 1000
        self._block_lengths = sorted({math.floor(block), math.ceil(block)})
        # a released sample is never cut when it lies before (loud block end) + 100 ms
        self._keep = math.floor(self.rate * KEEP_MS / 1000)
        # audio kept before the release point, enough to find the last loud block at the end
        self._context = math.ceil(self.rate * (KEEP_MS + BLOCK_MS) / 1000) + 2
        self._margin = math.ceil(self.rate / 1000)  # the end may be rounded to whole ms

    def _frame(self, ms) -> int:
        return int(ms * (self.rate / 1000.0))

    def push(self, samples: torch.Tensor | np.ndarray) -> bytes:
        pcm = to_int16(np.asarray(samples, dtype=np.float32).reshape(-1))
        self._seen += pcm.shape[0]
        self._buffer = np.concatenate([self._buffer, pcm])
        if self._lead is None and not self._find_lead():
            return b""
        # the end is rounded to whole milliseconds: the last one may still be dropped
        end = min(self._safe_end(), self._buffer_start + self._buffer.shape[0] - self._margin)
        return self._release(end)

    def finish(self) -> bytes:
        if self._lead is None:  # no loud block yet: nothing was released, trim the whole
            from voxpipe.dsp.silence import trim_edge_silence

            whole = trim_edge_silence(from_int16(self._buffer), self.rate)
            self._buffer = np.zeros(0, np.int16)
            return to_pcm16(whole)
        # the first trim ends at a whole millisecond of the input (pydub slices in ms)
        total_ms = round(1000 * (self._seen / self.rate))
        stream_end = self._frame(total_ms) - self._lead  # length of the trimmed-start stream
        have = self._buffer_start + self._buffer.shape[0]
        tail = self._buffer[: max(0, stream_end - self._buffer_start)]
        if stream_end > have:  # pydub pads a slice that ends past the audio with silence
            tail = np.concatenate([tail, np.zeros(stream_end - have, np.int16)])
        silent_ms = leading_silence_ms(PcmSegment(tail[::-1, None].copy(), self.rate), THRESHOLD_DBFS)
        if self._buffer_start > 0 and self._frame(silent_ms + BLOCK_MS) > tail.shape[0]:
            raise RuntimeError("internal error: the streamed trim released audio it could not keep")
        cut_ms = min(max(0, silent_ms - KEEP_MS), round(1000 * (stream_end / self.rate)))
        self._buffer = tail
        return self._release(stream_end - self._frame(cut_ms), final=True)

    # ---- internals -----------------------------------------------------------------------
    def _find_lead(self) -> bool:
        """Locate the first loud 10 ms block; the stream then starts 100 ms before it."""
        silent_ms = leading_silence_ms(PcmSegment(self._buffer[:, None], self.rate), THRESHOLD_DBFS)
        if self._frame(silent_ms + BLOCK_MS) > self._buffer.shape[0]:
            return False  # no complete loud block yet (a partial one may change)
        self._lead = self._frame(max(0, silent_ms - KEEP_MS))
        self._buffer = self._buffer[self._lead:]
        return True

    def _safe_end(self) -> int:
        """Largest u the trailing trim can no longer cut, whatever comes later.

        The trailing trim keeps everything up to 100 ms after the last loud block counted from
        the (unknown) end. A sample is surely in a loud block if every block-length window
        that contains it is loud: whichever grid the end defines, its block there is loud.
        """
        data = self._buffer.astype(np.int64)
        energy = np.concatenate([[0], np.cumsum(data * data)])
        usable = data.shape[0] - self._margin  # the last millisecond may be dropped or padded
        if usable > 0:
            positions = np.arange(usable)
            sure = np.ones(usable, bool)
            for length in self._block_lengths:
                count = max(0, usable - length + 1)  # windows lying inside the usable audio
                starts = np.arange(count)
                total = (energy[starts + length] - energy[starts]).astype(np.float64)
                loud = np.floor(np.sqrt(total / length)) > self._loud_rms  # as pydub's window_rms
                quiet_before = np.concatenate([[0], np.cumsum(~loud)])
                first = positions - length + 1  # windows containing q start in [first, q]
                valid = (first >= 0) & (positions < count)
                all_loud = np.zeros(usable, bool)
                all_loud[valid] = quiet_before[positions[valid] + 1] == quiet_before[first[valid]]
                sure &= all_loud
            sure[: max(0, max(self._block_lengths) - self._buffer_start)] = False  # a block at the start may be partial
            hits = np.flatnonzero(sure)
            if hits.size:
                self._sure_loud = max(self._sure_loud, self._buffer_start + int(hits[-1]))
        return self._sure_loud + 1 + self._keep if self._sure_loud >= 0 else 0

    def _release(self, end: int, final: bool = False) -> bytes:
        end = max(end, self._emitted)
        start = self._emitted - self._buffer_start
        out = self._buffer[start : end - self._buffer_start]
        self._emitted = end
        if not final:  # keep context before the release point for the end-of-stream search
            drop = max(0, self._emitted - self._context - self._buffer_start)
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        return to_pcm16(from_int16(out))


class PcmResampler:
    """PCM16 mono at one rate -> PCM16 mono at another, chunk by chunk (soxr's streaming
    resampler keeps its filter state between chunks)."""

    def __init__(self, rate: int, new_rate: int) -> None:
        import soxr

        self._stream = soxr.ResampleStream(rate, new_rate, 1, dtype="float32", quality="HQ")

    def push(self, pcm: bytes, last: bool = False) -> bytes:
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767.0
        return to_pcm16(self._stream.resample_chunk(samples, last=last))
