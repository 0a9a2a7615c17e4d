"""The diffusion head seen as a flow-matching model, and VibeVoice's classifier-free guidance.

`HeadDenoiser.velocity(y, t, cond)` turns the head's raw output (v- or epsilon-prediction at a
training timestep) into the rectified-flow velocity x0 - eps at flow time t (see
`schedule.py`), so voxpipe solvers and guidance components drive it like any acoustic model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from pydantic import Field

from voxpipe.core.component import Params
from voxpipe.core.guidance import Guidance, VectorField
from voxpipe.plugins.vibevoice.head import DiffusionHead
from voxpipe.plugins.vibevoice.schedule import NoiseSchedule


@dataclass(frozen=True)
class LatentCondition:
    """What one latent is predicted from: the TTS LM's last hidden state for the text (positive,
    (B, H)) and for the negative prompt (negative, (B, H)), as in `sample_speech_tokens`."""

    positive: torch.Tensor
    negative: torch.Tensor


class HeadDenoiser:
    """head + training schedule -> velocity(y (B, D), t 0-dim, cond) -> (B, D)."""

    def __init__(self, head: DiffusionHead, schedule: NoiseSchedule) -> None:
        self.head = head
        self.schedule = schedule
        self.prediction_type = head.config.prediction_type

    def velocity_from(self, y: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Velocity for (B, D) states y at flow time t with conditions (B, H)."""
        t = t.double().clamp(0.0, 1.0)
        log_snr = self.schedule.clamp_log_snr(torch.log(t) - torch.log1p(-t))
        # log_snr = log(alpha / sigma) with alpha^2 + sigma^2 = 1
        alpha = torch.sqrt(torch.sigmoid(2 * log_snr))
        sigma = torch.sqrt(torch.sigmoid(-2 * log_snr))
        x = (y.double() * (alpha + sigma)).to(y.dtype)
        timestep = self.schedule.timestep_of(log_snr).to(y.device, torch.float32).expand(y.shape[0])
        out = self.head(x, timestep, condition).double()
        x64 = x.double()
        if self.prediction_type == "v_prediction":
            data, noise = alpha * x64 - sigma * out, sigma * x64 + alpha * out
        else:
            data, noise = (x64 - sigma * out) / alpha, out
        return (data - noise).to(y.dtype)

    def velocity(self, y: torch.Tensor, t: torch.Tensor, cond: LatentCondition) -> torch.Tensor:
        """Unguided: the positive condition only."""
        return self.velocity_from(y, t, cond.positive)


class NegativeCFGParams(Params):
    scale: float = Field(1.5, ge=0, le=20, description="guidance scale (VibeVoice-Realtime demo: 1.5)")


class NegativePromptGuidance(Guidance):
    """v = v_neg + scale * (v_pos - v_neg), one head call on the doubled batch [pos; neg].

    The negative condition is the TTS LM run on the negative prompt (its own cache, fed the same
    generated latents), exactly as VibeVoice's `sample_speech_tokens`."""

    name: ClassVar[str] = "vibevoice-cfg"
    description: ClassVar[str] = "classifier-free guidance against a negative-prompt condition (VibeVoice)"
    Params: ClassVar[type[Params]] = NegativeCFGParams

    def __init__(self, *, scale: float) -> None:
        self.scale = scale

    def field(self, model: HeadDenoiser, cond: LatentCondition, scale: float) -> VectorField:
        both = torch.cat([cond.positive, cond.negative], dim=0)

        def guided(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            positive, negative = model.velocity_from(torch.cat([y, y], dim=0), t, both).chunk(2, dim=0)
            return negative + scale * (positive - negative)

        return guided
