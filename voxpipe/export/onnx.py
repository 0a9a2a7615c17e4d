"""ONNX export of ZipVoice acoustic models and Vocos vocoders, with optional int8 quantization.

Files written for an acoustic model (a directory the `zipvoice-onnx` backend loads):

  text_encoder.onnx, fm_decoder.onnx        float32 graphs (opset >= 17, dynamic batch and time)
  text_encoder_int8.onnx, fm_decoder_int8.onnx   with `int8=True`: MatMul weights int8, activations
                                            quantized per call (onnxruntime dynamic quantization)
  tokens.txt, model.json                    copied from the source model, so the directory is complete

Graphs come from the TorchScript-based exporter (`torch.onnx.export(dynamo=False)`): it needs no
extra dependency and traces the shape arithmetic as graph operations, so one graph serves every
sequence length. Every written graph passes `onnx.checker.check_model`. Every file is written
through a temporary file then renamed (`voxpipe.core.files`): a failed export keeps the files
of a previous one intact.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from voxpipe.core.files import write_atomically, write_text_atomically
from voxpipe.export.graphs import (
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    TEXT_ENCODER_INPUTS,
    TEXT_ENCODER_OUTPUTS,
    DualHeadVocosNetworkGraph,
    TextEncoderGraph,
    VocosNetworkGraph,
    decoder_graph,
    is_distilled,
)

DEFAULT_OPSET = 17
PRODUCER = "voxpipe"
TEXT_ENCODER_FILE = "text_encoder.onnx"
FM_DECODER_FILE = "fm_decoder.onnx"
VOCODER_FILE = "vocoder.onnx"
INT8_SUFFIX = "_int8"


def int8_name(path: Path) -> Path:
    """fm_decoder.onnx -> fm_decoder_int8.onnx (the official naming)."""
    return path.with_name(path.stem + INT8_SUFFIX + path.suffix)


@dataclass
class ExportResult:
    """What an export wrote: graph files by role, plus int8 deviations when measured."""

    directory: Path
    files: dict[str, Path] = field(default_factory=dict)
    int8_deviation: dict[str, float] = field(default_factory=dict)


# ---- exporter plumbing ------------------------------------------------------------------------
def _logaddexp_symbolic(g, a, b):
    """logaddexp(a, b) = max(a, b) + log(1 + exp(-|a - b|)); the exporter has no rule for it
    (used by the stand-alone Swoosh-R of the time-embedding MLPs)."""
    one = g.op("Constant", value_t=torch.tensor(1.0))
    gap = g.op("Neg", g.op("Abs", g.op("Sub", a, b)))
    return g.op("Add", g.op("Max", a, b), g.op("Log", g.op("Add", one, g.op("Exp", gap))))


def _softplus_symbolic(g, x, beta, threshold):
    """softplus(x) = relu(x) + log(1 + exp(-|x|)) (beta 1, as the Swoosh activations use it).

    onnxruntime's own Softplus kernel is scalar: on the full-size decoder it was 39 % of an int8
    step; Relu/Abs/Exp/Log are vectorized and threaded (2.8x faster, same values to 1.2e-7)."""
    from torch.onnx.symbolic_helper import _maybe_get_const

    if _maybe_get_const(beta, "f") != 1:
        return g.op("Softplus", x)  # other betas are not used by voxpipe's models
    one = g.op("Constant", value_t=torch.tensor(1.0))
    tail = g.op("Log", g.op("Add", one, g.op("Exp", g.op("Neg", g.op("Abs", x)))))
    return g.op("Add", g.op("Relu", x), tail)


def _register_symbolics(opset: int) -> None:
    from torch.onnx import register_custom_op_symbolic

    register_custom_op_symbolic("aten::logaddexp", _logaddexp_symbolic, opset)
    register_custom_op_symbolic("aten::softplus", _softplus_symbolic, opset)


def export_graph(module: nn.Module, args: tuple, path: Path, input_names, output_names,
                 dynamic_axes: dict, metadata: dict[str, str], opset: int = DEFAULT_OPSET) -> Path:
    """Trace `module` on example `args`, write `path`, add metadata, run the ONNX checker."""
    import onnx

    if opset < DEFAULT_OPSET:
        raise ValueError(f"opset {opset} is too old; voxpipe exports need opset >= {DEFAULT_OPSET}")
    _register_symbolics(opset)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()

    def write(temporary: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-derived Python values
            torch.onnx.export(
                module, args, str(temporary), dynamo=False, opset_version=opset,
                input_names=list(input_names), output_names=list(output_names), dynamic_axes=dynamic_axes,
            )
        graph = onnx.load(str(temporary))
        for key, value in {"producer": PRODUCER, **metadata}.items():
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, str(value)
        onnx.save(graph, str(temporary))
        onnx.checker.check_model(str(temporary))

    return write_atomically(path, write)  # an existing graph is replaced only by a complete, checked one


def quantize_int8(source: Path, destination: Path | None = None) -> Path:
    """Dynamic int8 quantization of every MatMul's weight (onnxruntime.quantization), as the
    official `onnx_export.py` does; activations are quantized per call, so no calibration data.

    Weights use 7 bits (`reduce_range`): on x86 CPUs without VNNI (AVX2 only), onnxruntime's
    uint8 x int8 kernel adds pairs of products in saturating int16 (VPMADDUBSW); with full-range
    weights the fixture decoder deviated by 25-47 % of max |fp32| there (1.6-1.9 % on VNNI
    machines), with 7-bit weights by 1.9 % on both (docs/performance.md)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    destination = Path(destination or int8_name(Path(source)))

    def write(temporary: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(source), str(temporary), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                             reduce_range=True)
        onnx.checker.check_model(str(temporary))

    return write_atomically(destination, write)


