"""WAV headers for audio whose length is unknown when the header is sent."""

from __future__ import annotations

import struct

UNKNOWN_SIZE = 0xFFFFFFFF  # the largest RIFF size: "read to the end of the stream"


def wav_header(sample_rate: int, num_channels: int = 1, data_bytes: int | None = None) -> bytes:
    """A 44-byte PCM16LE WAV header.

    data_bytes None (streaming): the RIFF and data sizes are 0xFFFFFFFF, as streaming encoders
    write them; readers (libsndfile/soundfile, Python's `wave`, ffmpeg, browsers) then read the
    samples up to the end of the stream.
    """
    block = num_channels * 2
    if data_bytes is None:
        riff_size = data_size = UNKNOWN_SIZE
    else:
        data_size, riff_size = data_bytes, 36 + data_bytes
    return (
        b"RIFF" + struct.pack("<I", riff_size) + b"WAVE"
        + b"fmt " + struct.pack("<IHHIIHH", 16, 1, num_channels, sample_rate, sample_rate * block, block, 16)
        + b"data" + struct.pack("<I", data_size)
    )
