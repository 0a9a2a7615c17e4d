"""What a plugin author writes: voxpipe's solver conformance suite on their solver.
Run by tests/test_example_plugin.py with the example plugin installed."""

from voxpipe.testing import SolverConformance
from voxpipe_heun.solver import HeunSolver


class TestHeunConformance(SolverConformance):
    def make_solver(self):
        return HeunSolver(num_steps=4)
