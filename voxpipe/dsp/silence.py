"""ZipVoice's silence removal, re-implemented in numpy with pydub's exact arithmetic.

ZipVoice runs its prompt (and its output) through pydub on a 16-bit copy:
`split_on_silence(min_silence_len=1000, silence_thresh=-50, keep_silence=1000, seek_step=10)`,
edge silence shortened to 100 ms (`detect_leading_silence` in 10 ms chunks), then 200 ms of
zeros appended (prompt only). pydub is not needed at run time; what is reproduced here, because
the results depend on it sample for sample:

- positions are whole milliseconds; ms -> frame is `int(ms * sr / 1000)`; a segment is
  `round(1000 * frames / sr)` ms long, and a slice that ends past the last frame is padded with
  zero frames (which count in its RMS);
- a chunk's loudness is the integer RMS of its int16 samples (`audioop.rms`, truncated), all
  channels together; "silent" is RMS <= 10^(-50/20) * 32768 for `split_on_silence` and
  dBFS < -50 for `detect_leading_silence`;
- the appended silence is made at 11,025 Hz and converted with `audioop.ratecv`, which gives
  floor((k - 1) * sr / 11025) + 1 frames for k input frames (4,798 rather than 4,800 at 24 kHz).

Not reproduced: below 11,025 Hz pydub resamples the whole signal to 11,025 Hz on
concatenation (an accident of its `silent()` default); here the rate is kept and
`int(sr * ms / 1000)` zeros are appended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

FULL_SCALE = 32768.0  # pydub's max_possible_amplitude for 16-bit audio
PYDUB_SILENT_RATE = 11025  # frame rate of pydub's AudioSegment.silent()


# ---- 16-bit conversion (as ZipVoice's tensor_to_audiosegment / audiosegment_to_tensor) -------
def to_int16(wave: np.ndarray) -> np.ndarray:
    """float (...) in [-1, 1] -> int16: x * 32768, clipped, truncated toward zero."""
    return (np.asarray(wave, dtype=np.float32) * np.float32(FULL_SCALE)).clip(-32768, 32767).astype(np.int16)


def from_int16(pcm: np.ndarray) -> np.ndarray:
    """int16 -> float32 / 32768."""
    return pcm.astype(np.float32) / np.float32(FULL_SCALE)


# ---- loudness thresholds on the integer RMS ----------------------------------------------------
def max_rms_below_dbfs(threshold_dbfs: float) -> int:
    """Largest integer RMS r with 20 log10(r / 32768) < threshold (pydub's `dBFS < t`); 0 always counts."""
    def quiet(r: int) -> bool:
        return r == 0 or 20 * math.log(r / FULL_SCALE, 10) < threshold_dbfs

    low, high = 0, 32768  # quiet(low) is True; find the last True
    if quiet(high):
        return high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if quiet(mid) else (low, mid)
    return low


def _max_rms_at_or_below(threshold_dbfs: float) -> float:
    """pydub's split threshold: RMS <= 10^(t/20) * 32768 is silence."""
    return 10 ** (float(threshold_dbfs) / 20) * FULL_SCALE


# ---- a pydub-like view of 16-bit audio ---------------------------------------------------------
@dataclass
class PcmSegment:
    """int16 frames (n, C) at `rate` Hz, sliced and measured in milliseconds like pydub."""

    frames: np.ndarray
    rate: int

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def length_ms(self) -> int:
        return round(1000 * (float(self.num_frames) / self.rate))

    def frame_at(self, ms):
        """ms (int or int array, >= 0) -> frame index, int(ms * rate / 1000)."""
        return np.trunc(np.asarray(ms, dtype=np.float64) * (self.rate / 1000.0)).astype(np.int64)

    def slice(self, start_ms: int, end_ms: int) -> "PcmSegment":
        start_ms, end_ms = min(start_ms, self.length_ms), min(end_ms, self.length_ms)
        first, last = int(self.frame_at(start_ms)), int(self.frame_at(end_ms))
        data = self.frames[first:last]
        missing = (last - first) - data.shape[0]
        if missing > 0 and data.shape[0] > 0:  # pydub pads a short tail with silence
            data = np.concatenate([data, np.zeros((missing, data.shape[1]), dtype=data.dtype)])
        return PcmSegment(data, self.rate)

    def reversed(self) -> "PcmSegment":
        return PcmSegment(self.frames[::-1], self.rate)

    def window_rms(self, start_ms: np.ndarray, end_ms: np.ndarray) -> np.ndarray:
        """Integer RMS (audioop.rms) of slice(start, end) for each pair, vectorised."""
        length = self.length_ms
        first = self.frame_at(np.minimum(start_ms, length))
        last = self.frame_at(np.minimum(end_ms, length))
        energy = np.concatenate([[0], np.cumsum((self.frames.astype(np.int64) ** 2).sum(axis=1))])
        real_first = np.minimum(first, self.num_frames)
        real_last = np.minimum(last, self.num_frames)
        total = (energy[real_last] - energy[real_first]).astype(np.float64)
        # a non-empty slice is padded to its expected length; an empty one stays empty
        count = np.where(real_last > real_first, last - first, 0) * self.frames.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            rms = np.floor(np.sqrt(total / count))
        return np.where(count > 0, rms, 0).astype(np.int64)


def leading_silence_ms(segment: PcmSegment, threshold_dbfs: float, chunk_ms: int = 10) -> int:
    """pydub `detect_leading_silence`: ms of leading chunks quieter than the threshold."""
    length = segment.length_ms
    starts = np.arange(0, length, chunk_ms, dtype=np.int64)
    if starts.size == 0:
        return 0
    loud = segment.window_rms(starts, starts + chunk_ms) > max_rms_below_dbfs(threshold_dbfs)
    if not loud.any():
        return length
    return int(starts[np.argmax(loud)])


def _silent_ranges_ms(segment: PcmSegment, min_silence_ms: int, threshold_dbfs: float, seek_step_ms: int):
    """pydub `detect_silence`: [start, end] ms ranges at least `min_silence_ms` long."""
    length = segment.length_ms
    if length < min_silence_ms:
        return []
    last_start = length - min_silence_ms
    starts = list(range(0, last_start + 1, seek_step_ms))
    if last_start % seek_step_ms:
        starts.append(last_start)
    starts = np.asarray(starts, dtype=np.int64)
    rms = segment.window_rms(starts, starts + min_silence_ms)
    silent_starts = starts[rms <= _max_rms_at_or_below(threshold_dbfs)].tolist()
    if not silent_starts:
        return []
    ranges = []
    range_start = previous = silent_starts[0]
    for start in silent_starts[1:]:
        continuous = start == previous + seek_step_ms
        has_gap = start > previous + min_silence_ms
        if not continuous and has_gap:
            ranges.append([range_start, previous + min_silence_ms])
            range_start = start
        previous = start
    ranges.append([range_start, previous + min_silence_ms])
    return ranges


def _nonsilent_ranges_ms(segment: PcmSegment, min_silence_ms: int, threshold_dbfs: float, seek_step_ms: int):
    """pydub `detect_nonsilent`."""
    silent = _silent_ranges_ms(segment, min_silence_ms, threshold_dbfs, seek_step_ms)
    length = segment.length_ms
    if not silent:
        return [[0, length]]
    if silent[0][0] == 0 and silent[0][1] == length:
        return []
    ranges, previous_end = [], 0
    for start, end in silent:
        ranges.append([previous_end, start])
        previous_end = end
    if silent[-1][1] != length:
        ranges.append([previous_end, length])
    if ranges[0] == [0, 0]:
        ranges.pop(0)
    return ranges


def _split_on_silence(segment: PcmSegment, min_silence_ms: int, threshold_dbfs: float, keep_silence_ms: int,
                      seek_step_ms: int) -> list[PcmSegment]:
    """pydub `split_on_silence`: the non-silent parts, each with up to `keep_silence_ms` around it
    (overlapping margins are split in the middle)."""
    ranges = [[start - keep_silence_ms, end + keep_silence_ms]
              for start, end in _nonsilent_ranges_ms(segment, min_silence_ms, threshold_dbfs, seek_step_ms)]
    for current, following in zip(ranges, ranges[1:]):
        if following[0] < current[1]:
            current[1] = (current[1] + following[0]) // 2
            following[0] = current[1]
    return [segment.slice(max(start, 0), min(end, segment.length_ms)) for start, end in ranges]


def _trim_edges(segment: PcmSegment, threshold_dbfs: float, lead_ms: int, trail_ms: int) -> PcmSegment:
    """Edge silence shortened to `lead_ms` / `trail_ms` (10 ms detection chunks)."""
    start = max(0, leading_silence_ms(segment, threshold_dbfs) - lead_ms)
    segment = segment.slice(start, segment.length_ms).reversed()
    start = max(0, leading_silence_ms(segment, threshold_dbfs) - trail_ms)
    return segment.slice(start, segment.length_ms).reversed()


def appended_silence_frames(duration_ms: float, sample_rate: int) -> int:
    """Frames of pydub's `AudioSegment.silent(duration_ms)` once joined to audio at `sample_rate`."""
    frames = int(PYDUB_SILENT_RATE * (duration_ms / 1000.0))
    if sample_rate < PYDUB_SILENT_RATE:
        return int(sample_rate * (duration_ms / 1000.0))
    if sample_rate == PYDUB_SILENT_RATE or frames == 0:
        return frames
    return (frames - 1) * sample_rate // PYDUB_SILENT_RATE + 1  # audioop.ratecv output length


# ---- public API --------------------------------------------------------------------------------
def remove_silence(
    wave: torch.Tensor | np.ndarray,
    sample_rate: int,
    *,
    only_edges: bool = False,
    threshold_dbfs: float = -50.0,
    min_silence_ms: int = 1000,
    keep_silence_ms: int = 1000,
    seek_step_ms: int = 10,
    lead_ms: int = 100,
    trail_ms: int = 100,
    append_silence_ms: float = 0,
) -> torch.Tensor | np.ndarray:
    """ZipVoice's `remove_silence` on wave (N,) or (C, N) float in [-1, 1] at `sample_rate` Hz.

    1. 16-bit round trip (x * 32768 clipped, truncated; back as / 32768).
    2. Unless `only_edges`: silences of at least `min_silence_ms` below `threshold_dbfs` are cut,
       keeping `keep_silence_ms` of them next to the speech (pydub `split_on_silence`).
    3. Leading / trailing silence shortened to `lead_ms` / `trail_ms`.
    4. `append_silence_ms` of zeros appended (pydub's count; see `appended_silence_frames`).

    Returns the same type and layout as `wave`, float32. All-silent input yields only the
    appended zeros.
    """
    is_tensor = isinstance(wave, torch.Tensor)
    array = wave.detach().cpu().numpy() if is_tensor else np.asarray(wave)
    if array.ndim not in (1, 2):
        raise ValueError(f"remove_silence takes (N,) or (C, N) audio, got shape {array.shape}")
    frames = to_int16(array.reshape(-1, array.shape[-1]).T)  # (N, C)
    segment = PcmSegment(np.ascontiguousarray(frames), int(sample_rate))
    if not only_edges:
        parts = _split_on_silence(segment, min_silence_ms, threshold_dbfs, keep_silence_ms, seek_step_ms)
        joined = np.concatenate([p.frames for p in parts]) if parts else frames[:0]
        segment = PcmSegment(joined, segment.rate)
    segment = _trim_edges(segment, threshold_dbfs, lead_ms, trail_ms)
    padding = np.zeros((appended_silence_frames(append_silence_ms, sample_rate), frames.shape[1]), np.int16)
    result = from_int16(np.concatenate([segment.frames, padding])).T  # (C, N')
    result = np.ascontiguousarray(result.reshape(array.shape[:-1] + (-1,)))
    return torch.from_numpy(result) if is_tensor else result


def remove_prompt_silence(wave: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor | np.ndarray:
    """ZipVoice's prompt rule: long silences cut, edges shortened to 100 ms, 200 ms of zeros appended."""
    return remove_silence(wave, sample_rate, only_edges=False, append_silence_ms=200)


def trim_edge_silence(wave: torch.Tensor | np.ndarray, sample_rate: int) -> torch.Tensor | np.ndarray:
    """ZipVoice's output rule: only leading/trailing silence shortened to 100 ms (16-bit round trip)."""
    return remove_silence(wave, sample_rate, only_edges=True, append_silence_ms=0)
