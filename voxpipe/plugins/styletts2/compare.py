"""Checking the torch family against Kokoro's ONNX export (tests and benchmarks/kokoro_torch.py).

The export's graph keeps its intermediate tensor names, so its predicted frames per phoneme (and
any other intermediate, `ONNX_INTERMEDIATES`) can be read next to its audio. Its inverse STFT (a
transposed convolution over a fixed basis, divided by a window sum) is `ONNX_ISTFT_GAIN` times
louder than the official `torch.istft`, which the torch family follows; comparisons divide the
export's audio by it.

The export is dynamically quantized: besides int8 weights (which the torch family loads,
dequantized, see onnx_weights.py) every MatMulInteger/ConvInteger input is quantized at run time
to uint8 with one scale per tensor, and its LSTMs quantize their inputs and hidden states the
same way. `int8_activations` replays exactly that arithmetic on the torch modules: a diagnostic
that tells "the export's activation rounding" apart from "a different model" (docs/styletts2.md,
"Real-weight check").
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

ONNX_FRAMES_OUTPUT = "/encoder/Clip_output_0"
"""The export's rounded, clamped durations (frames per token, pads included)."""
ONNX_ISTFT_GAIN = 1.5
"""Measured: the export's audio / torch.istft of the same spectrum = 1.5 for Kokoro's
20-point Hann window at hop 5 (sum of the window vs sum of its square over the overlaps)."""
_ALBERT = "/encoder/bert/encoder/albert_layer_groups.0/albert_layers.0"
ONNX_INTERMEDIATES = {
    "embedded": "/encoder/bert/encoder/embedding_hidden_mapping_in/Add_output_0",  # (1, T, 768)
    "bert_layer_1": f"{_ALBERT}/full_layer_layer_norm/LayerNormalization_output_0",  # (1, T, 768)
    "bert": f"{_ALBERT}/full_layer_layer_norm_11/LayerNormalization_output_0",  # (1, T, 768)
    "projected": "/encoder/bert_encoder/Add_output_0",  # (1, T, 512)
    "durations": "/encoder/predictor/ReduceSum_output_0",  # (1, T) sum of sigmoids, before speed
    "frames": ONNX_FRAMES_OUTPUT,  # (1, T)
    "text_encoded": "/encoder/text_encoder/Transpose_2_output_0",  # (1, 512, T)
    "f0": "/encoder/F0_proj/Conv_output_0",  # (1, 1, 2F)
    "energy": "/encoder/N_proj/Conv_output_0",  # (1, 1, 2F)
    "asr": "/encoder/MatMul_1_output_0",  # (1, 512, F)
    "source": "/decoder/decoder/generator/m_source/l_tanh/Tanh_output_0",  # (1, N, 1) harmonic excitation
    "spectrum": "/decoder/decoder/generator/conv_post/Conv_output_0",  # (1, 22, frames) log-magnitude, phase
}
"""Names of the export's intermediate tensors (kokoro-onnx's `kokoro-v1.0*.onnx` layout)."""
_FLOAT_IN_ONNX = ("conv_post", "l_linear")
"""Linear/Conv1d modules the export kept in float (every other one is MatMulInteger/ConvInteger)."""


