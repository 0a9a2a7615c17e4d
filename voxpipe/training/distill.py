"""ZipVoice-Distill training loss (two stages), as the official `train_zipvoice_distill.py`.

API (used by the trainer)::

    distillation_loss(student, teacher, tokens, features, features_lens, *, stage,
                      guidance_scale=None, noise=None, t_value=None, t_delta_fix=None,
                      t_delta_ema=None, speech_condition_mask=None, generator=None) -> scalar

`student` is a ZipVoiceDistill network (its decoder also embeds the guidance scale);
(or `DDP(StudentStep(network))` under DistributedDataParallel); `teacher` is, for stage 1, the trained ZipVoice run with classifier-free guidance, for stage 2
an exponential moving average (EMA) of the student (`voxpipe.training.average.ema_update` after
every optimizer step). `features` (B, T, F) are already times the feature scale, as for
`flow_matching_loss`.

One evaluation: x_t = t x_1 + (1 - t) noise at one time t_value for the whole batch; the teacher
makes two Euler steps t -> t + d_fix -> t + d_fix + d_ema = t_dest (no gradient); the student
makes one step t -> t_dest; the loss is the mean squared difference of the implied velocities
(x(t_dest) - x_t) / (t_dest - t) over masked, non-padded frames (the prompt-span mask of
`flow_matching_loss`; no text-condition dropout). Draws: t_value ~ U(0, 1), d_fix ~ U(0, min(0.3,
1 - t)), d_ema ~ U(0, min(0.3, 1 - t - d_fix)), guidance scale per utterance ~ U(0, 2) in stage 1
and U(1, 3) in stage 2. All can be passed in; the rest are drawn from `generator` (torch's; the
official script draws the three times from Python's `random`).

The student of stage 1 starts from the teacher's weights (`init_student_from_teacher`); stage 2
starts from the stage-1 result and its EMA teacher from a copy of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from voxpipe.plugins.zipvoice.model import ZipVoice, ZipVoiceDistill
from voxpipe.training.loss import (
    checked_batch,
    condition_time_mask,
    text_condition_for_training,
    unwrap,
)

GUIDANCE_RANGES = {1: (0.0, 2.0), 2: (1.0, 3.0)}
"""Per-utterance guidance-scale range sampled in each stage (official)."""
MAX_TIME_DELTA = 0.3


def guided_velocity(
    network: ZipVoice, t: Tensor, x: Tensor, text_condition: Tensor, speech_condition: Tensor, padding_mask: Tensor,
    guidance_scale: Tensor,
) -> Tensor:
    """Velocity of `network` at scalar time t, with guidance (B, 1, 1).

    A distilled network takes the scale as an input. An undistilled one runs classifier-free
    guidance: (1 + g) v(text, speech) - g v(unconditional), where "unconditional" drops the text
    and, for t > 0.5, the speech prompt too; for t <= 0.5 the prompt is kept and g doubled.
    """
    if isinstance(network, ZipVoiceDistill):
        return network.forward_fm_decoder(t=t, xt=x, text_condition=text_condition, speech_condition=speech_condition,
                                          padding_mask=padding_mask, guidance_scale=guidance_scale)
    if bool((guidance_scale == 0.0).all()):
        return network.forward_fm_decoder(t=t, xt=x, text_condition=text_condition, speech_condition=speech_condition,
                                          padding_mask=padding_mask)
    if t > 0.5:
        speech = torch.cat([torch.zeros_like(speech_condition), speech_condition], dim=0)
    else:
        guidance_scale = guidance_scale * 2
        speech = torch.cat([speech_condition, speech_condition], dim=0)
    uncond, cond = network.forward_fm_decoder(
        t=t, xt=torch.cat([x, x], dim=0), text_condition=torch.cat([torch.zeros_like(text_condition), text_condition]),
        speech_condition=speech, padding_mask=torch.cat([padding_mask, padding_mask], dim=0),
    ).chunk(2, dim=0)
    return (1 + guidance_scale) * cond - guidance_scale * uncond


def euler_step(
    network: ZipVoice, tokens: Sequence[Sequence[int]], features: Tensor, features_lens: Tensor, x: Tensor,
    speech_condition_mask: Tensor, t_start: float, t_end: float, guidance_scale: Tensor,
) -> Tensor:
    """One Euler step of the ODE from t_start to t_end (the official `sample_intermediate` with
    num_step=1): x + v(t_start) (t_end - t_start), times taken as float32 like the official grid."""
    text_condition, padding_mask = text_condition_for_training(network, tokens, features_lens)
    speech_condition = torch.where(speech_condition_mask.unsqueeze(-1), 0, features)
    times = torch.linspace(t_start, t_end, 2, device=x.device)
    velocity = guided_velocity(network, times[0], x, text_condition, speech_condition, padding_mask, guidance_scale)
    return x + velocity * (times[1] - times[0])


def init_student_from_teacher(student: nn.Module, teacher: nn.Module) -> None:
    """Copy a ZipVoice teacher's weights into a ZipVoiceDistill student (stage 1 start); only
    the student's guidance-scale embedding keeps its own initialisation."""
    student, teacher = unwrap(student), unwrap(teacher)
    result = student.load_state_dict(teacher.state_dict(), strict=False)
    unexpected = list(result.unexpected_keys)
    foreign = [k for k in result.missing_keys if "guidance_scale_embed" not in k]
    if unexpected or foreign:
        raise ValueError(f"teacher and student differ beyond the guidance embedding: missing {foreign}, "
                         f"unexpected {unexpected}")


