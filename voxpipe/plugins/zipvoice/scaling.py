"""Inference-time equivalents of the Zipformer "scaling" building blocks.

The official modules wrap these in training-only machinery (gradient balancers, whitening
penalties, scheduled dropout, parameter limits); at inference all of that is the identity and
only the forward arithmetic below remains. The arithmetic is written in the same order as the
reference so float32 results agree to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _softplus_shifted(x: Tensor, offset: float) -> Tensor:
    """log(1 + e^(x - offset)) in float32.

    One fused softplus kernel instead of the reference's exp / add / log / inf-check chain: the
    activations run on every feed-forward and conv hidden state and, written out, cost more
    than the matrix multiplies around them. softplus evaluates log1p(e^a) (and a itself for
    a > 20, where the reference's overflow branch also returns a); it differs from the
    reference's log(1 + e^a) by float rounding only (< 1e-7 absolute)."""
    return nn.functional.softplus(x - offset)


def swoosh_l(x: Tensor) -> Tensor:
    """Swoosh-L, log(1 + e^(x-4)) - 0.08 x - 0.035 (feed-forward modules). Computed in float32."""
    xf = x.float()
    return (torch.add(_softplus_shifted(xf, 4.0), xf, alpha=-0.08) - 0.035).to(x.dtype)


def swoosh_r(x: Tensor) -> Tensor:
    """Swoosh-R, log(1 + e^(x-1)) - 0.08 x - 0.313261687 (conv modules). Computed in float32."""
    xf = x.float()
    return (torch.add(_softplus_shifted(xf, 1.0), xf, alpha=-0.08) - 0.313261687).to(x.dtype)


class SwooshR(nn.Module):
    """Stand-alone Swoosh-R module (time-embedding MLPs).

    The reference evaluates the stand-alone module with `logaddexp`, which rounds slightly
    differently from the fused form in `swoosh_r`; keep both to stay bit-close.
    """

    def forward(self, x: Tensor) -> Tensor:
        zero = torch.zeros((), dtype=x.dtype, device=x.device)
        return torch.logaddexp(zero, x - 1.0) - 0.08 * x - 0.313261687


class ActivationAndLinear(nn.Module):
    """Swoosh activation followed by a linear layer (dropout is inference-time identity).

    Parameters are `weight` (out, in) and `bias` (out,) directly on this module, matching the
    official `ActivationDropoutAndLinear` state-dict names.
    """

    def __init__(self, in_channels: int, out_channels: int, activation: str, bias: bool = True) -> None:
        super().__init__()
        if activation not in ("SwooshL", "SwooshR"):
            raise ValueError(f"unknown activation {activation!r}; expected SwooshL or SwooshR")
        self.activation = activation
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = swoosh_l(x) if self.activation == "SwooshL" else swoosh_r(x)
        return nn.functional.linear(x, self.weight, self.bias)


class BiasNorm(nn.Module):
    """Zipformer's LayerNorm replacement over the last dim.

    y = x * exp(log_scale) / sqrt(mean((x - bias)^2)): the bias only enters the scale, the
    output is x itself rescaled. Parameters: `bias` (C,), `log_scale` () scalar.
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        scales = (torch.mean((x - self.bias) ** 2, dim=-1, keepdim=True) ** -0.5) * self.log_scale.exp()
        return x * scales
