"""onnxruntime backends: ZipVoice acoustic models from ONNX graphs (voxpipe's or the official ones).

Importing this package is cheap; onnxruntime loads when a component is built.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.onnx.acoustic import COMPONENTS

    for component in COMPONENTS:
        register(component)
