"""CosyVoice's ODE as voxpipe solver and guidance components.

`cosine-euler` (solver): CosyVoice's `solve_euler`, x_{k+1} = x_k + (t_{k+1} - t_k) v(x_k, t_k)
on the cosine grid t_k = 1 - cos(pi/2 * k/N) (`t_scheduler: cosine`), which ZipVoice's shifted
grid (`euler`) cannot express. Steps are finer near the noise (t = 0).

`cosyvoice-cfg` (guidance): one estimator call on the doubled batch [conditional; unconditional],
the unconditional half with the encoder output, speaker embedding and prompt features all zero
(VoiceBox-style CFG as CosyVoice's `solve_euler`); v = (1 + g) v_c - g v_u with a constant g
(`inference_cfg_rate`, 0.7). ZipVoice's `classifier-free` differs (time-dependent, keeps the
prompt), hence this component.

The field works on the solver's state x (B, T, 80); the estimator on (B, 80, T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.guidance import Guidance, VectorField
from voxpipe.plugins.flow.euler import EulerSolver


def cosine_timesteps(num_steps: int, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
    """(num_steps + 1,) float32: 1 - cos(u pi/2), u = linspace(t_start, t_end) (CosyVoice's
    expression order, so the float32 values are the official ones for t_start=0, t_end=1)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    u = torch.linspace(t_start, t_end, num_steps + 1, dtype=torch.float32)
    return 1 - torch.cos(u * 0.5 * math.pi)


class CosineEulerParams(Params):
    num_steps: int = Field(10, ge=1, description="Euler steps (one doubled-batch estimator call each); "
                                                 "CosyVoice2 uses 10")


class CosineEulerSolver(EulerSolver):
    """Flow-matching Euler on CosyVoice's cosine time grid (`t_shift` is not used)."""

    name: ClassVar[str] = "cosine-euler"
    description: ClassVar[str] = "flow-matching Euler on the cosine time grid 1 - cos(pi/2 u) (CosyVoice)"
    Params: ClassVar[type[Params]] = CosineEulerParams

    def __init__(self, num_steps: int) -> None:
        self.num_steps = num_steps
        self.t_shift = 1.0

    def timesteps(self, num_steps: int, t_shift: float, t_start: float = 0.0, t_end: float = 1.0) -> torch.Tensor:
        return cosine_timesteps(num_steps, t_start, t_end)


@dataclass(frozen=True)
class FlowCondition:
    """What the CosyVoice estimator is conditioned on (batch 1, channel-major).

    mu: (1, 80, T) encoder output projected to mel bins; speaker: (1, 80) projected x-vector;
    prompt: (1, 80, T) prompt mel on its frames, zeros after; mask: (1, 1, T) frames;
    streaming: chunk-causal attention.
    """

    mu: torch.Tensor
    speaker: torch.Tensor
    prompt: torch.Tensor
    mask: torch.Tensor
    streaming: bool


class CosyVoiceCFGParams(Params):
    scale: float | None = Field(None, ge=0, description="CFG rate g; None = the checkpoint's inference_cfg_rate "
                                                        "(0.7 in CosyVoice2)")


class CosyVoiceCFG(Guidance):
    """v = (1 + g) v(x | mu, spk, prompt) - g v(x | 0, 0, 0), one call on the doubled batch."""

    name: ClassVar[str] = "cosyvoice-cfg"
    description: ClassVar[str] = "CosyVoice classifier-free guidance (all conditions dropped, constant rate)"
    Params: ClassVar[type[Params]] = CosyVoiceCFGParams

    def __init__(self, scale: float | None) -> None:
        self.scale = scale

    def field(self, model, cond: FlowCondition, scale: float) -> VectorField:
        """model: the estimator (x, mask, mu, t, spks, cond, streaming) -> velocity, on (B, 80, T)."""
        mask = torch.cat([cond.mask, cond.mask])
        mu = torch.cat([cond.mu, torch.zeros_like(cond.mu)])
        speaker = torch.cat([cond.speaker, torch.zeros_like(cond.speaker)])
        prompt = torch.cat([cond.prompt, torch.zeros_like(cond.prompt)])

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            state = x.transpose(1, 2)
            v = model(torch.cat([state, state]), mask, mu, t.reshape(1).expand(2), speaker, prompt, cond.streaming)
            v_cond, v_uncond = v.chunk(2, dim=0)
            return ((1.0 + scale) * v_cond - scale * v_uncond).transpose(1, 2)

        return guided
