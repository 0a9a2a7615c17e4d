"""Conformance tests for plugin authors.

Subclass the class of your component's kind in a pytest file, name it `Test...`, and implement
its `make_*` factory; pytest then runs every check on your component, the same checks voxpipe's
built-in components pass::

    from voxpipe.testing import SolverConformance

    class TestHeun(SolverConformance):
        def make_solver(self):
            return HeunSolver(num_steps=8)
"""

from voxpipe.testing.conformance import (
    AcousticModelConformance,
    ChunkerConformance,
    ComponentConformance,
    FeatureExtractorConformance,
    GuidanceConformance,
    NormalizerConformance,
    SolverConformance,
    TokenizerConformance,
    TranscriberConformance,
    VocoderConformance,
    SynthesizerConformance,
)

__all__ = [
    "AcousticModelConformance", "ChunkerConformance", "ComponentConformance", "FeatureExtractorConformance",
    "GuidanceConformance", "NormalizerConformance", "SolverConformance", "TokenizerConformance",
    "TranscriberConformance", "VocoderConformance", "SynthesizerConformance",
]
