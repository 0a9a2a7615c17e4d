"""oneDNN's CPU GEMM for the float32 Linear layers of the fused (fast) kernels of any family.

torch sends a float32 `linear` to MKL, which on the project's AMD CPUs runs at about half of
oneDNN's rate where AVX-512 is there (MKL does not pick its AVX-512 code on them; oneDNN does).
Measured (docs/performance.md): a full-size fp32 LuxTTS decoder call 0.93 -> 0.79 s on a Zen 4
(AVX-512 in two 256-bit halves); on a Zen 5 (full-width AVX-512) the vocoder's (657 x 512) @
(512 x 1536) 107 -> 211 GFLOP/s and the 48 kHz vocoder stage 0.162 -> 0.107 s; level with AVX2 only. The rounding differs from MKL's at ~1e-6
relative, so the reference (parity) kernels keep torch's own `linear`. bf16 needs nothing of
this: torch already sends it to oneDNN.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def onednn_op(name: str):
    """A torch oneDNN operator (`torch.ops.mkldnn.<name>`, what inductor runs), or None in a torch
    build without oneDNN or without that operator."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return getattr(torch.ops.mkldnn, name)
    except (AttributeError, RuntimeError):
        return None


LINEAR = onednn_op("_linear_pointwise")  # (x, weight plain or packed, bias, "none", [], "")


def plain_torch_call() -> bool:
    """True while autograd, ONNX export or tracing watch: they need torch's own `linear`."""
    return torch.is_grad_enabled() or torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def runs_fp32_linear(x: Tensor) -> bool:
    """Whether `linear(x, ...)` would run on oneDNN: float32 CPU inference with a oneDNN torch."""
    return LINEAR is not None and x.dtype == torch.float32 and x.device.type == "cpu" and not plain_torch_call()


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """x (..., in) @ weight (out, in)^T + bias (out,) -> (..., out): on oneDNN where
    `runs_fp32_linear(x)`, else torch's `linear`."""
    if runs_fp32_linear(x):
        return LINEAR(x, weight, bias, "none", [], "")
    return torch.nn.functional.linear(x, weight, bias)


class OneDnnLinear(nn.Linear):
    """`nn.Linear` (same parameters and state-dict names) whose float32 inference runs `linear`
    above: what `use_onednn_linears` turns a model's plain Linear layers into."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


def use_onednn_linears(module: nn.Module, enabled: bool) -> int:
    """Turn every plain `nn.Linear` under `module` into `OneDnnLinear` (enabled) or back; returns
    how many were switched. For models built from stock torch layers (e.g. CosyVoice's flow) that
    have no Linear class of their own to choose kernels in."""
    source, target = (nn.Linear, OneDnnLinear) if enabled else (OneDnnLinear, nn.Linear)
    switched = 0
    for sub in module.modules():
        if type(sub) is source:
            sub.__class__ = target
            switched += 1
    return switched
