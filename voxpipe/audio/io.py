"""Reading sound files into `Audio` at a model's rate.

Decoding is soundfile's (libsndfile: wav, flac, ogg/vorbis/opus, and mp3 from libsndfile 1.1 on,
which the soundfile wheels ship); integer PCM becomes float32 as int / 2^(bits-1), i.e.
int16 / 32768 like torchaudio and librosa. If libsndfile cannot decode a file, `audioread` (a
librosa dependency, using ffmpeg or gstreamer when present) is tried before giving up.

Two resamplers, one per official pipeline (they differ audibly above 8 kHz, see docs/audio.md):
- "soxr": what LuxTTS gets from `librosa.load(path, sr=...)` (soxr "HQ", length ceil(N * ratio));
- "sinc": torchaudio's `Resample` (Hann-windowed sinc, width 6, rolloff 0.99) used by ZipVoice.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from voxpipe.core.audio import Audio
from voxpipe.core.errors import AudioError

Resampler = Literal["soxr", "sinc"]
RESAMPLERS = ("soxr", "sinc")

MIN_SECONDS = 0.1
"""Default shortest accepted audio (a prompt shorter than this carries no voice)."""

SILENCE_DBFS = -60.0
"""Default: audio whose peak stays below this level (0.001 of full scale) counts as silent."""


# ---- decoding ----------------------------------------------------------------------------------
def read_audio(path: str | Path, *, max_seconds: float | None = None) -> Audio:
    """Decode a sound file at its own rate: (N,) for mono files, (C, N) otherwise, float32.

    max_seconds: read only the first `int(max_seconds * rate)` frames (librosa's `duration`).
    Raises AudioError for a missing or undecodable file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if not path.is_file():
        raise AudioError(f"audio path is not a file: {path}")
    try:
        frames, rate = _read_soundfile(path, max_seconds)
    except Exception as soundfile_error:  # libsndfile's errors are RuntimeError/TypeError/ValueError
        try:
            frames, rate = _read_audioread(path, max_seconds)
        except Exception as fallback_error:
            raise AudioError(
                f"cannot decode audio file {path}: {soundfile_error} (fallback decoder: {fallback_error}); "
                "supported: wav, flac, ogg, mp3 (any format libsndfile reads)"
            ) from None
    samples = torch.from_numpy(np.ascontiguousarray(frames.T))  # (C, N)
    return Audio(samples[0] if samples.shape[0] == 1 else samples, int(rate))


def _read_soundfile(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """(N, C) float32 frames and the rate."""
    import soundfile

    with soundfile.SoundFile(str(path)) as handle:
        rate = handle.samplerate
        count = -1 if max_seconds is None else int(max_seconds * rate)
        frames = handle.read(frames=count, dtype="float32", always_2d=True)
    return frames, rate


def _read_audioread(path: Path, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Fallback decoder: audioread yields int16 little-endian interleaved buffers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its raw reader imports aifc/audioop/sunau
        import audioread

        with audioread.audio_open(str(path)) as handle:
            rate, channels = int(handle.samplerate), int(handle.channels)
            data = b"".join(handle)
    frames = np.frombuffer(data, dtype="<i2").reshape(-1, channels).astype(np.float32) / np.float32(32768.0)
    if max_seconds is not None:
        frames = frames[: int(max_seconds * rate)]
    return frames, rate


# ---- channel and rate conversion -----------------------------------------------------------------
def to_mono(audio: Audio) -> Audio:
    """Average the channels of a (C, N) audio (librosa's and ZipVoice's mix-down)."""
    if audio.samples.dim() == 1:
        return audio
    return Audio(audio.samples.mean(dim=0), audio.sample_rate)


def resample(audio: Audio, sample_rate: int, method: Resampler = "soxr") -> Audio:
    """Audio at `sample_rate` Hz (channels kept). Equal rates return the input unchanged.

    "soxr": soxr HQ, output cut or zero-padded to ceil(N * new / old) like `librosa.resample`.
    "sinc": `voxpipe.dsp.resample.resample_sinc` (torchaudio's kernel), ceil(N * new / old).
    """
    if method not in RESAMPLERS:
        raise AudioError(f"unknown resampler {method!r}; expected one of {', '.join(RESAMPLERS)}")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise AudioError(f"target sample rate must be a positive integer, got {sample_rate}")
    if audio.sample_rate == sample_rate:
        return audio
    if method == "sinc":
        from voxpipe.dsp.resample import resample_sinc

        return Audio(resample_sinc(audio.samples, audio.sample_rate, int(sample_rate)), int(sample_rate))
    return Audio(torch.from_numpy(_resample_soxr(audio.samples.numpy(), audio.sample_rate, int(sample_rate))),
                 int(sample_rate))


def _resample_soxr(samples: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """(N,) or (C, N) float32 -> resampled, as librosa.resample(res_type="soxr_hq", fix=True)."""
    import soxr

    out = soxr.resample(samples.T, orig_sr, new_sr, quality="HQ").T  # soxr takes (N, C)
    length = int(math.ceil(samples.shape[-1] * (float(new_sr) / orig_sr)))
    if out.shape[-1] >= length:
        out = out[..., :length]
    else:
        out = np.concatenate([out, np.zeros(out.shape[:-1] + (length - out.shape[-1],), out.dtype)], axis=-1)
    return np.ascontiguousarray(out, dtype=np.float32)


# ---- checks --------------------------------------------------------------------------------------
def check_audio(audio: Audio, *, source: str = "audio", min_seconds: float = MIN_SECONDS,
                silence_dbfs: float = SILENCE_DBFS) -> None:
    """AudioError if the audio is empty, shorter than `min_seconds`, not finite, or silent
    (peak below `silence_dbfs`)."""
    if audio.num_samples == 0:
        raise AudioError(f"{source} contains no samples")
    if audio.duration < min_seconds:
        raise AudioError(f"{source} is too short: {audio.duration:.3f} s ({audio.num_samples} samples at "
                         f"{audio.sample_rate} Hz); at least {min_seconds} s is needed")
    if not torch.isfinite(audio.samples).all():
        raise AudioError(f"{source} contains NaN or infinite samples")
    peak = float(audio.samples.abs().max())
    if peak < 10 ** (silence_dbfs / 20):
        level = f"{20 * math.log10(peak):.1f} dBFS" if peak > 0 else "digital silence"
        raise AudioError(f"{source} is silent: its peak is {level}, below {silence_dbfs} dBFS")


# ---- the one call ------------------------------------------------------------------------------
def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    *,
    mono: bool = True,
    max_seconds: float | None = None,
    resampler: Resampler = "soxr",
    min_seconds: float = MIN_SECONDS,
    silence_dbfs: float = SILENCE_DBFS,
) -> Audio:
    """Read a sound file for a model: decoded, optionally cut, mixed to mono, resampled.

    path:        wav, flac, ogg, mp3 (anything libsndfile decodes).
    sample_rate: Hz of the result (None: the file's rate).
    mono:        average the channels (result (N,)); else keep (C, N) for multi-channel files.
    max_seconds: keep only the first `int(max_seconds * file_rate)` frames, cut BEFORE resampling
                 (LuxTTS's `librosa.load(duration=...)`).
    resampler:   "soxr" (LuxTTS / librosa) or "sinc" (ZipVoice / torchaudio).

    Raises AudioError naming the file for missing, undecodable, empty, too short (< min_seconds)
    and silent (peak < silence_dbfs) audio.
    """
    if resampler not in RESAMPLERS:
        raise AudioError(f"unknown resampler {resampler!r}; expected one of {', '.join(RESAMPLERS)}")
    if max_seconds is not None and max_seconds <= 0:
        raise AudioError(f"max_seconds must be positive, got {max_seconds}")
    audio = read_audio(path, max_seconds=max_seconds)
    check_audio(audio, source=f"audio file {path}", min_seconds=min_seconds, silence_dbfs=silence_dbfs)
    if mono:
        audio = to_mono(audio)
    if sample_rate is not None:
        audio = resample(audio, sample_rate, resampler)
    return audio
