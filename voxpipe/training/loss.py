"""The ZipVoice flow-matching training loss, as the official `ZipVoice.forward` computes it.

API (used by the trainer)::

    flow_matching_loss(model, tokens, features, features_lens, *, noise=None, t=None,
                       speech_condition_mask=None, condition_drop_ratio=0.2,
                       condition_drop_mask=None, generator=None) -> scalar tensor

`model` is voxpipe's ZipVoice network (`voxpipe.plugins.zipvoice.model.ZipVoice`, the module
a pipeline loads), or, for DistributedDataParallel, `DDP(FlowMatchingObjective(network))`: DDP
only synchronises gradients of computations that go through its own forward, and the network
has no training forward of its own. `features` (B, T, F) are the
training targets already multiplied by the feature scale (0.1 for ZipVoice: the official
`prepare_input` scales before the model, and pipelines divide by it after sampling);
`features_lens` (B,) int64 frames, padding past each length is ignored.

One loss evaluation, per utterance b:
  t_b ~ U(0, 1)                       time, shape (B, 1, 1)
  noise ~ N(0, I)                     (B, T, F)
  x_t = t * x_1 + (1 - t) * noise     interpolation between noise and the target
  u_t = x_1 - noise                   target velocity
  span = 70-100 % of the frames, at a uniform random start: the frames to predict
         (`condition_time_mask`); the other frames are the speech prompt (speech
         condition = features with the span zeroed)
  text condition dropped (zeroed) for the whole utterance with probability
         `condition_drop_ratio` (classifier-free guidance training)
  loss = mean over (span & not padding) frames and all F channels of (v_t - u_t)^2

Every random part can be passed in (`noise`, `t`, `speech_condition_mask`,
`condition_drop_mask`) so a run is reproducible and comparable with the official code; what is
not passed is drawn from `generator` (or torch's global generator) in the official order:
span mask, then drop mask, with `noise` and `t` drawn first (as the official
`compute_fbank_loss` does before calling the model).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from voxpipe.plugins.zipvoice.model import ZipVoice, upsample_text

PROMPT_MASK_PERCENT = (0.7, 1.0)
"""Fraction of each utterance's frames that are masked (to be predicted), official (0.7, 1.0)."""
FEATURE_SCALE = 0.1
"""ZipVoice's feature scale: the loss sees log-mel features times this (official --feat-scale)."""


def unwrap(model: nn.Module) -> ZipVoice:
    """The ZipVoice network inside a DistributedDataParallel (or the model itself)."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, ZipVoice):
        raise TypeError(f"expected a voxpipe ZipVoice network, got {type(inner).__name__}")
    return inner


def condition_time_mask(
    features_lens: Tensor, max_len: int, mask_percent: tuple[float, float] = PROMPT_MASK_PERCENT,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random contiguous span per utterance, True = masked (predicted) frame -> (B, max_len) bool.

    Span size = floor(U(mask_percent) * length) frames, start = floor(U(0, 1) * (length - size)),
    drawn with the same tensor ops (and so the same random stream) as the official helper.
    """
    lens = features_lens
    fraction = torch.zeros(lens.shape, dtype=torch.float32, device=lens.device)
    fraction.uniform_(*mask_percent, generator=generator)
    size = (fraction * lens).to(torch.int64)
    start_fraction = torch.rand(size.shape, dtype=torch.float32, device=lens.device, generator=generator)
    start = (start_fraction * (lens - size)).to(torch.int64)
    frame = torch.arange(max(max_len, int(lens.max())), device=lens.device).unsqueeze(0)
    return (frame >= start.unsqueeze(1)) & (frame < (start + size).unsqueeze(1))


def text_condition_for_training(model: ZipVoice, tokens: Sequence[Sequence[int]], features_lens: Tensor) -> tuple[Tensor, Tensor]:
    """Encode tokens and spread them uniformly over each utterance's real length.

    Returns text_condition (B, T, feat_dim) with T = max(features_lens), padding_mask (B, T).
    """
    embed, tokens_lens = model.encode_text(tokens)
    return upsample_text(embed, tokens_lens, features_lens.to(embed.device))


def _check_inputs(tokens: Sequence[Sequence[int]], features: Tensor, features_lens: Tensor, feature_dim: int) -> None:
    if features.dim() != 3:
        raise ValueError(f"features must be (B, T, F), got shape {tuple(features.shape)}")
    batch, frames, channels = features.shape
    if channels != feature_dim:
        raise ValueError(f"features have F={channels} channels, the model expects {feature_dim}")
    if features_lens.shape != (batch,):
        raise ValueError(f"features_lens must be ({batch},), got shape {tuple(features_lens.shape)}")
    if len(tokens) != batch or any(len(seq) == 0 for seq in tokens):
        raise ValueError(f"tokens must be {batch} non-empty id lists, got lengths {[len(s) for s in tokens]}")
    if int(features_lens.min()) < 1 or int(features_lens.max()) != frames:
        raise ValueError(f"features_lens must be in [1, T={frames}] with max T, got {features_lens.tolist()}")


