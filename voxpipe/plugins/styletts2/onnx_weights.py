"""Kokoro's int8 ONNX export (kokoro-onnx's `kokoro-v1.0.int8.onnx`) -> official `{module: state_dict}`.

onnxruntime's dynamic quantization keeps torch module names on most initializers
(`decoder.decoder.generator.resblocks.4.adain2.2.fc.weight_quantized` with `_scale` and
`_zero_point`); the rest were renamed by the exporter and are found through the node that
consumes them, whose name is the torch module scope (`/encoder/bert/.../query/MatMul_quant`):

- MatMul / MatMulInteger weights are stored (in, out): transposed back to torch's (out, in);
- weight-normalized convolutions were folded by the exporter into `/scope/Mul_k_output_0`;
- LSTMs became `DynamicQuantizeLSTM` nodes with W (dir, in, 4H), R (dir, H, 4H), B (dir, 8H) in
  ONNX gate order (i, o, f, c): reordered to torch's (i, f, c, o) and transposed;
- the exporter's wrapper called some predictor parts outside their scope (`/encoder/F0.0/...`
  for `predictor.F0.0`): mapped by the explicit `SCOPE_ALIASES` table.

Quantized values are dequantized as (q - zero_point) * scale, per tensor or per output channel.
Every initializer that feeds a weight input, and every initializer named like a module
parameter, must map to a key; anything else raises WeightsError naming it. The exporter's own
inverse-STFT basis (`generator.stft.*`) is the one declared exception: our decoder computes its
iSTFT with torch.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from voxpipe.core.errors import ConfigError, WeightsError

TOP_LEVEL = {"encoder.bert.": "bert.", "encoder.bert_encoder.": "bert_encoder.",
             "encoder.predictor.": "predictor.", "encoder.text_encoder.": "text_encoder.",
             "decoder.decoder.": "decoder."}
"""ONNX module prefixes (the exporter's wrapper: `encoder` = the text side, `decoder.decoder` = the
official Decoder) -> official module names."""

SCOPE_ALIASES = {"encoder.F0.": "encoder.predictor.F0.", "encoder.N.": "encoder.predictor.N.",
                 "encoder.F0_proj.": "encoder.predictor.F0_proj.", "encoder.N_proj.": "encoder.predictor.N_proj.",
                 "encoder.shared.": "encoder.predictor.shared."}
"""Scopes the exporter left out of `predictor` -> where those modules live."""

IGNORED_PREFIXES = ("decoder.decoder.generator.stft.", "decoder.decoder.generator.istft.")
"""The exporter's iSTFT basis and window sum: no parameters of the model (see the docstring)."""

WEIGHT_INPUTS = {"MatMulInteger": (1,), "ConvInteger": (1,), "MatMul": (1,), "Conv": (1, 2),
                 "ConvTranspose": (1, 2), "DynamicQuantizeLSTM": (1, 2, 3), "Gather": (0,),
                 "DequantizeLinear": (0,)}
"""(op type -> input positions) that carry weights rather than activations or constants."""

ONNX_TO_TORCH_GATES = (0, 2, 3, 1)
"""Torch gate k (i, f, g, o) is ONNX gate ONNX_TO_TORCH_GATES[k] (ONNX order i, o, f, c)."""


def _scope_path(node_name: str) -> str:
    """'/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant' -> 'encoder.text_encoder.cnn.0.0';
    repeated calls' suffixes ('query_1') are dropped, aliases applied."""
    parts = [part for part in node_name.split("/") if part][:-1]
    path: list[str] = []
    for part in parts:
        part = re.sub(r"^([A-Za-z][A-Za-z_]*?[A-Za-z])_\d+$", r"\1", part)
        if path and part.startswith(path[-1] + "."):
            path[-1] = part  # 'cnn.0' then 'cnn.0.0': a container scope and its child
        else:
            path.append(part)
    dotted = ".".join(path) + "."
    for old, new in SCOPE_ALIASES.items():
        if dotted.startswith(old):
            dotted = new + dotted[len(old):]
    return dotted.rstrip(".")


def _official_key(onnx_key: str) -> tuple[str, str]:
    for prefix, module in TOP_LEVEL.items():
        if onnx_key.startswith(prefix):
            return module.rstrip("."), onnx_key[len(prefix):]
    raise WeightsError(f"Kokoro ONNX: {onnx_key!r} is under no known module ({', '.join(TOP_LEVEL)})")


def _is_module_name(name: str) -> bool:
    return name.startswith(("encoder.", "decoder.")) and not name.startswith(IGNORED_PREFIXES)


