"""Inference-time equivalents of the Zipformer "scaling" building blocks.

The official modules wrap these in training-only machinery (gradient balancers, whitening
penalties, scheduled dropout, parameter limits); at inference all of that is the identity and
only the forward arithmetic below remains. The arithmetic is written in the same order as the
reference so float32 results agree to rounding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

SWOOSH_SLOPE = 0.08
EXP_FINITE_BELOW = 88.0  # float32 exp(a) is finite for a <= 88.72 (FLT_MAX = e^88.72)


def _swoosh(x: Tensor, offset: float, constant: float) -> Tensor:
    """log(1 + e^(x - offset)) - 0.08 x - constant, computed in float32 in the official order.

    The operations and their order are the reference's (`SwooshLForward`/`SwooshRForward`):
    e = exp(x - offset); log(1 + e), replaced by x - offset where it overflowed to inf; then
    minus (0.08 * x), then minus the constant. Each step rounds exactly as there, so the decoder
    is bit-identical to the official code on the same machine. (A fused
    `softplus(x - offset) + (-0.08) x` is faster but rounds differently, log1p vs log(1 + .) and
    one fused multiply-add: ~1e-7 per activation, grown to ~1e-6 in a full-size decoder call and
    amplified up to (1 + 4 * scale) times by classifier-free guidance; issue 21.) The
    intermediate results are updated in place, and the overflow replacement (two more passes)
    only runs when some input can overflow; the results are the same bits.

    ONNX export keeps the fused softplus form: the exporter rewrites it into vectorized
    onnxruntime operations (voxpipe/export/onnx.py), and onnxruntime rounds differently anyway.
    """
    xf = x.float()
    if torch.onnx.is_in_onnx_export():
        return (torch.add(nn.functional.softplus(xf - offset), xf, alpha=-SWOOSH_SLOPE) - constant).to(x.dtype)
    shifted = xf - offset
    log_sum = shifted.exp().add_(1.0).log_()
    if shifted.numel() and not bool(shifted.max() <= EXP_FINITE_BELOW):  # else nothing overflowed (NaN: check)
        log_sum = torch.where(log_sum == float("inf"), shifted, log_sum)
    return log_sum.sub_(xf * SWOOSH_SLOPE).sub_(constant).to(x.dtype)


def swoosh_l(x: Tensor) -> Tensor:
    """Swoosh-L, log(1 + e^(x-4)) - 0.08 x - 0.035 (feed-forward modules). Computed in float32."""
    return _swoosh(x, 4.0, 0.035)


def swoosh_r(x: Tensor) -> Tensor:
    """Swoosh-R, log(1 + e^(x-1)) - 0.08 x - 0.313261687 (conv modules). Computed in float32."""
    return _swoosh(x, 1.0, 0.313261687)


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