def checked_batch(tokens: Sequence[Sequence[int]], features: Tensor, features_lens: Tensor, feature_dim: int,
                  noise: Tensor | None, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Check one batch (errors name the bad input) and return (features_lens as int64 on the
    features' device, noise (B, T, F): the given one, else drawn from `generator`)."""
    _check_inputs(tokens, features, features_lens, feature_dim)
    features_lens = features_lens.to(device=features.device, dtype=torch.int64)
    if noise is None:
        noise = torch.randn(features.shape, dtype=features.dtype, device=features.device, generator=generator)
    return features_lens, noise


class FlowMatchingObjective(nn.Module):
    """`nn.Module` whose forward is the loss given all random parts, so DistributedDataParallel
    can wrap it (DDP must see the forward call to synchronise gradients).

    Wrap as `DDP(FlowMatchingObjective(network))` and pass that to `flow_matching_loss`;
    `objective.model` is the network (save/export `objective.model.state_dict()`).
    """

    def __init__(self, model: ZipVoice) -> None:
        super().__init__()
        self.model = unwrap(model)

    def forward(
        self, tokens: Sequence[Sequence[int]], features: Tensor, features_lens: Tensor, noise: Tensor, t: Tensor,
        speech_condition_mask: Tensor, text_keep: Tensor | None,
    ) -> Tensor:
        return _loss_given_draws(self.model, tokens, features, features_lens, noise, t, speech_condition_mask, text_keep)


def _loss_given_draws(
    network: ZipVoice, tokens: Sequence[Sequence[int]], features: Tensor, features_lens: Tensor, noise: Tensor,
    t: Tensor, speech_condition_mask: Tensor, text_keep: Tensor | None,
) -> Tensor:
    """The deterministic part of the loss; text_keep (B, 1, 1) bool or None (keep all)."""
    text_condition, padding_mask = text_condition_for_training(network, tokens, features_lens)
    speech_condition = torch.where(speech_condition_mask.unsqueeze(-1), 0, features)
    if text_keep is not None:
        text_condition = text_condition * text_keep
    xt = features * t + noise * (1 - t)
    ut = features - noise
    vt = network.forward_fm_decoder(
        t=t, xt=xt, text_condition=text_condition, speech_condition=speech_condition, padding_mask=padding_mask
    )
    loss_mask = speech_condition_mask & ~padding_mask
    return torch.mean((vt[loss_mask] - ut[loss_mask]) ** 2)


def _network_and_caller(model: nn.Module):
    """(ZipVoice network, callable computing the loss from draws) for a network, an objective,
    or DDP(objective)."""
    inner = getattr(model, "module", model)
    if isinstance(inner, FlowMatchingObjective):
        return inner.model, model  # call through DDP so it sees the forward
    if hasattr(model, "module") and isinstance(inner, ZipVoice):
        raise TypeError("wrap FlowMatchingObjective(network) in DistributedDataParallel, not the bare network")
    network = unwrap(model)
    return network, lambda *args: _loss_given_draws(network, *args)


def flow_matching_loss(
    model: nn.Module,
    tokens: Sequence[Sequence[int]],
    features: Tensor,
    features_lens: Tensor,
    *,
    noise: Tensor | None = None,
    t: Tensor | None = None,
    speech_condition_mask: Tensor | None = None,
    condition_drop_ratio: float = 0.2,
    condition_drop_mask: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Scalar flow-matching loss of one batch (see the module docstring).

    model: a ZipVoice network, a FlowMatchingObjective, or DDP(FlowMatchingObjective).
    noise (B, T, F); t (B, 1, 1) or (B,); speech_condition_mask (B, T) bool, True = frame to
    predict; condition_drop_mask (B,) bool, True = text condition dropped for that utterance
    (when given, condition_drop_ratio is not used). T = features.shape[1] = max(features_lens).
    """
    network, compute = _network_and_caller(model)
    features_lens, noise = checked_batch(tokens, features, features_lens, network.feature_dim, noise, generator)
    batch, frames, _ = features.shape
    device = features.device
    if t is None:
        t = torch.rand(batch, 1, 1, dtype=features.dtype, device=device, generator=generator)
    t = t.reshape(batch, 1, 1).to(device=device, dtype=features.dtype)
    if speech_condition_mask is None:
        speech_condition_mask = condition_time_mask(features_lens, frames, generator=generator)
    speech_condition_mask = speech_condition_mask.to(device=device, dtype=torch.bool)
    if speech_condition_mask.shape != (batch, frames):
        raise ValueError(f"speech_condition_mask must be ({batch}, {frames}), got {tuple(speech_condition_mask.shape)}")
    text_keep = None
    if condition_drop_mask is not None:
        text_keep = ~condition_drop_mask.to(device=device, dtype=torch.bool).reshape(batch, 1, 1)
    elif condition_drop_ratio > 0.0:
        # Same draw as the official forward: keep the text where U(0, 1) > ratio.
        text_keep = torch.rand(batch, 1, 1, device=device, generator=generator) > condition_drop_ratio
    return compute(tokens, features, features_lens, noise.to(features.dtype), t, speech_condition_mask, text_keep)


__all__ = [
    "FEATURE_SCALE",
    "PROMPT_MASK_PERCENT",
    "FlowMatchingObjective",
    "condition_time_mask",
    "flow_matching_loss",
    "text_condition_for_training",
]