# ---- acoustic model ---------------------------------------------------------------------------
def _example_tokens(model, batch: int = 2, length: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    vocab_size = model.embed.num_embeddings
    tokens = torch.randint(0, vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))
    lens = torch.tensor([length - 1] + [length - 4] * (batch - 1), dtype=torch.int64)
    return tokens, lens


def export_text_encoder(model, path: Path, opset: int = DEFAULT_OPSET) -> Path:
    """Text encoder graph: tokens (B, S) int64, tokens_lens (B,) int64 -> text_embed (B, S, D)."""
    tokens, lens = _example_tokens(model)
    return export_graph(
        TextEncoderGraph(model), (tokens, lens), path, TEXT_ENCODER_INPUTS, TEXT_ENCODER_OUTPUTS,
        dynamic_axes={"tokens": {0: "N", 1: "S"}, "tokens_lens": {0: "N"}, "text_embed": {0: "N", 1: "S"}},
        metadata={"graph": "text_encoder", "feat_dim": model.feat_dim, "pad_id": model.pad_id},
        opset=opset,
    )


def export_fm_decoder(model, path: Path, opset: int = DEFAULT_OPSET, num_frames: int = 64) -> Path:
    """Decoder graph (see voxpipe.export.graphs): distilled models take the scale as input,
    guided models return the classifier-free guided velocity in one call."""
    feat_dim, cond_dim = model.feature_dim, model.feat_dim
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, num_frames, feat_dim, generator=generator)
    text_condition = torch.randn(2, num_frames, cond_dim, generator=generator)
    speech_condition = torch.randn(2, num_frames, feat_dim, generator=generator)
    padding_mask = torch.zeros(2, num_frames, dtype=torch.bool)
    padding_mask[1, num_frames - 7 :] = True
    args = (torch.tensor(0.3), x, text_condition, speech_condition, torch.tensor(2.0), padding_mask)
    time_axes = {0: "N", 1: "T"}
    guidance = "distilled" if is_distilled(model) else "classifier-free"
    return export_graph(
        decoder_graph(model), args, path, DECODER_INPUTS, DECODER_OUTPUTS,
        dynamic_axes={name: time_axes for name in ("x", "text_condition", "speech_condition", "padding_mask", "v")},
        metadata={"graph": "fm_decoder", "feat_dim": feat_dim, "guidance": guidance},
        opset=opset,
    )