class _Graph:
    def __init__(self, path: Path) -> None:
        try:
            import onnx
            from onnx import numpy_helper
        except ImportError as error:
            raise ConfigError(f"reading Kokoro's ONNX weights needs the onnx package ({error}): "
                              "pip install 'voxpipe[styletts2]'") from None
        try:
            model = onnx.load(str(path))
        except Exception as error:  # noqa: BLE001 - onnx raises DecodeError and others
            raise WeightsError(f"{path} is not a readable ONNX model: {type(error).__name__}: {error}") from None
        self.path = path
        self.arrays = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
        self.readers: dict[str, list] = {}  # tensor name -> nodes reading it
        for node in model.graph.node:
            for name in node.input:
                self.readers.setdefault(name, []).append(node)
        self.nodes = list(model.graph.node)

    def array(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise WeightsError(f"{self.path}: initializer {name!r} is missing")
        return self.arrays[name]

    def dequantize(self, quantized: str, zero_point: str | None, channel_axis: int,
                   scale_name: str | None = None) -> np.ndarray:
        """(q - zp) * scale, the scale `<base>_scale` unless named (scalar or per channel along
        `channel_axis`)."""
        base = quantized.removesuffix("_quantized")
        values = self.array(quantized).astype(np.float32)
        scale = self.array(scale_name or base + "_scale").astype(np.float32)
        zp = self.array(zero_point).astype(np.float32) if zero_point else np.zeros((), np.float32)
        shape = [1] * values.ndim
        if scale.size > 1:
            shape[channel_axis] = scale.size
        zp_shape = [1] * values.ndim
        if zp.size > 1:
            zp_shape[channel_axis] = zp.size
        return (values - zp.reshape(zp_shape)) * scale.reshape(shape)


def _input(node, position: int) -> str | None:
    return node.input[position] if len(node.input) > position and node.input[position] else None


def _lstm_weights(graph: _Graph, node) -> dict[str, np.ndarray]:
    """A DynamicQuantizeLSTM node -> torch LSTM parameters (bidirectional, one layer)."""
    w = graph.dequantize(_input(node, 1), _input(node, 9), 0)  # (D, in, 4H), scale per direction
    r = graph.dequantize(_input(node, 2), _input(node, 11), 0)  # (D, H, 4H)
    b = graph.array(_input(node, 3)).astype(np.float32)  # (D, 8H) = input bias, recurrent bias
    hidden = r.shape[1]

    def reorder(matrix: np.ndarray) -> np.ndarray:  # (..., 4H) in ONNX gate order -> torch order
        gates = np.split(matrix, 4, axis=-1)
        return np.concatenate([gates[k] for k in ONNX_TO_TORCH_GATES], axis=-1)

    params = {}
    for direction in range(w.shape[0]):
        suffix = "_l0" + ("_reverse" if direction else "")
        params["weight_ih" + suffix] = reorder(w[direction]).T
        params["weight_hh" + suffix] = reorder(r[direction]).T
        params["bias_ih" + suffix] = reorder(b[direction, : 4 * hidden])
        params["bias_hh" + suffix] = reorder(b[direction, 4 * hidden:])
    return params


def kokoro_onnx_state(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    """Dequantize a Kokoro ONNX export into the official `{module: state_dict}` layout (weight
    norm already folded: plain `weight` keys)."""
    graph = _Graph(Path(path))
    found: dict[str, np.ndarray] = {}  # ONNX-side module key ('encoder.bert....weight') -> array
    used: set[str] = set()

    def put(key: str, value: np.ndarray, sources: list[str | None]) -> None:
        if key in found and not np.array_equal(found[key], value):  # shared weights map once
            raise WeightsError(f"{graph.path}: two different tensors map to {key!r}")
        found[key] = np.ascontiguousarray(value, dtype=np.float32)
        used.update(source for source in sources if source)

    for node in graph.nodes:
        positions = WEIGHT_INPUTS.get(node.op_type, ())
        weights = [(p, _input(node, p)) for p in positions if _input(node, p) in graph.arrays]
        if not weights:
            continue
        if node.op_type == "DynamicQuantizeLSTM":
            scope = _scope_path(node.name)
            for name, value in _lstm_weights(graph, node).items():
                put(f"{scope}.{name}", value, [_input(node, p) for p in (1, 2, 3)])
            used.update(n for n in (_input(node, p) for p in range(8, 12)) if n)
            continue
        for position, name in weights:
            if node.op_type == "Gather" and not _is_module_name(name):
                continue  # a Gather of constant indices, not an embedding
            is_bias = position == 2
            if name.endswith("_quantized"):
                axis = 1 if node.op_type in ("MatMulInteger", "MatMul") else 0
                base = name[: -len("_quantized")]
                scale = base + "_scale"
                if node.op_type == "Gather":  # a quantized table: its rows are dequantized after the lookup
                    dequantizers = [n for n in graph.readers.get(node.output[0], []) if n.op_type == "DequantizeLinear"]
                    if len(dequantizers) != 1:
                        raise WeightsError(f"{graph.path}: quantized table {name!r} has no single DequantizeLinear after it")
                    scale, zero_point = _input(dequantizers[0], 1), _input(dequantizers[0], 2)
                else:
                    zero_point = _input(node, 3)
                value = graph.dequantize(name, zero_point, axis, scale)
                used.update({name, scale, zero_point or ""})
            else:
                value, base = graph.array(name).astype(np.float32), name
                used.add(name)
            if node.op_type in ("MatMulInteger", "MatMul"):
                value = value.T  # stored (in, out)
            if _is_module_name(base):
                key = base
            elif node.op_type == "DequantizeLinear":
                continue  # an activation quantization, not a weight
            else:
                key = f"{_scope_path(node.name)}.{'bias' if is_bias else 'weight'}"
            if not key.startswith(IGNORED_PREFIXES):
                put(key, value, [])

    for name, array in graph.arrays.items():  # the float parameters used by element-wise ops
        if _is_module_name(name) and name not in used and not re.search(r"_(scale|zero_point|quantized)$|_shape$", name):
            put(name, array.astype(np.float32), [name])

    unmapped = sorted(name for name in graph.arrays if name not in used and not name.endswith("_shape")
                      and (_is_module_name(name) or name.endswith("_quantized")))
    if unmapped:
        raise WeightsError(f"{graph.path}: initializers not mapped to any parameter: {', '.join(unmapped[:10])}"
                           + (f" ... ({len(unmapped)} in all)" if len(unmapped) > 10 else ""))

    modules: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in found.items():
        module, inner = _official_key(key)
        modules.setdefault(module, {})[inner] = torch.from_numpy(value)
    return modules