class OnnxWithFrames:
    """An onnxruntime session of a Kokoro export that also returns its frames per token and,
    on request, the intermediates named in `outputs` (keys of ONNX_INTERMEDIATES)."""

    def __init__(self, model_path: str | Path, threads: int | None = None, outputs: Sequence[str] = ()) -> None:
        import onnx
        import onnxruntime as ort

        unknown = sorted(set(outputs) - set(ONNX_INTERMEDIATES))
        if unknown:
            raise ValueError(f"unknown intermediates {unknown}; known: {sorted(ONNX_INTERMEDIATES)}")
        model = onnx.load(str(model_path))
        produced = {name for node in model.graph.node for name in node.output}
        self.names = ["frames", *(name for name in outputs if name != "frames")]
        for name in self.names:
            tensor = ONNX_INTERMEDIATES[name]
            if tensor not in produced:
                raise ValueError(f"{model_path} has no {tensor!r}: not kokoro-onnx's export layout")
            model.graph.output.append(onnx.ValueInfoProto(name=tensor))
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def run(self, ids: list[int], style: np.ndarray, speed: float = 1.0) -> dict[str, np.ndarray]:
        """ids (no pads), (D,) style -> {"audio": (N,) at the torch family's level, "frames": (T,)
        int, and every requested intermediate as the graph returns it}."""
        audio, *rest = self.session.run(None, {
            "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
            "style": np.asarray(style, dtype=np.float32).reshape(1, -1),
            "speed": np.array([speed], dtype=np.float32),
        })
        out = dict(zip(self.names, rest))
        out["audio"] = audio.reshape(-1) / ONNX_ISTFT_GAIN
        out["frames"] = out["frames"].reshape(-1).astype(np.int64)
        return out

    def __call__(self, ids: list[int], style: np.ndarray, speed: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """ids (no pads), (D,) style -> (audio (N,) float32 at the torch family's level, frames (T,) int)."""
        out = self.run(ids, style, speed)
        return out["audio"], out["frames"]


def relative_rms(ours: np.ndarray, reference: np.ndarray) -> float:
    """RMS of the difference over the RMS of the reference (same number of elements)."""
    ours, reference = np.asarray(ours, np.float64).reshape(-1), np.asarray(reference, np.float64).reshape(-1)
    if ours.size != reference.size:
        raise ValueError(f"sizes differ: {ours.size} vs {reference.size}")
    return float(np.sqrt(np.mean((ours - reference) ** 2)) / max(np.sqrt(np.mean(reference**2)), 1e-12))


def fake_quantize_uint8(x):
    """onnxruntime's DynamicQuantizeLinear followed by its dequantization, on a torch tensor:
    one scale for the whole tensor, range widened to include 0, round half to even, uint8."""
    import torch

    low, high = torch.clamp(x.min(), max=0.0), torch.clamp(x.max(), min=0.0)
    scale = (high - low) / 255
    if float(scale) == 0.0:
        return x
    zero_point = torch.clamp(torch.round(-low / scale), 0, 255)
    return (torch.clamp(torch.round(x / scale) + zero_point, 0, 255) - zero_point) * scale


def _int8_lstm_forward(self, x, hx=None):
    """A one-layer bidirectional batch-first LSTM as onnxruntime's DynamicQuantizeLSTM computes
    it: the input projection of all steps from the uint8-quantized input, each step's recurrent
    projection from the uint8-quantized previous hidden state. (B, T, C) -> ((B, T, 2H), None)."""
    import torch

    if not isinstance(x, torch.Tensor) or hx is not None or self.num_layers != 1 or not self.batch_first:
        raise ValueError("int8_activations replays one-layer batch-first LSTMs on plain tensors only")
    outputs = []
    for suffix in ("_l0", "_l0_reverse")[: 2 if self.bidirectional else 1]:
        reverse = suffix.endswith("reverse")
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        bias = getattr(self, "bias_ih" + suffix) + getattr(self, "bias_hh" + suffix)
        steps_in = fake_quantize_uint8(x.flip(1) if reverse else x) @ w_ih.T + bias
        hidden = x.new_zeros(x.shape[0], self.hidden_size)
        cell = torch.zeros_like(hidden)
        steps = []
        for t in range(x.shape[1]):
            i, f, g, o = (steps_in[:, t] + fake_quantize_uint8(hidden) @ w_hh.T).chunk(4, dim=-1)  # torch gate order
            cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
            hidden = torch.sigmoid(o) * torch.tanh(cell)
            steps.append(hidden)
        out = torch.stack(steps, dim=1)
        outputs.append(out.flip(1) if reverse else out)
    return torch.cat(outputs, dim=-1), None


@contextlib.contextmanager
def int8_activations(modules) -> Iterator[None]:
    """Within the block, the torch modules compute as Kokoro's dynamically quantized export: the
    input of every Linear/Conv1d it turned into MatMulInteger/ConvInteger is rounded to uint8
    (per tensor), and LSTMs run as DynamicQuantizeLSTM (see `_int8_lstm_forward`). Weights are
    untouched (already the export's, dequantized). modules: torch modules (e.g. a synthesizer's
    plbert, text_encoder, predictor, decoder). Restored on exit."""
    from torch import nn

    hooks, patched = [], []
    for module in modules:
        for name, part in module.named_modules():
            if isinstance(part, (nn.Linear, nn.Conv1d)) and not name.endswith(_FLOAT_IN_ONNX):
                hooks.append(part.register_forward_pre_hook(lambda _, args: (fake_quantize_uint8(args[0]), *args[1:])))
            elif isinstance(part, nn.LSTM):
                part.forward = types.MethodType(_int8_lstm_forward, part)
                patched.append(part)
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()
        for part in patched:
            del part.forward


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
