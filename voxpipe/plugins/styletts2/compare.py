"""Checking the torch family against Kokoro's ONNX export (tests and benchmarks/kokoro_torch.py).

The export's graph keeps its intermediate tensor names, so its predicted frames per phoneme can be
read next to its audio. Its inverse STFT (a transposed convolution over a fixed basis, divided
by a window sum) is `ONNX_ISTFT_GAIN` times louder than the official `torch.istft`, which the
torch family follows; comparisons divide the export's audio by it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ONNX_FRAMES_OUTPUT = "/encoder/Clip_output_0"
"""The export's rounded, clamped durations (frames per token, pads included)."""
ONNX_ISTFT_GAIN = 1.5
"""Measured: the export's audio / torch.istft of the same spectrum = 1.5 for Kokoro's
20-point Hann window at hop 5 (sum of the window vs sum of its square over the overlaps)."""


class OnnxWithFrames:
    """An onnxruntime session of a Kokoro export that also returns its frames per token."""

    def __init__(self, model_path: str | Path, threads: int | None = None) -> None:
        import onnx
        import onnxruntime as ort

        model = onnx.load(str(model_path))
        produced = {name for node in model.graph.node for name in node.output}
        if ONNX_FRAMES_OUTPUT not in produced:
            raise ValueError(f"{model_path} has no {ONNX_FRAMES_OUTPUT!r}: not kokoro-onnx's export layout")
        model.graph.output.append(onnx.ValueInfoProto(name=ONNX_FRAMES_OUTPUT))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, ids: list[int], style: np.ndarray, speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """ids (no pads), (D,) style -> (audio (N,) float32 at the torch family's level, frames (T,) int)."""
        audio, frames = self.session.run(None, {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": np.asarray(style, dtype=np.float32).reshape(1, -1),
            "speed": np.array([speed], dtype=np.float32),
        })
        return audio.reshape(-1) / ONNX_ISTFT_GAIN, frames.reshape(-1).astype(np.int64)


def log_mel(audio: np.ndarray, sample_rate: int, n_mels: int = 80) -> np.ndarray:
    """(N,) -> (n_mels, frames) natural-log mel power, 50 ms windows, 12.5 ms hop, floor 1e-5."""
    import librosa

    mel = librosa.feature.melspectrogram(y=audio.astype(np.float32), sr=sample_rate, n_fft=1200, hop_length=300,
                                         n_mels=n_mels, power=2.0)
    return np.log(np.maximum(mel, 1e-5))


def log_mel_distance(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Mean absolute difference of the log-mel spectrograms (nats) over the common length."""
    length = min(a.size, b.size)
    return float(np.abs(log_mel(a[:length], sample_rate) - log_mel(b[:length], sample_rate)).mean())
