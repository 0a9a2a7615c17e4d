"""Model averaging as in icefall / ZipVoice training, and the EMA teacher of distillation.

Running average (`model_avg`, kept in float64 on the rank-0 process): after optimizer step n,
when n % average_period == 0 (n > 0),

    model_avg = model_avg * (1 - average_period / n) + model * (average_period / n)

so model_avg is the mean of the model over every average_period-th step since the start (the
first update, n = average_period, copies the model). `average_between` then gives the mean over
a range of steps (start, end] from two saved averages, as the official
`generate_averaged_model.py` ("iter-N-avg-K" / "epoch-N-avg-K" models).

EMA (distillation stage 2): ema = ema * decay + model * (1 - decay) after every step.

Floating-point entries of the state dict (parameters and float buffers) are averaged; integer
buffers are left as they are. Parameters shared between modules are updated once.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


def _inner(model: nn.Module) -> nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel -> the model


def new_averaged_model(model: nn.Module) -> nn.Module:
    """A float64 copy of `model` to hold the running average (no gradients)."""
    averaged = copy.deepcopy(_inner(model)).to(torch.float64)
    averaged.requires_grad_(False)
    return averaged


def _blend(target: dict[str, Tensor], other: dict[str, Tensor], weight_target: float, weight_other: float) -> None:
    """target = target * weight_target + other * weight_other, in place, floating entries only."""
    seen: set[int] = set()
    for name, value in target.items():
        if not torch.is_floating_point(value) or value.data_ptr() in seen:
            continue
        seen.add(value.data_ptr())
        value.mul_(weight_target).add_(other[name].to(device=value.device, dtype=value.dtype), alpha=weight_other)


@torch.no_grad()
def update_averaged_model(model: nn.Module, model_avg: nn.Module, step: int, average_period: int) -> bool:
    """Fold `model` into `model_avg` if `step` (optimizer steps done, counted from 1) is a
    positive multiple of `average_period`; returns whether it did."""
    if average_period <= 0:
        raise ValueError(f"average_period must be > 0, got {average_period}")
    if step <= 0 or step % average_period:
        return False
    weight = average_period / step
    _blend(model_avg.state_dict(), _inner(model).state_dict(), 1.0 - weight, weight)
    return True


@torch.no_grad()
def average_between(avg_start: dict[str, Tensor], step_start: int, avg_end: dict[str, Tensor], step_end: int,
                    average_period: int) -> dict[str, Tensor]:
    """Mean of the model over steps (start, end] from the running averages saved at both ends.

    avg = (avg_end * end - avg_start * start) / (end - start), with both step counts rounded down
    to a multiple of average_period (the last update each average contains). Returns a new
    state dict; the inputs are not modified.
    """
    start = step_start // average_period * average_period
    end = step_end // average_period * average_period
    if end <= start:
        raise ValueError(f"need a later end than start (after rounding to {average_period}): {start} .. {end}")
    weight_end = end / (end - start)
    result = {name: value.clone() for name, value in avg_end.items()}
    # (avg_end + avg_start * (w_start / w_end)) * w_end: no huge intermediate values.
    _blend(result, avg_start, 1.0, (1 - weight_end) / weight_end)
    for value in result.values():
        if torch.is_floating_point(value):
            value.mul_(weight_end)
    return result


@torch.no_grad()
def ema_update(model: nn.Module, ema_model: nn.Module, decay: float) -> None:
    """ema = ema * decay + model * (1 - decay), every state-dict entry of `ema_model`."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
    current = _inner(model).state_dict()
    for name, value in _inner(ema_model).state_dict().items():
        value.copy_(value * decay + current[name] * (1 - decay))


__all__ = ["average_between", "ema_update", "new_averaged_model", "update_averaged_model"]
