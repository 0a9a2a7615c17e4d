"""The Zipformer's training-time regularisers, as k2-fsa/ZipVoice trains with them.

The official network (`zipvoice/models/modules/zipformer.py`, `scaling.py`) carries, in training
mode, scheduled dropouts and module/layer skipping, gradient-modifying Balancer and Whiten
modules applied on random steps, and limits on parameter ranges. voxpipe's network
(`zipformer.py`) is the exact one; `attach_regularizers(network, clock)` adds these to it:
every regularised module gets a `regularizers` attribute (`Sites`) that its forward consults
through `scaling.regularizers_of(module)`, which is the identity unless the module is in training
mode (eval mode, inference, or a network never attached: bit-identical to the exact network).

Schedules are piecewise-linear in the *batch count* the trainer sets on the `TrainingClock`
(`official_batch_count`: batches x max_duration x processes / 50 s, + 100000 when fine-tuning,
refreshed every 10 batches of an epoch, as train_zipvoice.py). Random decisions ("coins") come
from `clock.coins.random()` (python's `random` in the trainer, whose state checkpoints carry),
masks from `clock.generator` (a torch.Generator on the network's device).

Left out: the 8-bit, randomly dithered storage of SwooshL/R derivatives (a memory trick; voxpipe
keeps the exact derivative) and the Balancer's skipping when CUDA memory is short.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

REFERENCE_BATCH_SECONDS = 50.0  # official --ref-duration
FINE_TUNE_BATCH_OFFSET = 100000.0  # official --finetune: every schedule at its final value
BATCH_COUNT_EVERY = 10  # official: set_batch_count every 10 batches of an epoch


# ---- schedules ---------------------------------------------------------------------------------
class Schedule:
    """A value piecewise-linear in the batch count, constant before the first / after the last point.

    `default` is the value without a batch count (official `ScheduledFloat`); a plain float
    is `Schedule.constant(x)`.
    """

    def __init__(self, *points: tuple[float, float], default: float = 0.0) -> None:
        xs = [float(x) for x, _ in points]
        if not points or any(b <= a for a, b in itertools.pairwise(xs)):
            raise ValueError(f"schedule points must be non-empty with increasing batch counts: {points}")
        self.points = [(float(x), float(y)) for x, y in points]
        self.default = float(default)

    @classmethod
    def constant(cls, value: float) -> Schedule:
        return cls((0.0, value), default=value)

    def __call__(self, batch_count: float | None) -> float:
        if batch_count is None:
            return self.default
        (x0, y0), (xn, yn) = self.points[0], self.points[-1]
        if batch_count <= x0:
            return y0
        if batch_count >= xn:
            return yn
        for (xa, ya), (xb, yb) in itertools.pairwise(self.points):
            if xa <= batch_count <= xb:
                return ya + (yb - ya) * (batch_count - xa) / (xb - xa)
        raise AssertionError("unreachable")


def _schedule(value: float | Schedule) -> Schedule:
    return value if isinstance(value, Schedule) else Schedule.constant(value)


def whitening_limit(limit: float, ratio: float = 2.0) -> Schedule:
    """The Whiten limits of the Zipformer: `limit` at batch 0, `ratio` x limit from batch 20000."""
    return Schedule((0.0, limit), (20000.0, ratio * limit), default=limit)


# ---- the clock the trainer drives ---------------------------------------------------------------
@dataclass
class TrainingClock:
    """What all regularisers of one network share: the batch count (None = schedule defaults) and
    the random sources. `coins` is anything with .random() -> [0, 1) (python's `random` module, a
    random.Random); `coins.random()` decides whether a Balancer/Whiten/limit acts on a call;
    `generator` draws dropout and skip masks."""

    generator: torch.Generator
    coins: Any = random
    batch_count: float | None = None

    def value(self, schedule: Schedule) -> float:
        return schedule(self.batch_count)

    def coin(self) -> float:
        return self.coins.random()


def official_batch_count(step: int, batch_in_epoch: int, max_duration: float, world_size: int,
                         fine_tuning: bool) -> float:
    """The batch count train_zipvoice.py gives the schedules while it trains optimizer step `step`
    (counted from 1), the `batch_in_epoch`-th batch (from 1) of its epoch: refreshed on every 10th
    batch of an epoch to (batches done) x max_duration x world_size / 50 s, + 100000 if fine-tuning."""
    since_refresh = (batch_in_epoch - 1) % BATCH_COUNT_EVERY
    batches_done = step - 1 - since_refresh
    count = batches_done * (max_duration * world_size) / REFERENCE_BATCH_SECONDS
    return count + FINE_TUNE_BATCH_OFFSET if fine_tuning else count


# ---- gradient-only regularisers ----------------------------------------------------------------
def _proportion_positive_to_mean(proportion: float) -> float:
    """The mean / stddev of a Gaussian positive `proportion` of the time (the official crude inverse
    erf: 0.8139535143 atanh(2p - 1), with 1e-10 guarding p = 0 or 1)."""
    y = 2.0 * proportion - 1.0
    return 0.8139535143 * (math.log(1 + y + 1.0e-10) - math.log(1 - y + 1.0e-10)) / 2.0


ABS_TO_RMS = 1.25331413732  # sqrt(pi / 2): rms of a Gaussian with this mean absolute value


class _BalancerGradient(torch.autograd.Function):
    """Identity forward; backward adds |grad| x (the normalised gradient of a penalty on each
    channel's mean/stddev outside [min_mean, max_mean] and rms outside [min_rms, max_rms])."""

    @staticmethod
    def forward(ctx, x: Tensor, limits: tuple[float, float, float, float], grad_scale: float, channel_dim: int):
        ctx.save_for_backward(x)
        ctx.limits, ctx.grad_scale, ctx.channel_dim = limits, grad_scale, channel_dim
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        min_mean, max_mean, min_rms, max_rms = ctx.limits
        other_dims = [d for d in range(x.ndim) if d != ctx.channel_dim]
        with torch.enable_grad():
            x = x.detach().float().requires_grad_(True)
            mean_square = (x**2).mean(dim=other_dims, keepdim=True)
            mean = x.mean(dim=other_dims, keepdim=True)
            stddev = (mean_square - mean * mean).clamp(min=1.0e-20).sqrt()
            rms = mean_square.clamp(min=1.0e-20).sqrt()
            normalised_mean = mean / stddev
            penalty = (normalised_mean - normalised_mean.clamp(min=min_mean, max=max_mean)).abs()
            penalty = penalty + (rms.clamp(min=min_rms, max=max_rms) / rms).log().abs()
            (direction,) = torch.autograd.grad(penalty.sum(), x)
        direction_rms = (direction**2).mean(dim=other_dims, keepdim=True).sqrt().clamp(min=1.0e-20)
        direction = direction * (ctx.grad_scale / direction_rms)
        grad_float = grad.float()
        return (grad_float + grad_float.abs() * direction).to(grad.dtype), None, None, None


@dataclass
class Balancer:
    """Keeps each channel's share of positive values in [min_positive, max_positive] and its
    mean absolute value in [min_abs, max_abs] by nudging gradients, on a call with probability
    `prob` (official defaults: 0.5 -> 0.125 over 8000 batches; 0.4 without a batch count)."""

    channel_dim: int
    min_positive: float | Schedule = 0.05
    max_positive: float | Schedule = 0.95
    min_abs: float | Schedule = 0.2
    max_abs: float | Schedule = 100.0
    grad_scale: float = 0.04
    prob: float | Schedule = field(default_factory=lambda: Schedule((0.0, 0.5), (8000.0, 0.125), default=0.4))

    def schedules(self) -> dict[str, Schedule]:
        names = ("prob", "min_positive", "max_positive", "min_abs", "max_abs", "grad_scale")
        return {name: _schedule(getattr(self, name)) for name in names}

    def __call__(self, x: Tensor, clock: TrainingClock) -> Tensor:
        if not x.requires_grad or not clock.coin() < clock.value(_schedule(self.prob)):
            return x
        return self.force(x, clock)

    def force(self, x: Tensor, clock: TrainingClock) -> Tensor:
        """Apply (no coin): the forward is the identity, the backward modified."""
        value = {name: clock.value(schedule) for name, schedule in self.schedules().items()}
        limits = (_proportion_positive_to_mean(value["min_positive"]), _proportion_positive_to_mean(value["max_positive"]),
                  ABS_TO_RMS * value["min_abs"], ABS_TO_RMS * value["max_abs"])
        channel_dim = self.channel_dim % x.ndim
        return _BalancerGradient.apply(x, limits, float(self.grad_scale), channel_dim)


def whitening_metric(x: Tensor, num_groups: int) -> Tensor:
    """>= 1, and 1 exactly when each group's centred covariance is a multiple of the identity with
    the same multiple for all groups. x (..., C) with C divisible by num_groups."""
    x = x.reshape(-1, x.shape[-1])
    frames, channels = x.shape
    per_group = channels // num_groups
    x = x.reshape(frames, num_groups, per_group).transpose(0, 1)
    x = x - x.mean(dim=1, keepdim=True)
    covariance = torch.matmul(x.transpose(1, 2), x)  # (G, c, c)
    mean_diagonal = torch.diagonal(covariance, dim1=1, dim2=2).mean()
    mean_diagonal_of_square = (covariance**2).sum() / (num_groups * per_group)
    return mean_diagonal_of_square / (mean_diagonal**2 + 1.0e-20)


class _WhitenGradient(torch.autograd.Function):
    """Identity forward; backward adds the gradient of the whitening metric (scaled to
    grad_scale x the incoming gradient's norm) when the metric exceeds the limit."""

    @staticmethod
    def forward(ctx, x: Tensor, whiten: Whiten, limit: float):
        ctx.save_for_backward(x)
        ctx.whiten, ctx.limit = whiten, limit
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        whiten = ctx.whiten
        with torch.enable_grad():
            x = x.detach().float().requires_grad_(True)
            metric = whitening_metric(x, whiten.num_groups)
            if metric < ctx.limit:
                whiten.prob = whiten.min_prob  # white enough: check less often
                return grad, None, None
            whiten.prob = whiten.max_prob
            (direction,) = torch.autograd.grad(metric, x)
        scale = whiten.grad_scale * (grad.float().norm() / (direction.norm() + 1.0e-20))
        return grad + (direction * scale).to(grad.dtype), None, None


@dataclass
class Whiten:
    """Pushes the channel covariance of x towards white (metric <= limit) through gradients, on a
    call with probability `prob`: max_prob until a check finds x white enough, then min_prob until
    one does not (this adaptive state is per module and saved in checkpoints)."""

    num_groups: int
    whitening_limit: Schedule
    min_prob: float = 0.025
    max_prob: float = 0.25
    grad_scale: float = 0.01
    prob: float = -1.0  # current probability; starts at max_prob

    def __post_init__(self) -> None:
        if self.prob < 0:
            self.prob = self.max_prob

    def schedules(self) -> dict[str, Schedule]:
        return {"whitening_limit": self.whitening_limit, "min_prob": Schedule.constant(self.min_prob),
                "max_prob": Schedule.constant(self.max_prob), "grad_scale": Schedule.constant(self.grad_scale)}

    def __call__(self, x: Tensor, clock: TrainingClock) -> Tensor:
        if not x.requires_grad or clock.coin() > self.prob or self.grad_scale == 0:
            return x
        return self.force(x, clock)

    def force(self, x: Tensor, clock: TrainingClock) -> Tensor:
        return _WhitenGradient.apply(x, self, clock.value(self.whitening_limit))


class _LimitGradient(torch.autograd.Function):
    """Identity forward; backward flips gradients that would push x further below `low` or above `high`."""

    @staticmethod
    def forward(ctx, x: Tensor, low: float, high: float):
        ctx.save_for_backward(x)
        ctx.low, ctx.high = low, high
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        grad = grad * torch.where((grad > 0) & (x < ctx.low), -1.0, 1.0)
        grad = grad * torch.where((grad < 0) & (x > ctx.high), -1.0, 1.0)
        return grad, None, None


@dataclass
class ParamLimit:
    """Keeps a parameter (mostly) inside [low, high] via its gradient, on a call with probability 0.6."""

    low: float | Schedule
    high: float | Schedule
    prob: float = 0.6

    def schedules(self) -> dict[str, Schedule]:
        return {"min": _schedule(self.low), "max": _schedule(self.high)}

    def __call__(self, x: Tensor, clock: TrainingClock) -> Tensor:
        if not clock.coin() < self.prob:
            return x
        return self.force(x, clock)

    def force(self, x: Tensor, clock: TrainingClock) -> Tensor:
        return _LimitGradient.apply(x, clock.value(_schedule(self.low)), clock.value(_schedule(self.high)))


class _AbsPenaltyGradient(torch.autograd.Function):
    """Identity forward; backward adds penalty x sign(x) where |x| > limit (the gradient of
    penalty x relu(|x| - limit) added to the loss)."""

    @staticmethod
    def forward(ctx, x: Tensor, limit: float, penalty: float):
        ctx.save_for_backward(x)
        ctx.limit, ctx.penalty = limit, penalty
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        (x,) = ctx.saved_tensors
        over = (x.sign() * ((x.abs() - ctx.limit) > 0)).to(grad.dtype)
        return grad + ctx.penalty * over, None, None


@dataclass
class AbsPenalty:
    """The attention scores' fail-safe: on a call with probability 0.1, |score| > 25 costs 1e-4 each."""

    limit: float = 25.0
    penalty: float = 1.0e-4
    prob: float = 0.1

    def schedules(self) -> dict[str, Schedule]:
        return {}

    def __call__(self, x: Tensor, clock: TrainingClock) -> Tensor:
        if not clock.coin() < self.prob:
            return x
        return self.force(x, clock)

    def force(self, x: Tensor, clock: TrainingClock) -> Tensor:
        return _AbsPenaltyGradient.apply(x, self.limit, self.penalty)


# ---- forward-changing regularisers ---------------------------------------------------------------
@dataclass
class Dropout:
    """Dropout with a scheduled rate; `shared_dim` (if set) shares the mask along that axis.

    shared_dim None draws like torch's dropout (bernoulli), so a seeded generator gives the
    official masks; a shared mask is `rand(shape with shared_dim = 1) > p`, as the official
    feed-forward dropout."""

    rate: float | Schedule
    shared_dim: int | None = None

    def schedules(self) -> dict[str, Schedule]:
        return {"p": _schedule(self.rate)}

    def __call__(self, x: Tensor, clock: TrainingClock) -> Tensor:
        p = clock.value(_schedule(self.rate))
        if p == 0.0:
            return x
        if self.shared_dim is None:
            keep = torch.empty_like(x).bernoulli_(1.0 - p, generator=clock.generator).div_(1.0 - p)
            return x * keep
        shape = list(x.shape)
        shape[self.shared_dim] = 1
        keep = (1.0 / (1.0 - p)) * (torch.rand(shape, device=x.device, dtype=x.dtype, generator=clock.generator) > p)
        return x * keep


@dataclass
class SequenceSkip:
    """Drops a module's output for whole sequences with a scheduled probability: x (T, B, C) times a
    (B, 1) mask of 0/1 (no rescaling)."""

    rate: Schedule

    def schedules(self) -> dict[str, Schedule]:
        return {"rate": self.rate}

    def keep_mask(self, x: Tensor, clock: TrainingClock) -> Tensor | None:
        rate = clock.value(self.rate)
        if rate == 0.0:
            return None
        return (torch.rand(x.shape[1], 1, device=x.device, generator=clock.generator) > rate).to(x.dtype)

    def __call__(self, x: Tensor, clock: TrainingClock) -> Tensor:
        mask = self.keep_mask(x, clock)
        return x if mask is None else x * mask


@dataclass
class ConstantAttention:
    """With a scheduled probability, replace attention weights (1, B, T, T) by a uniform average over
    the unmasked keys (nudges the non-linear attention towards averaging over time)."""

    rate: Schedule

    def schedules(self) -> dict[str, Schedule]:
        return {"rate": self.rate}

    def __call__(self, weights: Tensor, clock: TrainingClock) -> Tensor:
        if not clock.coin() < clock.value(self.rate):
            return weights
        allowed = (weights > 0.0).to(weights.dtype)
        return allowed * (1.0 / allowed.sum(dim=-1, keepdim=True))


@dataclass
class Event:
    """A scheduled probability of something happening on a call (e.g. skipping positional scores)."""

    rate: Schedule

    def schedules(self) -> dict[str, Schedule]:
        return {"rate": self.rate}

    def happens(self, clock: TrainingClock) -> bool:
        return clock.coin() < clock.value(self.rate)


# ---- attaching to a network ----------------------------------------------------------------------
class Sites:
    """The regularisers of one module, by the name of the place they act (the official attribute
    names): what `scaling.regularizers_of(module)` returns in training mode."""

    def __init__(self, clock: TrainingClock, sites: dict[str, Any]) -> None:
        self.clock = clock
        self.sites = sites

    def apply(self, name: str, x: Tensor) -> Tensor:
        site = self.sites.get(name)
        return x if site is None else site(x, self.clock)

    def keep_mask(self, name: str, x: Tensor) -> Tensor | None:
        site = self.sites.get(name)
        return None if site is None else site.keep_mask(x, self.clock)

    def happens(self, name: str) -> bool:
        site = self.sites.get(name)
        return site is not None and site.happens(self.clock)

    def __deepcopy__(self, memo) -> None:
        # Copies of a network (model average, EMA teacher) are never trained: they stay exact.
        return None


def _sequence_skip(*points: tuple[float, float]) -> SequenceSkip:
    return SequenceSkip(Schedule(*points))


def _layer_sites() -> dict[str, Any]:
    sequence = _sequence_skip
    return {
        "attention_skip_rate": sequence((0.0, 0.2), (4000.0, 0.05), (16000.0, 0.0)),
        "conv_skip_rate": sequence((0.0, 0.2), (4000.0, 0.05), (16000.0, 0.0)),
        "ff2_skip_rate": sequence((0.0, 0.1), (4000.0, 0.01), (50000.0, 0.0)),
        "ff3_skip_rate": sequence((0.0, 0.1), (4000.0, 0.01), (50000.0, 0.0)),
        "const_attention_rate": ConstantAttention(Schedule((0.0, 0.25), (4000.0, 0.025))),
        "balancer1": Balancer(-1, 0.45, 0.55, min_abs=0.2, max_abs=4.0),
        "balancer_na": Balancer(-1, 0.3, 0.7, min_abs=Schedule((0.0, 0.004), (4000.0, 0.02)), prob=0.05),
        "balancer_ff2": Balancer(-1, 0.3, 0.7, min_abs=Schedule((0.0, 0.0), (4000.0, 0.1)), max_abs=2.0, prob=0.05),
        "balancer_ff3": Balancer(-1, 0.3, 0.7, min_abs=Schedule((0.0, 0.0), (4000.0, 0.2)), max_abs=4.0, prob=0.05),
        "whiten": Whiten(1, whitening_limit(4.0, ratio=3.0)),
        "balancer2": Balancer(-1, 0.45, 0.55, min_abs=0.1, max_abs=4.0),
    }


def _sites_by_module(network: nn.Module, warmup_batches: float = 4000.0) -> dict[str, tuple[nn.Module, dict[str, Any]]]:
    """{module path: (module, its regulariser sites)} for every regularised module of a ZipVoice
    network, with the official rates (zipformer.py defaults of TTSZipformer, warmup_batches 4000)."""
    from voxpipe.plugins.zipvoice import zipformer as zf
    from voxpipe.plugins.zipvoice.scaling import BiasNorm

    found: dict[str, tuple[nn.Module, dict[str, Any]]] = {}
    modules = dict(network.named_modules())
    for name, module in modules.items():
        sites: dict[str, Any] = {}
        if isinstance(module, zf.TTSZipformer):
            _add_stack_schedules(module, name, found, warmup_batches)
            continue
        if isinstance(module, zf.RelPositionMultiheadAttentionWeights):
            sites = {"balance_keys": Balancer(-1, 0.4, 0.6, min_abs=0.0, max_abs=100.0, prob=0.025),
                     "whiten_keys": Whiten(module.num_heads, whitening_limit(3.0), grad_scale=0.025),
                     "pos_emb_skip_rate": Event(Schedule((0.0, 0.5), (4000.0, 0.0))),
                     "penalize_scores": AbsPenalty()}
        elif isinstance(module, zf.SelfAttention):
            sites = {"whiten": Whiten(1, whitening_limit(7.5, ratio=3.0))}
        elif isinstance(module, zf.FeedforwardModule):
            sites = {"hidden_balancer": Balancer(-1, 0.3, 1.0, min_abs=0.75, max_abs=5.0),
                     "out_whiten": Whiten(1, whitening_limit(7.5))}
            # The dropout after the activation inside out_proj, its mask shared over time.
            found[f"{name}.out_proj"] = (module.out_proj, {"dropout": Dropout(Schedule((0.0, 0.3), (20000.0, 0.1)),
                                                                            shared_dim=0)})
        elif isinstance(module, zf.NonlinAttention):
            sites = {"balancer": Balancer(-1, Schedule((0.0, 0.25), (20000.0, 0.05)),
                                          Schedule((0.0, 0.75), (20000.0, 0.95)), min_abs=0.5, max_abs=5.0),
                     "whiten1": Whiten(1, whitening_limit(5.0)), "whiten2": Whiten(1, whitening_limit(5.0, ratio=3.0))}
        elif isinstance(module, zf.ConvolutionModule):
            sites = {"balancer1": Balancer(-1, Schedule((0.0, 0.05), (8000.0, 0.025)), 1.0, min_abs=1.5,
                                           max_abs=Schedule((0.0, 5.0), (8000.0, 10.0), default=1.0)),
                     "balancer2": Balancer(1, Schedule((0.0, 0.1), (8000.0, 0.05)), 1.0,
                                           min_abs=Schedule((0.0, 0.2), (20000.0, 0.5)), max_abs=10.0),
                     "whiten": Whiten(1, whitening_limit(7.5))}
        elif isinstance(module, zf.BypassModule):
            sites = {"scale_limit": ParamLimit(Schedule((0.0, 0.9), (20000.0, 0.2)), 1.0)}
        elif isinstance(module, BiasNorm):
            sites = {"log_scale_limit": ParamLimit(-1.5, 1.5)}
        elif isinstance(module, zf.Zipformer2Encoder):
            sites = {"pos_dropout": Dropout(0.15)}
        elif isinstance(module, zf.Zipformer2EncoderLayer):
            sites = _layer_sites()
        if sites:
            previous = found.get(name, (module, {}))[1]
            found[name] = (module, {**sites, **previous})
    return found


def _add_stack_schedules(zipformer: nn.Module, name: str, found: dict, warmup_batches: float) -> None:
    """Layer skipping (the final bypass of each layer): stack i of n warms up over batches
    [w (i+1) / (n+1), w (i+2) / (n+1)], its layers one after another, from rate 0.5 to 0.035 x
    sqrt(downsampling factor)."""
    from voxpipe.plugins.zipvoice import zipformer as zf

    stacks = list(zipformer.encoders)
    prefix = f"{name}." if name else ""
    for i, stack in enumerate(stacks):
        factor = stack.downsample_factor if isinstance(stack, zf.DownsampledZipformer2Encoder) else 1
        encoder = stack.encoder if isinstance(stack, zf.DownsampledZipformer2Encoder) else stack
        inner = f"{prefix}encoders.{i}" + (".encoder" if encoder is not stack else "")
        begin = warmup_batches * (i + 1) / (len(stacks) + 1)
        end = warmup_batches * (i + 2) / (len(stacks) + 1)
        delta = (end - begin) / len(encoder.layers)
        for j, layer in enumerate(encoder.layers):
            skip = SequenceSkip(Schedule((begin, 0.5), (begin + delta, 0.035 * factor**0.5), default=0.0))
            bypass_name = f"{inner}.layers.{j}.bypass"
            previous = found.get(bypass_name, (layer.bypass, {}))[1]
            found[bypass_name] = (layer.bypass, {**previous, "skip_rate": skip})
            begin += delta


def attach_regularizers(network: nn.Module, clock: TrainingClock) -> int:
    """Give every Zipformer module of `network` its official training-time regularisers (acting
    only in training mode). Returns the number of modules regularised. Needs the reference
    kernels (the fused ones have no places to regularise)."""
    fused = [name for name, module in network.named_modules() if getattr(module, "fused", False)]
    if fused:
        raise ValueError(f"regularisers need the reference kernels; fused: {fused[:3]} (set_kernels(net, 'reference'))")
    sites = _sites_by_module(network)
    for module, module_sites in sites.values():
        module.regularizers = Sites(clock, module_sites)
    return len(sites)


def detach_regularizers(network: nn.Module) -> None:
    """Back to the exact network."""
    for module in network.modules():
        module.__dict__.pop("regularizers", None)


def describe_schedules(network: nn.Module, batch_count: float | None) -> dict[str, float]:
    """{"<module path>.<site>.<value>": value at `batch_count`} for every scheduled quantity (the
    names follow the official modules', e.g. `...layers.0.balancer1.prob`)."""
    clock = TrainingClock(torch.Generator(), batch_count=batch_count)
    values: dict[str, float] = {}
    for name, (_, sites) in _sites_by_module(network).items():
        for site_name, site in sites.items():
            for key, schedule in site.schedules().items():
                values[f"{name}.{site_name}.{key}"] = clock.value(schedule)
    return values


def whiten_state(network: nn.Module) -> dict[str, float]:
    """{"<module path>.<site>": current probability} of every Whiten: saved with checkpoints (the
    probabilities adapt during training, so an exact resume needs them)."""
    return {name: site.prob for name, site in _attached(network) if isinstance(site, Whiten)}


def load_whiten_state(network: nn.Module, probs: dict[str, float] | None) -> None:
    """Restore `whiten_state`; nothing to restore (None, {}) or no regularisers attached: no-op."""
    whitens = {name: site for name, site in _attached(network) if isinstance(site, Whiten)}
    if not probs or not whitens:
        return
    if set(probs) != set(whitens):
        raise ValueError(f"the checkpoint's Whiten states do not fit this network: {sorted(set(probs) ^ set(whitens))[:3]}")
    for name, prob in probs.items():
        whitens[name].prob = float(prob)


def _attached(network: nn.Module):
    for path, module in network.named_modules():
        sites = module.__dict__.get("regularizers")
        if sites is not None:
            for name, site in sites.sites.items():
                yield f"{path}.{name}" if path else name, site


__all__ = [
    "AbsPenalty", "Balancer", "ConstantAttention", "Dropout", "Event", "ParamLimit", "Schedule", "SequenceSkip",
    "Sites", "TrainingClock", "Whiten", "attach_regularizers", "describe_schedules", "detach_regularizers",
    "load_whiten_state", "official_batch_count", "whiten_state", "whitening_limit",
]