def export_acoustic_model(component, directory: str | Path, *, int8: bool = False,
                          opset: int = DEFAULT_OPSET) -> ExportResult:
    """Export a loaded `zipvoice` / `zipvoice-distill` component (its `.model` in float32) to
    `directory`; copies tokens.txt and the model config beside the graphs."""
    directory = Path(directory)
    model = component.model.float().eval()
    result = ExportResult(directory)
    result.files["text_encoder"] = export_text_encoder(model, directory / TEXT_ENCODER_FILE, opset)
    result.files["fm_decoder"] = export_fm_decoder(model, directory / FM_DECODER_FILE, opset)
    for role in ("tokens", "config"):
        source = getattr(component, "files", {}).get(role)
        if source is not None:
            target = directory / ("tokens.txt" if role == "tokens" else "model.json")
            if Path(source).resolve() != target.resolve():
                write_atomically(target, lambda temporary, source=source: shutil.copyfile(source, temporary))
            result.files[role] = target
    if int8:
        feeds = example_feeds(model)
        for role in ("text_encoder", "fm_decoder"):
            result.files[f"{role}_int8"] = quantize_int8(result.files[role])
            result.int8_deviation[role] = graph_deviation(result.files[role], result.files[f"{role}_int8"], feeds[role])
    return result


def example_feeds(model, num_frames: int = 200) -> dict[str, dict]:
    """Inputs to compare graph variants on: random tokens; a decoder state half-way (t = 0.5)
    with a prompt-like speech condition on the first third of the frames."""
    import numpy as np

    rng = np.random.default_rng(0)
    feat_dim, cond_dim, vocab = model.feature_dim, model.feat_dim, model.embed.num_embeddings
    tokens = rng.integers(0, vocab, size=(1, 60)).astype(np.int64)
    speech = np.zeros((1, num_frames, feat_dim), np.float32)
    speech[:, : num_frames // 3] = rng.standard_normal((1, num_frames // 3, feat_dim)).astype(np.float32) * 0.5
    return {
        "text_encoder": {"tokens": tokens, "tokens_lens": np.array([59], np.int64)},
        "fm_decoder": {
            "t": np.array(0.5, np.float32),
            "x": rng.standard_normal((1, num_frames, feat_dim)).astype(np.float32),
            "text_condition": rng.standard_normal((1, num_frames, cond_dim)).astype(np.float32) * 0.5,
            "speech_condition": speech,
            "guidance_scale": np.array(2.0, np.float32),
            "padding_mask": np.zeros((1, num_frames), bool),
        },
    }


def graph_deviation(reference: Path, candidate: Path, feeds: dict) -> float:
    """max |candidate - reference| / max |reference| over the first output, on `feeds`."""
    import numpy as np
    import onnxruntime as ort

    outputs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
               for p in (reference, candidate)]
    return float(np.abs(outputs[1] - outputs[0]).max() / max(float(np.abs(outputs[0]).max()), 1e-12))


# ---- vocoders ---------------------------------------------------------------------------------
def export_vocoder(vocoder, path: str | Path, opset: int = DEFAULT_OPSET, num_frames: int = 48) -> Path:
    """The network part of a `vocos-24k` / `vocos-48k` vocoder (everything before the inverse
    STFTs): features (B, n_mels, T) -> spectrum (B, n_fft + 2, T) [, spectrum_48k]."""
    model = vocoder.model.float().eval()
    dual = hasattr(model, "upsampler")
    graph = DualHeadVocosNetworkGraph(model) if dual else VocosNetworkGraph(model)
    outputs = ("spectrum", "spectrum_48k") if dual else ("spectrum",)
    features = torch.randn(1, vocoder.feature_dim, num_frames, generator=torch.Generator().manual_seed(0))
    axes = {"features": {0: "N", 2: "T"}, "spectrum": {0: "N", 2: "T"}}
    if dual:
        axes["spectrum_48k"] = {0: "N", 2: "T48"}
    return export_graph(
        graph, (features,), Path(path), ("features",), outputs, dynamic_axes=axes,
        metadata={"graph": "vocoder", "vocoder": vocoder.name, "feature_dim": vocoder.feature_dim,
                  "sample_rate": vocoder.sample_rate, "hop_length": vocoder.hop_length},
        opset=opset,
    )


def write_manifest(result: ExportResult, extra: dict | None = None) -> Path:
    """export.json: the files written and measured int8 deviations (for humans and CI)."""
    manifest = {
        "producer": PRODUCER,
        "files": {role: path.name for role, path in result.files.items()},
        "int8_max_abs_deviation": result.int8_deviation,
        **(extra or {}),
    }
    return write_text_atomically(result.directory / "export.json", json.dumps(manifest, indent=2) + "\n")
