"""Audio containers: `Audio` (float samples) and `AudioChunk` (PCM16LE bytes for streaming)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


def to_pcm16(samples: torch.Tensor | np.ndarray) -> bytes:
    """float samples in [-1, 1] -> little-endian int16 bytes (clipped, rounded to nearest)."""
    array = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else samples
    array = np.clip(np.asarray(array, dtype=np.float32), -1.0, 1.0)
    return np.round(array * 32767.0).astype("<i2").tobytes()


@dataclass
class Audio:
    """Float32 waveform and its rate.

    samples: (N,) mono or (C, N) multi-channel, float32, nominally in [-1, 1].
    sample_rate: Hz.
    """

    samples: torch.Tensor
    sample_rate: int

    def __post_init__(self) -> None:
        if not isinstance(self.samples, torch.Tensor):
            self.samples = torch.as_tensor(np.asarray(self.samples))
        self.samples = self.samples.to(torch.float32)
        if self.samples.dim() not in (1, 2):
            raise ValueError(f"Audio samples must be (N,) or (C, N), got {tuple(self.samples.shape)}")

    @property
    def num_channels(self) -> int:
        return 1 if self.samples.dim() == 1 else int(self.samples.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.samples.shape[-1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.num_samples / self.sample_rate

    def to_pcm16(self) -> bytes:
        """Interleaved PCM16LE bytes (channels interleaved for multi-channel audio)."""
        data = self.samples if self.samples.dim() == 1 else self.samples.T.contiguous()
        return to_pcm16(data)

    def save(self, path: str | Path, subtype: str = "PCM_16") -> Path:
        """Write a sound file (format from the suffix: .wav, .flac, .ogg, .mp3, any libsndfile
        writes), atomically (`voxpipe.core.files`): a failed write leaves an existing file intact
        and raises FileWriteError naming `path`. `subtype` applies where the format has it (PCM);
        compressed formats use their own (Vorbis, MPEG)."""
        import io

        import soundfile

        from voxpipe.core.files import write_bytes_atomically

        path = Path(path)
        kind = check_audio_suffix(path)
        # encoded in memory first, so a failing disk reports the system's reason ("File too
        # large"), not libsndfile's "System error."
        data = self.samples.numpy() if self.samples.dim() == 1 else self.samples.T.numpy()
        encoded = io.BytesIO()
        soundfile.write(encoded, np.clip(data, -1.0, 1.0), self.sample_rate, format=kind,
                        subtype=subtype if soundfile.check_format(kind, subtype) else None)
        return write_bytes_atomically(path, encoded.getvalue())


def check_audio_suffix(path: Path) -> str:
    """The libsndfile format named by `path`'s suffix ("WAV"); ConfigError if it names none."""
    import soundfile

    from voxpipe.core.errors import ConfigError

    kind = path.suffix[1:].upper()
    if kind not in soundfile.available_formats():
        raise ConfigError(f"{path}: unsupported extension {path.suffix!r}; use .wav, .flac, .ogg or .mp3")
    return kind


@dataclass
class AudioChunk:
    """One piece of a stream: PCM16LE mono bytes at `sample_rate`.

    index: position of the chunk in its stream (0, 1, ...).
    sample_offset: first sample of this chunk in the whole stream.
    text_span: (start, end) character offsets of the text this chunk speaks.
    """

    pcm: bytes
    sample_rate: int
    index: int
    sample_offset: int
    text_span: tuple[int, int] = (0, 0)
    metadata: dict = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate
