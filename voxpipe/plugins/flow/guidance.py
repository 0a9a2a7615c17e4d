"""Guidance components: how a model's raw velocity becomes the field the solver integrates."""

from __future__ import annotations

from typing import ClassVar

import torch
from pydantic import Field

from voxpipe.core.acoustic_model import AcousticModel
from voxpipe.core.component import Params
from voxpipe.core.conditions import Conditions
from voxpipe.core.errors import CompatibilityError
from voxpipe.core.guidance import Guidance, VectorField


class ScaleParams(Params):
    scale: float = Field(1.0, ge=0, description="default guidance scale (0 = unguided)")


class DistilledScaleParams(Params):
    scale: float = Field(3.0, ge=0, description="guidance scale fed to the distilled model")


class NoGuidance(Guidance):
    """The conditional velocity as is (one model call per step)."""

    name: ClassVar[str] = "none"
    description: ClassVar[str] = "no guidance: the conditional velocity"
    scale = 0.0

    def field(self, model: AcousticModel, cond: Conditions, scale: float) -> VectorField:
        return lambda x, t: model.velocity(x, t, cond)


def _doubled(cond: Conditions, speech_uncond: torch.Tensor) -> Conditions:
    """[unconditional; conditional] batch: zero text condition in the first half."""
    return cond.replace(
        text_condition=torch.cat([torch.zeros_like(cond.text_condition), cond.text_condition]),
        speech_condition=torch.cat([speech_uncond, cond.speech_condition]),
        padding_mask=torch.cat([cond.padding_mask, cond.padding_mask]),
        features_lens=torch.cat([cond.features_lens, cond.features_lens]),
        prompt_features_lens=torch.cat([cond.prompt_features_lens, cond.prompt_features_lens]),
    )


class ClassifierFreeGuidance(Guidance):
    """ZipVoice's time-dependent classifier-free guidance.

    One model call on the doubled batch [unconditional; conditional]; v = (1 + g) v_c - g v_u.
    The unconditional half never sees the text. For t > 0.5 it does not see the prompt either
    (g = scale); for t <= 0.5 it keeps the prompt and g = 2 * scale, i.e. early steps are
    guided towards the text only. scale == 0 is a single plain call.
    """

    name: ClassVar[str] = "classifier-free"
    description: ClassVar[str] = "ZipVoice classifier-free guidance (text-only guidance for t <= 0.5, 2x scale)"
    Params: ClassVar[type[Params]] = ScaleParams

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def field(self, model: AcousticModel, cond: Conditions, scale: float) -> VectorField:
        if scale == 0:
            return lambda x, t: model.velocity(x, t, cond)
        keep_prompt = _doubled(cond, cond.speech_condition)
        drop_prompt = _doubled(cond, torch.zeros_like(cond.speech_condition))

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if t.dim() != 0:
                raise ValueError("classifier-free guidance needs one time value per call (0-dim t)")
            g = torch.tensor(scale, dtype=t.dtype, device=t.device)
            if t > 0.5:
                doubled = drop_prompt
            else:
                doubled, g = keep_prompt, g * 2
            v_uncond, v_cond = model.velocity(torch.cat([x, x]), t, doubled).chunk(2, dim=0)
            return (1 + g) * v_cond - g * v_uncond

        return guided


class DistilledGuidance(Guidance):
    """Guidance baked into a distilled model: the scale is a model input, one call per step."""

    name: ClassVar[str] = "distilled"
    description: ClassVar[str] = "guidance scale fed to a distilled model (ZipVoice-Distill, LuxTTS)"
    Params: ClassVar[type[Params]] = DistilledScaleParams
    feeds_scale_to_model = True

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def field(self, model: AcousticModel, cond: Conditions, scale: float) -> VectorField:
        if not getattr(model, "uses_guidance_scale_input", False):
            raise CompatibilityError(
                f"guidance 'distilled' needs a model that takes the guidance scale as input; "
                f"{type(model).__name__} does not (use 'classifier-free')"
            )

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            g = torch.tensor(scale, dtype=t.dtype, device=t.device)
            return model.velocity(x, t, cond, guidance_scale=g)

        return guided


COMPONENTS = (ClassifierFreeGuidance, DistilledGuidance, NoGuidance)
