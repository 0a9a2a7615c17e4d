"""voxpipe's own components pass the same conformance suites plugin authors use."""

from voxpipe.plugins.flow.euler import EulerSolver, LuxTTSEulerSolver
from voxpipe.testing import SolverConformance


class TestEulerConformance(SolverConformance):
    def make_solver(self):
        return EulerSolver(num_steps=4)


class TestLuxTTSEulerConformance(SolverConformance):
    def make_solver(self):
        return LuxTTSEulerSolver(num_steps=4)
