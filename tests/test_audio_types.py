"""Audio / AudioChunk containers and PCM conversion."""

import numpy as np
import soundfile
import torch

from voxpipe.core.audio import Audio, AudioChunk, to_pcm16
from voxpipe.dsp.crossfade import crossfade_concat


def test_pcm16_rounds_and_clips():
    pcm = to_pcm16(torch.tensor([0.0, 1.0, -1.0, 2.0, 0.5]))
    assert np.frombuffer(pcm, "<i2").tolist() == [0, 32767, -32767, 32767, 16384]


def test_audio_properties_and_save(tmp_path):
    audio = Audio(torch.linspace(-0.5, 0.5, 2400), 24000)
    assert audio.duration == 0.1 and audio.num_channels == 1
    data, rate = soundfile.read(audio.save(tmp_path / "a.wav"), dtype="float32")
    assert rate == 24000 and np.abs(data - audio.samples.numpy()).max() < 1 / 32767
    stereo = Audio(torch.zeros(2, 100), 8000)
    assert stereo.num_channels == 2 and len(stereo.to_pcm16()) == 400


def test_chunk_sizes():
    chunk = AudioChunk(b"\x00\x00" * 480, 24000, index=0, sample_offset=0, text_span=(0, 5))
    assert chunk.num_samples == 480 and chunk.duration == 0.02


def test_crossfade_concat_overlaps_linearly():
    a, b = torch.ones(1, 10), torch.zeros(1, 10)
    out = crossfade_concat([a, b], 4)
    assert out.shape == (1, 16)
    torch.testing.assert_close(out[0, 6:10], torch.tensor([1.0, 2 / 3, 1 / 3, 0.0]))
    assert torch.equal(crossfade_concat([a], 4), a)
