"""ScaledAdam and the Eden learning-rate schedule (icefall / ZipVoice), written for voxpipe.

ScaledAdam (Yao et al., "Zipformer", 2023) is Adam with three changes, all reproduced here with
the official defaults and the official step-by-step arithmetic:

1. The update of every non-scalar tensor is scaled by its current RMS (clamped below at
   `param_min_rms`), so the learning rate is relative: 0.02-0.045 instead of Adam's 1e-3.
2. The tensor's scale itself is learnt: every `size_update_period` steps the gradient w.r.t.
   log(scale), accumulated as sum(p * grad), moves it by an Adam-like step at
   lr * `scalar_lr_scale` (clamped to +-0.1 per update, never above `param_max_rms`).
3. Gradient clipping relative to history: the norm of the RMS-weighted gradient (scalars weighted
   by `scalar_lr_scale`) of each parameter group is recorded every step; every
   `clipping_update_period` steps (and at steps 10, 20, 40 with a doubled threshold) the threshold
   becomes `clipping_scale` x the median of the recorded norms; a step whose norm exceeds it has its
   gradient scaled down to it. `clipping_scale=None` disables clipping. (`param.grad` itself is not
   modified.)

Momentum uses beta1 without bias correction; the second moment beta2 with bias correction
(skipped once it exceeds 0.99); scalar parameters (one element) are clamped to +-`scalar_max`.
The official implementation stacks same-shaped parameters for speed; the arithmetic per
parameter is the same, so results agree to float rounding (tests/test_training_optim.py).

Eden: lr = base_lr * ((b^2 + B^2) / B^2)^-0.25 * ((e^2 + E^2) / E^2)^-0.25 * warmup, with b
the batch index, e the epoch (or, as ZipVoice's `--lr-hours`, hours of audio seen: call
`step_epoch(hours)` every batch and pass the hours constant as `lr_epochs`), warmup rising
linearly from `warmup_start` to 1 over `warmup_batches`. As in the official loop, call
`scheduler.step_batch(batch_index)` before `optimizer.step()`; until the first call the
optimizer runs at base_lr.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn
from torch.optim import Optimizer

IRREGULAR_CLIPPING_STEPS = (10, 20, 40)
"""Early steps at which the clipping threshold is (re)estimated from the norms seen so far."""


class ScaledAdam(Optimizer):
    """ScaledAdam (see the module docstring). `params`: parameters, (name, parameter) pairs, or
    groups (dicts with "params" or "named_params" and per-group options such as "lr")."""

    def __init__(
        self,
        params: Iterable,
        lr: float = 3e-2,
        clipping_scale: float | None = None,
        betas: tuple[float, float] = (0.9, 0.98),
        scalar_lr_scale: float = 0.1,
        eps: float = 1.0e-8,
        param_min_rms: float = 1.0e-5,
        param_max_rms: float = 3.0,
        scalar_max: float = 10.0,
        size_update_period: int = 4,
        clipping_update_period: int = 100,
    ) -> None:
        if lr <= 0 or not 0 < betas[0] <= betas[1] < 1 or size_update_period < 1 or clipping_update_period < 1:
            raise ValueError(
                f"ScaledAdam: need lr > 0, 0 < beta1 <= beta2 < 1, periods >= 1; got lr={lr}, betas={betas}, "
                f"size_update_period={size_update_period}, clipping_update_period={clipping_update_period}"
            )
        if clipping_scale is not None and clipping_scale <= 0:
            raise ValueError(f"ScaledAdam: clipping_scale must be > 0 or None, got {clipping_scale}")
        defaults = {
            "lr": lr, "clipping_scale": clipping_scale, "betas": tuple(betas), "scalar_lr_scale": scalar_lr_scale,
            "eps": eps, "param_min_rms": param_min_rms, "param_max_rms": param_max_rms, "scalar_max": scalar_max,
            "size_update_period": size_update_period, "clipping_update_period": clipping_update_period,
        }
        super().__init__(_plain_groups(params), defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = group["params"]
            if not params:
                continue
            started = "step" in self.state[params[0]]
            factor = self._clipping_factor(group) if started else 1.0
            for p in params:
                state = self.state[p]
                state.setdefault("step", 0)
                grad = torch.zeros_like(p) if p.grad is None else p.grad
                if grad.is_sparse:
                    raise RuntimeError("ScaledAdam does not support sparse gradients")
                if factor == 0.0:
                    grad = torch.zeros_like(grad)  # non-finite norm: no gradient step (inf * 0 = NaN)
                elif factor != 1.0:
                    grad = grad * factor
                p.add_(_momentum_update(group, p, state, grad))
                if p.numel() == 1:
                    p.clamp_(min=-group["scalar_max"], max=group["scalar_max"])
                state["step"] += 1
        return loss

    def _clipping_factor(self, group: dict) -> float:
        """Scale (<= 1) for this step's gradients of `group`; the group's clipping history lives
        in the state of its first parameter."""
        clipping_scale = group["clipping_scale"]
        history = self.state[group["params"][0]]
        step = history["step"]
        if clipping_scale is None or step == 0:
            return 1.0
        period = group["clipping_update_period"]
        sumsq = torch.zeros((), device=group["params"][0].device)
        for p in group["params"]:
            grad = torch.zeros_like(p) if p.grad is None else p.grad
            if p.numel() == 1:
                sumsq += (grad**2).sum() * group["scalar_lr_scale"] ** 2
            else:
                sumsq += ((grad * self.state[p]["param_rms"]) ** 2).sum()
        norm = sumsq.sqrt()
        if "model_norms" not in history:
            history["model_norms"] = torch.zeros(period, device=norm.device)
        history["model_norms"][step % period] = norm

        irregular = [s for s in IRREGULAR_CLIPPING_STEPS if s < period]
        if step % period == 0 or step in irregular:
            norms = history["model_norms"].sort()[0].cpu()
            if step in irregular:
                norms = norms[-step:]  # only the norms recorded so far (the rest are zeros)
            count = norms.numel()
            median = norms[min(count - 1, (count // 4) * 2)].item()
            if math.isnan(median):
                raise RuntimeError("ScaledAdam: too many gradients were not finite")
            threshold = clipping_scale * median * (2.0 if step in irregular else 1.0)
            history["model_norm_threshold"] = threshold
            history["num_clipped"] = 0
        if "model_norm_threshold" not in history:
            return 1.0
        factor = min(1.0, (history["model_norm_threshold"] / (norm + 1.0e-20)).item())
        if math.isnan(factor):  # NaN gradient norm: skip the update entirely
            factor = 0.0
        if factor < 1.0:
            history["num_clipped"] = history.get("num_clipped", 0) + 1
        return factor


def _plain_groups(params: Iterable) -> list[dict]:
    """Accept parameters, (name, parameter) pairs, or groups with "params"/"named_params"."""
    items = list(params)
    if not items:
        raise ValueError("ScaledAdam got an empty parameter list")
    if not isinstance(items[0], dict):
        items = [{"params": items}]
    groups = []
    for group in items:
        group = dict(group)
        if "named_params" in group:
            group["params"] = [p for _, p in group.pop("named_params")]
        group["params"] = [p[1] if isinstance(p, tuple) else p for p in group["params"]]
        groups.append(group)
    return groups


def _adam_update(group: dict, p: Tensor, state: dict, grad: Tensor) -> Tensor:
    """-lr * grad / (sqrt(bias-corrected second moment) + eps); scalars at lr * scalar_lr_scale."""
    lr = group["lr"] * (group["scalar_lr_scale"] if p.numel() == 1 else 1.0)
    beta2 = group["betas"][1]
    if "exp_avg_sq" not in state:
        state["exp_avg_sq"] = torch.zeros(p.shape, device=p.device, dtype=torch.float)
    exp_avg_sq = state["exp_avg_sq"]
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    correction = 1 - beta2 ** (state["step"] + 1)
    if correction < 0.99:
        exp_avg_sq = exp_avg_sq * (1.0 / correction)
    return -lr * grad / exp_avg_sq.sqrt().add_(group["eps"])


def _scaled_update(group: dict, p: Tensor, state: dict, grad: Tensor) -> Tensor:
    """Adam update x RMS of the tensor, plus the periodic learnt change of the tensor's scale."""
    delta = _adam_update(group, p, state, grad)
    if p.numel() == 1:
        return delta
    step, period = state["step"], group["size_update_period"]
    if "param_rms" not in state:
        state["param_rms"] = p.pow(2).mean().sqrt().float().reshape(())
        state["scale_exp_avg_sq"] = torch.zeros((), device=p.device)
        state["scale_grads"] = torch.zeros(period, device=p.device)
    # d loss / d log(scale) of this step, batched and applied every `period` steps.
    state["scale_grads"][step % period] = (p * grad).sum()
    at_update = step % period == period - 1
    if at_update:
        state["param_rms"].copy_(p.pow(2).mean().sqrt())
    param_rms = state["param_rms"]
    delta *= param_rms.clamp(min=group["param_min_rms"])
    if at_update and step > 0:
        beta2 = group["betas"][1] ** period  # faster decay at this slower rate
        scale_grads = state["scale_grads"]
        state["scale_exp_avg_sq"].mul_(beta2).add_((scale_grads**2).mean(), alpha=1 - beta2)
        correction = 1 - beta2 ** ((step + 1) // period)
        denom = state["scale_exp_avg_sq"].sqrt() + group["eps"]
        size_lr = group["lr"] * group["scalar_lr_scale"]
        scale_step = -size_lr * (correction**0.5) * scale_grads.sum() / denom
        if bool(param_rms < group["param_min_rms"]):
            scale_step = torch.zeros_like(scale_step)  # too small already: do not shrink further
        scale_step = scale_step.clamp(min=-0.1, max=0.1)
        scale_step = torch.minimum(scale_step, (group["param_max_rms"] - param_rms) / param_rms)
        delta.add_(p * scale_step)
    return delta


def _momentum_update(group: dict, p: Tensor, state: dict, grad: Tensor) -> Tensor:
    delta = _scaled_update(group, p, state, grad)
    beta1 = group["betas"][0]
    if "delta" not in state:
        state["delta"] = torch.zeros(p.shape, device=p.device, dtype=torch.float)
    state["delta"].mul_(beta1).add_(delta, alpha=1 - beta1)
    return state["delta"]


class Eden:
    """Eden learning-rate schedule (see the module docstring); same interface as the official
    scheduler: step_batch(batch=None), step_epoch(epoch=None), get_last_lr(), state_dict()."""

    def __init__(
        self, optimizer: Optimizer, lr_batches: float, lr_epochs: float, warmup_batches: float = 500.0,
        warmup_start: float = 0.5,
    ) -> None:
        if lr_batches <= 0 or lr_epochs <= 0 or warmup_batches < 0 or not 0.0 <= warmup_start <= 1.0:
            raise ValueError(
                f"Eden: need lr_batches > 0, lr_epochs > 0, warmup_batches >= 0, 0 <= warmup_start <= 1; got "
                f"{lr_batches}, {lr_epochs}, {warmup_batches}, {warmup_start}"
            )
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.base_lrs = [group["base_lr"] for group in optimizer.param_groups]
        self.lr_batches, self.lr_epochs = lr_batches, lr_epochs
        self.warmup_batches, self.warmup_start = warmup_batches, warmup_start
        self.batch, self.epoch = 0, 0
        self._last_lr = list(self.base_lrs)

    def factor(self) -> float:
        """lr / base_lr at the current batch and epoch."""
        decay = ((self.batch**2 + self.lr_batches**2) / self.lr_batches**2) ** -0.25 * (
            ((self.epoch**2 + self.lr_epochs**2) / self.lr_epochs**2) ** -0.25
        )
        if self.batch >= self.warmup_batches:
            return decay
        return decay * (self.warmup_start + (1.0 - self.warmup_start) * (self.batch / self.warmup_batches))

    def step_batch(self, batch: int | None = None) -> None:
        """Set the batch index counted from the start of training (or advance it by one)."""
        self.batch = self.batch + 1 if batch is None else batch
        self._apply()

    def step_epoch(self, epoch: float | None = None) -> None:
        """Set the epoch (or hours of audio seen; see the module docstring), or advance by one."""
        self.epoch = self.epoch + 1 if epoch is None else epoch
        self._apply()

    def _apply(self) -> None:
        factor = self.factor()
        for group, base_lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base_lr * factor
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        return self._last_lr

    def state_dict(self) -> dict:
        return {"batch": self.batch, "epoch": self.epoch}

    def load_state_dict(self, state: dict) -> None:
        self.batch, self.epoch = state["batch"], state["epoch"]
        self._apply()


def clip_grad_norm(parameters: Iterable[nn.Parameter], max_norm: float) -> float:
    """Plain global-norm clipping for optimizers without their own (e.g. AdamW); returns the norm.

    ScaledAdam clips by itself (`clipping_scale`): do not combine the two.
    """
    return float(nn.utils.clip_grad_norm_(list(parameters), max_norm))


__all__ = ["Eden", "ScaledAdam", "clip_grad_norm"]
