"""A Piper (VITS) ONNX voice run by onnxruntime, with noise drawn from a seeded generator.

Piper's graphs take `input` (1, T) int64 phoneme ids, `input_lengths` (1,) int64, `scales`
(3,) float32 = [noise_scale, length_scale, noise_w] and, for multi-speaker voices, `sid` (1,)
int64; they return `output` (1, 1, 1, N) float32 samples at the voice's rate.

VITS samples Gaussian noise inside the graph (`RandomNormalLike`: the duration predictor's
noise, scaled by noise_w, and the prior's, scaled by noise_scale). onnxruntime's generator can
neither be seeded per call nor reset, so the same text would sound different on every run. At
load, each such node is replaced by a lookup into a float input (`voxpipe_noise_K`, flat) that
this module fills from a `torch.Generator` seeded per sequence: N(0, 1) noise as before, now
reproducible. The lookup wraps around (index mod length) so a longer-than-expected draw never
fails; the buffers are sized so that it does not happen in practice (see `_noise_length`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from voxpipe.core.errors import ConfigError, WeightsError

REQUIRED_INPUTS = ("input", "input_lengths", "scales")
SPEAKER_INPUT = "sid"
NOISE_INPUT = "voxpipe_noise_{}"
FRAMES_PER_ID = 16
"""Noise buffer size: frames per phoneme id (a typical id lasts 2-6 frames of 256 samples at
length_scale 1; the buffer scales with length_scale)."""


@dataclass(frozen=True)
class NoiseSite:
    """One replaced random node: its input name and the size of the tensor it mimics per
    phoneme id ("ids": (B, C, T_ids), "frames": (B, C, T_frames)) as C = `channels`."""

    input_name: str
    channels: int
    per: str


def _require(module: str):
    """Import an optional dependency of the family; ConfigError naming the extra otherwise."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(f"the 'piper' synthesizer needs {module}: pip install 'voxpipe[piper]' ({error})") from None


def _seeded_graph(model_path: Path) -> tuple[bytes, list[NoiseSite]]:
    """The model with every RandomNormalLike node replaced by a lookup into a new noise input."""
    onnx = _require("onnx")
    from onnx import TensorProto, helper

    try:
        model = onnx.load(str(model_path))
    except Exception as error:  # noqa: BLE001 - protobuf raises its own types for bad files
        raise WeightsError(f"cannot read ONNX model {model_path}: {type(error).__name__}: {error}") from None
    graph = model.graph
    shapes = _channel_counts(model)
    sites: list[NoiseSite] = []
    nodes = []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        if any(a.name in ("mean", "scale") and a.f not in (0.0, 1.0) for a in node.attribute):
            raise WeightsError(f"{model_path}: random node {node.name} is not standard normal; unsupported")
        index = len(sites)
        name = NOISE_INPUT.format(index)
        like, out = node.input[0], node.output[0]
        prefix = f"voxpipe_noise_{index}_"
        # flat index of every element of `like`, modulo the buffer length, gathered and reshaped
        nodes += [
            helper.make_node("Shape", [like], [prefix + "shape"]),
            helper.make_node("ReduceProd", [prefix + "shape"], [prefix + "count"], keepdims=0),
            helper.make_node("Shape", [name], [prefix + "buffer_shape"]),
            helper.make_node("ReduceProd", [prefix + "buffer_shape"], [prefix + "buffer_count"], keepdims=0),
            helper.make_node("Constant", [], [prefix + "zero"], value=helper.make_tensor("", TensorProto.INT64, [], [0])),
            helper.make_node("Constant", [], [prefix + "one"], value=helper.make_tensor("", TensorProto.INT64, [], [1])),
            helper.make_node("Range", [prefix + "zero", prefix + "count", prefix + "one"], [prefix + "index"]),
            helper.make_node("Mod", [prefix + "index", prefix + "buffer_count"], [prefix + "wrapped"]),
            helper.make_node("Gather", [name, prefix + "wrapped"], [prefix + "flat"], axis=0),
            helper.make_node("Reshape", [prefix + "flat", prefix + "shape"], [out]),
        ]
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["voxpipe_noise_length_" + str(index)]))
        channels, per = shapes.get(like, (192, "frames"))
        sites.append(NoiseSite(name, channels, per))
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), sites


def _channel_counts(model) -> dict[str, tuple[int, str]]:
    """Guess (channels, 'ids'|'frames') of each RandomNormalLike input from Piper's export:
    the duration predictor's noise (under `/dp/`) has 2 channels per phoneme id, the prior's
    has `inter_channels` (192 in Piper's configs) per frame."""
    guesses = {}
    for node in model.graph.node:
        if node.op_type == "RandomNormalLike":
            guesses[node.input[0]] = (2, "ids") if "/dp/" in node.name else (192, "frames")
    return guesses


class PiperModel:
    """One Piper ONNX voice: phoneme ids -> waveform."""

    def __init__(self, model_path: Path, num_speakers: int, sample_rate: int, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        self.path = Path(model_path)
        self.sample_rate = sample_rate
        graph, self.noise_sites = _seeded_graph(self.path)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        # as Piper's C++ runtime: graph optimizations make loading several times slower and
        # running no faster on these graphs (docs/piper.md has the measurements)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            self.session = ort.InferenceSession(graph, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise WeightsError(f"cannot load Piper voice model {self.path}: {type(error).__name__}: {error}") from None
        names = {node.name for node in self.session.get_inputs()}
        missing = [name for name in REQUIRED_INPUTS if name not in names]
        if missing:
            raise WeightsError(f"{self.path} is not a Piper voice model: it lacks the inputs {missing} "
                               f"(it has {sorted(names)})")
        self.takes_speaker = SPEAKER_INPUT in names
        if num_speakers > 1 and not self.takes_speaker:
            raise WeightsError(f"{self.path}: its config says {num_speakers} speakers but the model has no 'sid' input")
        self.num_speakers = num_speakers

    def _noise_length(self, site: NoiseSite, num_ids: int, length_scale: float) -> int:
        if site.per == "ids":
            return site.channels * num_ids
        return site.channels * max(64, math.ceil(num_ids * FRAMES_PER_ID * max(1.0, length_scale)))

    def generate(self, ids: list[int], *, noise_scale: float, length_scale: float, noise_w: float,
                 speaker_id: int | None, generator: torch.Generator) -> np.ndarray:
        """(N,) float32 samples of one sentence's ids (unnormalized model output). speaker_id:
        already validated against the voice's speakers (None = 0)."""
        if not ids:
            return np.zeros(0, dtype=np.float32)
        feed = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": np.asarray([noise_scale, length_scale, noise_w], dtype=np.float32),
        }
        if self.takes_speaker:  # (some single-speaker exports have a `sid` input too)
            feed[SPEAKER_INPUT] = np.asarray([speaker_id or 0], dtype=np.int64)
        for site in self.noise_sites:
            size = self._noise_length(site, len(ids), length_scale)
            feed[site.input_name] = torch.randn(size, generator=generator, dtype=torch.float32).numpy()
        output = self.session.run(None, feed)[0]
        return np.asarray(output, dtype=np.float32).reshape(-1)