class StudentStep(nn.Module):
    """`nn.Module` whose forward is the student's one-step prediction, so DistributedDataParallel
    can wrap it: pass `DDP(StudentStep(student))` as `student`; `step.model` is the network."""

    def __init__(self, model: ZipVoiceDistill) -> None:
        super().__init__()
        self.model = unwrap(model)

    def forward(self, tokens, features, features_lens, x, speech_condition_mask, t_start, t_end, guidance_scale):
        return euler_step(self.model, tokens, features, features_lens, x, speech_condition_mask, t_start, t_end,
                          guidance_scale)


def _student(student: nn.Module):
    """(network, callable making the student's step) for a network, a StudentStep or DDP(StudentStep)."""
    inner = getattr(student, "module", student)
    if isinstance(inner, StudentStep):
        return inner.model, student
    if hasattr(student, "module"):
        raise TypeError("wrap StudentStep(student) in DistributedDataParallel, not the bare network")
    network = unwrap(student)
    return network, lambda *args: euler_step(network, *args)


def _uniform(low: float, high: float, generator: torch.Generator | None) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator, dtype=torch.float64))


def distillation_loss(
    student: nn.Module,
    teacher: nn.Module,
    tokens: Sequence[Sequence[int]],
    features: Tensor,
    features_lens: Tensor,
    *,
    stage: int,
    guidance_scale: Tensor | None = None,
    noise: Tensor | None = None,
    t_value: float | None = None,
    t_delta_fix: float | None = None,
    t_delta_ema: float | None = None,
    speech_condition_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Scalar distillation loss of one batch (see the module docstring).

    guidance_scale (B, 1, 1) or (B,); noise (B, T, F); speech_condition_mask (B, T) bool, True =
    frame to predict. Gradients flow into `student` only.
    """
    if stage not in GUIDANCE_RANGES:
        raise ValueError(f"distillation stage must be 1 or 2, got {stage!r}")
    network, student_step = _student(student)
    if not isinstance(network, ZipVoiceDistill):
        raise TypeError(f"the student must be a ZipVoiceDistill network, got {type(network).__name__}")
    teacher_net = unwrap(teacher)
    if stage == 2 and not isinstance(teacher_net, ZipVoiceDistill):
        raise TypeError("stage 2 needs a ZipVoiceDistill (EMA) teacher")
    features_lens, noise = checked_batch(tokens, features, features_lens, network.feature_dim, noise, generator)
    batch, frames, _ = features.shape
    device = features.device
    if t_value is None:
        t_value = float(torch.rand((), generator=generator, dtype=torch.float64))
    if guidance_scale is None:
        low, high = GUIDANCE_RANGES[stage]
        guidance_scale = torch.rand(batch, 1, 1, generator=generator, device=device) * (high - low) + low
    guidance_scale = guidance_scale.reshape(batch, 1, 1).to(device=device, dtype=features.dtype)
    if t_delta_fix is None:
        t_delta_fix = _uniform(0.0, min(MAX_TIME_DELTA, 1 - t_value), generator)
    if t_delta_ema is None:
        t_delta_ema = _uniform(0.0, min(MAX_TIME_DELTA, 1 - t_value - t_delta_fix), generator)
    if speech_condition_mask is None:
        speech_condition_mask = condition_time_mask(features_lens, frames, generator=generator)
    speech_condition_mask = speech_condition_mask.to(device=device, dtype=torch.bool)
    t_mid, t_dest = t_value + t_delta_fix, t_value + t_delta_fix + t_delta_ema

    t = torch.ones(batch, 1, 1, device=device) * t_value
    xt = features * t + noise * (1 - t)
    with torch.no_grad():
        common = {"tokens": tokens, "features": features, "features_lens": features_lens,
                  "speech_condition_mask": speech_condition_mask, "guidance_scale": guidance_scale}
        x_mid = euler_step(teacher_net, x=xt, t_start=t_value, t_end=t_mid, **common)
        target_x = euler_step(teacher_net, x=x_mid, t_start=t_mid, t_end=t_dest, **common)
    pred_x = student_step(tokens, features, features_lens, xt, speech_condition_mask, t_value, t_dest,
                        guidance_scale)
    pred_v = (pred_x - xt) / (t_dest - t)
    target_v = (target_x - xt) / (t_dest - t)
    padding = torch.arange(frames, device=device).unsqueeze(0) >= features_lens.unsqueeze(1)
    loss_mask = speech_condition_mask & ~padding
    return torch.mean((pred_v[loss_mask] - target_v[loss_mask]) ** 2)


__all__ = ["GUIDANCE_RANGES", "StudentStep", "distillation_loss", "euler_step", "guided_velocity", "init_student_from_teacher"]
