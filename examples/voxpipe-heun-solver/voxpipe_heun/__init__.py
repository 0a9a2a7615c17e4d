"""voxpipe plugin: Heun's method (explicit trapezoid) for flow-matching sampling."""

from voxpipe.registry import hookimpl


@hookimpl
def register_components(register):
    from voxpipe_heun.solver import HeunSolver

    register(HeunSolver)
