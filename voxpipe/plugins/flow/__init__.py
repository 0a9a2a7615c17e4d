"""The flow-matching family (`flow-matching` synthesizer), its Euler solvers and guidance rules.

Importing this package is cheap; the components load when they register.
"""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe.plugins.flow.euler import COMPONENTS as SOLVERS
    from voxpipe.plugins.flow.family import FlowMatchingSynthesizer
    from voxpipe.plugins.flow.guidance import COMPONENTS as GUIDANCES

    for component in (FlowMatchingSynthesizer, *SOLVERS, *GUIDANCES):
        register(component)
