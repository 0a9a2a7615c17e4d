"""Solver interface: integrates a vector field from noise (t=0) towards data (t=1)."""

from __future__ import annotations

from typing import Callable

import torch

from voxpipe.core.component import Component
from voxpipe.core.guidance import VectorField

StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]
"""callback(step_index, t, x_after_step)."""


def draw_noise(
    shape: tuple[int, ...], seed: int | None = None, generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Standard normal noise from a private generator (never the global RNG)."""
    if generator is None:
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(int(seed))
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


class Solver(Component):
    """Attributes: `num_steps`, `t_shift` (defaults; `sample` may override them per call)."""

    kind = "solver"
    num_steps: int = 16
    t_shift: float = 1.0

    def timesteps(self, num_steps: int, t_shift: float, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
        """(num_steps + 1,) float32 times from t_start to t_end."""
        raise NotImplementedError

    def sample(
        self,
        field: VectorField,
        x0: torch.Tensor,
        *,
        num_steps: int | None = None,
        t_shift: float | None = None,
        t_start: float = 0.0,
        t_end: float = 1.0,
        callback: StepCallback | None = None,
    ) -> torch.Tensor:
        """Integrate dx/dt = field(x, t) from x0 (B, T, F) at t_start to t_end; returns x at t_end."""
        raise NotImplementedError
