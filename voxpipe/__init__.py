"""voxpipe: a plugin-based text-to-speech toolkit.

Importing this package is cheap: heavy dependencies (onnxruntime, faster-whisper, ...) are
imported only by the components that need them, when they are built.
"""

from voxpipe.core.errors import ConfigError, VoxpipeError, WeightsError

__version__ = "0.1.0"

__all__ = ["ConfigError", "VoxpipeError", "WeightsError", "__version__", "Pipeline"]


def __getattr__(name):  # lazy: `voxpipe.Pipeline` without importing torch at `import voxpipe`
    if name == "Pipeline":
        from voxpipe.core.pipeline import Pipeline

        return Pipeline
    raise AttributeError(name)
