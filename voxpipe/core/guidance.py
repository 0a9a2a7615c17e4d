"""Guidance interface: turns a model's raw velocity into the vector field the solver integrates."""

from __future__ import annotations

from typing import Callable

import torch

from voxpipe.core.acoustic_model import AcousticModel
from voxpipe.core.component import Component
from voxpipe.core.conditions import Conditions

VectorField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""v(x, t): x (B, T, F), t 0-dim tensor in [0, 1] -> velocity (B, T, F)."""


class Guidance(Component):
    """Attributes: `scale` (default guidance scale), `feeds_scale_to_model` (True when the scale is
    passed to the model as an input, as distilled models need, instead of mixing two velocities)."""

    kind = "guidance"
    scale: float = 1.0
    feeds_scale_to_model: bool = False

    def field(self, model: AcousticModel, cond: Conditions, scale: float) -> VectorField:
        """The guided vector field for these conditions at guidance `scale`."""
        raise NotImplementedError
