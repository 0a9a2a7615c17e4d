"""voxpipe's own components pass the same conformance suites plugin authors use."""

from voxpipe.plugins.flow.euler import EulerSolver, LuxTTSEulerSolver
from voxpipe.testing import SolverConformance


class TestEulerConformance(SolverConformance):
    def make_solver(self):
        return EulerSolver(num_steps=4)


class TestLuxTTSEulerConformance(SolverConformance):
    def make_solver(self):
        return LuxTTSEulerSolver(num_steps=4)


def test_the_checked_classes_are_the_registered_ones():
    from voxpipe.registry import get_registry

    registry = get_registry()
    assert registry.get("solver", "euler").cls is EulerSolver
    assert registry.get("solver", "luxtts-euler").cls is LuxTTSEulerSolver
