"""Flow-matching Euler solvers (noise at t=0 -> data at t=1).

`euler` is ZipVoice's sampler: x_{k+1} = x_k + (t_{k+1} - t_k) v(x_k, t_k) on a shifted time
grid. `luxtts-euler` is LuxTTS's algebraically equal form that re-anchors each step on the
predicted endpoints (and jumps straight to the prediction at t_end on the last step).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.guidance import VectorField
from voxpipe.core.solver import Solver, StepCallback, draw_noise

__all__ = ["EulerSolver", "LuxTTSEulerSolver", "draw_noise", "shifted_timesteps"]


def shifted_timesteps(num_steps: int, t_shift: float, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
    """(num_steps + 1,) float32 grid: u = linspace(t_start, t_end), t = s u / (1 + (s - 1) u).

    The shift is applied to the already-restricted u, as in ZipVoice's `get_time_steps`; s < 1
    packs steps near t = 0 (the noisy end). Same expression order as the reference, so the
    float32 values are identical.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    if t_shift <= 0:
        raise ValueError(f"t_shift must be > 0, got {t_shift}")
    u = torch.linspace(t_start, t_end, num_steps + 1, dtype=torch.float32)
    return t_shift * u / (1 + (t_shift - 1) * u)


class EulerParams(Params):
    num_steps: int = Field(16, ge=1, description="steps (one field evaluation each)")
    t_shift: float = Field(0.5, gt=0, description="time-grid shift; < 1 spends more steps near noise")


class EulerSolver(Solver):
    """Flow-matching Euler on ZipVoice's shifted time grid."""

    name: ClassVar[str] = "euler"
    description: ClassVar[str] = "flow-matching Euler, x += (t_next - t) * v, shifted time grid (ZipVoice)"
    Params: ClassVar[type[Params]] = EulerParams

    def __init__(self, num_steps: int, t_shift: float) -> None:
        self.num_steps = num_steps
        self.t_shift = t_shift

    def timesteps(self, num_steps: int, t_shift: float, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
        return shifted_timesteps(num_steps, t_shift, t_start, t_end)

    def step(self, x: torch.Tensor, v: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, is_last: bool) -> torch.Tensor:
        """State after one step from time t to t_next with velocity v (all broadcastable)."""
        return x + v * (t_next - t)

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
        """Integrate dx/dt = field(x, t) from x0 (B, T, F) at t_start to t_end.

        field gets t as a 0-dim float32 tensor. callback(k, t_{k+1}, x_{k+1}) after each step.
        """
        num_steps = self.num_steps if num_steps is None else num_steps
        t_shift = self.t_shift if t_shift is None else t_shift
        times = self.timesteps(num_steps, t_shift, t_start, t_end).to(x0.device)
        x = x0
        for k in range(num_steps):
            v = field(x, times[k])
            x = self.step(x, v, times[k], times[k + 1], is_last=k == num_steps - 1)
            if callback is not None:
                callback(k, times[k + 1], x)
        return x


class LuxTTSEulerSolver(EulerSolver):
    """LuxTTS's form of the Euler step: predict x1 = x + (1 - t) v and x0 = x - t v, then
    x_next = (1 - t_next) x0 + t_next x1; the last step goes straight to the prediction at
    t_end, x + (t_end - t) v (LuxTTS's "snap to x1" when t_end = 1). Equal to `euler` up to
    float rounding."""

    name: ClassVar[str] = "luxtts-euler"
    description: ClassVar[str] = "Euler written as LuxTTS writes it (endpoint re-anchoring, snap to x1 at the end)"

    def step(self, x: torch.Tensor, v: torch.Tensor, t: torch.Tensor, t_next: torch.Tensor, is_last: bool) -> torch.Tensor:
        if is_last:
            # t_next == 1.0 exactly at the end, so this is LuxTTS's x + (1 - t) v bit for bit.
            return x + (t_next - t) * v
        x1_pred = x + (1.0 - t) * v
        x0_pred = x - t * v
        return (1.0 - t_next) * x0_pred + t_next * x1_pred


COMPONENTS = (EulerSolver, LuxTTSEulerSolver)
