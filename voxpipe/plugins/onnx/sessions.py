"""onnxruntime sessions: created once per graph file, with explicit thread counts."""

from __future__ import annotations

from pathlib import Path

from voxpipe.core.errors import WeightsError


def make_session(path: Path, intra_op_threads: int | None = None, inter_op_threads: int = 1):
    """A CPU InferenceSession for `path`. intra_op_threads None = onnxruntime's default (all
    physical cores); inter-op 1 because these graphs are one chain of operators."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    if intra_op_threads is not None:
        options.intra_op_num_threads = int(intra_op_threads)
    options.inter_op_num_threads = int(inter_op_threads)
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        raise WeightsError(f"cannot load ONNX graph {path}: {type(error).__name__}: {error}") from None


def input_names(session) -> list[str]:
    return [node.name for node in session.get_inputs()]


def metadata(session) -> dict[str, str]:
    return dict(session.get_modelmeta().custom_metadata_map)
